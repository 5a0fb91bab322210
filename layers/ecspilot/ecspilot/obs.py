"""Observability: the one Powertools Logger and Metrics every module shares.

Creating them does no I/O; Powertools' own variables (POWERTOOLS_SERVICE_NAME,
POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_LOG_LEVEL) configure them.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "ecspilot"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ecspilot"))


def count(name: str, value: float = 1) -> None:
    """Add ``value`` to the count metric ``name``."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def seconds(name: str, value: float) -> None:
    """Record a duration metric in seconds."""
    metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=value)


__all__ = ["count", "logger", "metrics", "seconds"]
