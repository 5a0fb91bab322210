"""Typed errors. Every error ecspilot raises derives from :class:`EcspilotError`.

Errors carry context (cluster, service, job) as attributes so log lines and
records can name what failed, and are raised ``from`` the underlying cause.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError


class EcspilotError(Exception):
    """Base class of every ecspilot error."""

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = {k: v for k, v in context.items() if v is not None}

    def __str__(self) -> str:
        if not self.context:
            return self.message
        extra = ", ".join(f"{k}={v}" for k, v in sorted(self.context.items()))
        return f"{self.message} ({extra})"


class SettingsError(EcspilotError):
    """A required setting (environment variable) is missing or invalid."""


class ConfigError(EcspilotError):
    """The config file is missing, unreadable or invalid.

    ``problems`` lists each problem as ``(path, message)``, where path is the
    location inside the file such as ``services[2].containers.app.tags``.
    """

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.problems = problems or []

    def __str__(self) -> str:
        head = super().__str__()
        if not self.problems:
            return head
        lines = [head] + [f"  {path}: {msg}" if path else f"  {msg}" for path, msg in self.problems]
        return "\n".join(lines)


class EventError(EcspilotError):
    """An incoming event does not have the expected shape; names the field."""


class CustomResourceError(EcspilotError):
    """CloudFormation could not be answered (every PUT to the ResponseURL failed)."""


class PlacementError(EcspilotError):
    """A placement preset, strategy or constraint is invalid."""


class QueryLanguageError(PlacementError):
    """A cluster query language expression could not be parsed.

    ``column`` is 1-based and points at the offending character.
    """

    def __init__(self, message: str, expression: str, column: int) -> None:
        super().__init__(message)
        self.expression = expression
        self.column = column

    def __str__(self) -> str:
        pointer = " " * (self.column - 1) + "^"
        return f"{self.message} at column {self.column}\n  {self.expression}\n  {pointer}"


class AwsError(EcspilotError):
    """An AWS call failed. ``retryable`` tells whether running again may succeed."""

    retryable: bool = False


class DeployError(AwsError):
    """Deploying to one service failed."""


class UnexpectedError(EcspilotError):
    """Something no ecspilot code anticipated (a bug, an unknown exception) failed one item of a
    fan-out; the other items went on. Raised ``from`` the original exception."""


class DeployFailuresError(EcspilotError):
    """One or more services of a push failed; the others were still rolled."""

    def __init__(self, failures: list[DeployError], result: Any = None) -> None:
        super().__init__(f"{len(failures)} service deployment(s) failed")
        self.failures = failures
        self.result = result

    def __str__(self) -> str:
        return "; ".join(str(f) for f in self.failures)


class JobError(AwsError):
    """Running a job failed. ``result`` is the run's :class:`ecspilot.jobs.RunResult` when some
    RunTask call answered (tasks started, failures), else None."""

    result: Any = None


class RetryableJobError(JobError):
    """The job could not start for a reason that may pass (capacity, throttling)."""

    retryable = True


class PermanentJobError(JobError):
    """The job cannot start until something is fixed (missing or invalid resource, bad request)."""


class UnknownJobError(PermanentJobError):
    """The job named in a request is not in the config."""


class InvalidMessageError(EcspilotError):
    """A queue message can never succeed (bad JSON, unknown job, forbidden override, too large).

    Permanent: the message goes to the dead-letter queue with ``reason``, it is not retried.
    """

    def __init__(self, reason: str, **context: Any) -> None:
        super().__init__(reason, **context)
        self.reason = reason


class DaemonError(AwsError):
    """Ensuring one daemon on one cluster failed (or its clusters could not be found)."""


# AWS error codes that may pass on their own: throttling and server-side trouble.
RETRYABLE_API_ERRORS = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ServerException",
        "ServiceUnavailableException",
        "LimitExceededException",
    }
)


def job_call_error(
    action: str, exc: ClientError | BotoCoreError, *, job: str, cluster: str, **context: Any
) -> JobError:
    """A typed error for a failed AWS call of a job run: throttling, server errors and
    connection problems may pass (retryable), anything else will not (permanent)."""
    code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
    retryable = isinstance(exc, BotoCoreError) or code in RETRYABLE_API_ERRORS
    kind = RetryableJobError if retryable else PermanentJobError
    return kind(f"{action} failed: {exc}", job=job, cluster=cluster, **context)
