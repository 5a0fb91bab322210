"""Observability: the one Powertools Logger and Metrics every module shares.

Creating them does no I/O; Powertools' own variables (POWERTOOLS_SERVICE_NAME,
POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_LOG_LEVEL) configure them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "ecspilot"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ecspilot"))

Handler = TypeVar("Handler", bound=Callable[..., Any])


def count(name: str, value: float = 1) -> None:
    """Add ``value`` to the count metric ``name``."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def seconds(name: str, value: float) -> None:
    """Record a duration metric in seconds."""
    metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=value)


def publish() -> None:
    """Flush the invocation's metrics, or nothing when there are none.

    Powertools' ``flush_metrics`` warns "No application metrics to publish" (a UserWarning that
    Lambda logs) on every invocation that added none: an ignored event, a quiet reconcile. A
    handler quiet when all is well keeps its log for what matters, so an empty set is just
    cleared (dimensions and metadata set for nothing included).
    """
    if metrics.metric_set:
        metrics.flush_metrics()
    else:
        metrics.clear_metrics()


def log_metrics(handler: Handler) -> Handler:
    """The handlers' decorator (instead of ``@metrics.log_metrics``): publish the invocation's
    metrics when there are some, and log an ignored event's reason as one debug line."""

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any) -> Any:
        try:
            result = handler(event, context)
        finally:
            publish()
        if isinstance(result, dict) and "ignored" in result:
            logger.debug("event ignored", reason=result["ignored"])
        return result

    return wrapper  # type: ignore[return-value]


__all__ = ["count", "log_metrics", "logger", "metrics", "publish", "seconds"]
