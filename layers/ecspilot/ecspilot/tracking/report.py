"""The invocation's metric dimensions of a moved record (its notification: :mod:`ecspilot.aws.notify`)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from aws_lambda_powertools.warnings import PowertoolsUserWarning

from ecspilot.obs import metrics


def set_dimensions(dimensions: Mapping[str, str]) -> None:
    """Set the invocation's metric dimensions (one event per invocation, so one set).

    Powertools clears them when it flushes; with metrics disabled (the demo) it does not, and
    warns when a value is replaced, which is what we mean here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PowertoolsUserWarning)
        for name, value in dimensions.items():
            metrics.add_dimension(name=name, value=value)
