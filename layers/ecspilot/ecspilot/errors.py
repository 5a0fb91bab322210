"""Typed errors. Every error ecspilot raises derives from :class:`EcspilotError`.

Errors carry context (cluster, service, job) as attributes so log lines and
records can name what failed, and are raised ``from`` the underlying cause.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,  # botocore's, not the builtin
    CredentialRetrievalError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    ResponseStreamingError,
)


class EcspilotError(Exception):
    """Base class of every ecspilot error."""

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = {k: v for k, v in context.items() if v is not None}

    def __str__(self) -> str:
        # a message that wraps another error already names some of the context: say each once
        def shown(k: str, v: Any) -> bool:
            forms = (f"{k}={v})", f"{k}={v},", f"{k} {v}", f"'{v}'")
            return any(form in self.message for form in forms)

        extra = ", ".join(f"{k}={v}" for k, v in sorted(self.context.items()) if not shown(k, v))
        return f"{self.message} ({extra})" if extra else self.message


class InputError(EcspilotError):
    """A command-line argument the verb cannot take (``--limit 0``, ``--html`` with one service)."""


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


class CopilotImportError(EcspilotError):
    """A Copilot workspace or manifest cannot be translated (``ecspilot import copilot``)."""


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


class HealthRecordError(AwsError):
    """A service's stopped task or crash-loop state could not be read or written (state table)."""


class TargetHealthError(AwsError):
    """A service's load balancer target groups or target health could not be read (ELBv2)."""


class BudgetExhaustedError(EcspilotError):
    """A paced call would have to wait past the invocation's time budget: not sent, not a failure;
    the work it belongs to continues in the next invocation."""


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
    """Running a job failed. ``result`` is the run's :class:`ecspilot.jobs.plan.RunResult` when some
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


class ServiceDeploymentError(AwsError):
    """A call of the ECS service deployments API (List/Describe/StopServiceDeployment) failed."""


class RollbackError(AwsError):
    """``ecspilot rollback`` could not roll the service back (nothing to go back to, or a call
    failed); nothing it did not finish is recorded as done."""


# --- transient or permanent: the one classifier ---------------------------------------------
# Every module asks here whether an AWS failure may pass on its own (retry, keep the message in
# the queue) or needs a fix first (report it, dead-letter the message). The codes cover botocore's
# own retry lists (``botocore.retries.standard``: throttled and transient codes) and the server
# errors each service names its own way.

THROTTLING_ERROR_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",  # DynamoDB
        "RequestLimitExceeded",  # DynamoDB, EC2 (account-level request rate)
        "TransactionInProgressException",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "SlowDown",  # S3
        "EC2ThrottledException",
        "PriorRequestNotComplete",
    }
)
SERVER_ERROR_CODES = frozenset(
    {
        "InternalServerError",  # DynamoDB
        "InternalServerException",
        "InternalFailure",
        "InternalError",
        "InternalErrorException",
        "ServerException",  # ECS
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ServiceException",
        "Unavailable",
        "RequestTimeout",
        "RequestTimeoutException",
        "TransactionConflictException",  # DynamoDB: a concurrent transaction, passes on its own
    }
)
RETRYABLE_API_ERRORS = THROTTLING_ERROR_CODES | SERVER_ERROR_CODES
# botocore errors raised before or while talking to AWS that may pass: connections, timeouts,
# a reply cut short, credentials that could not be fetched this time.
TRANSIENT_BOTOCORE_ERRORS: tuple[type[BotoCoreError], ...] = (
    ConnectionError,  # EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError, ...
    HTTPClientError,  # ReadTimeoutError, ...
    ResponseStreamingError,
    IncompleteReadError,
    CredentialRetrievalError,
    NoCredentialsError,
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of ``exc`` (``ThrottlingException``, ...), or ``""`` when it has none.

    Follows ``__cause__`` so a typed ecspilot error raised ``from`` a ClientError answers too.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ClientError):
            return str(current.response.get("Error", {}).get("Code", "") or "")
        current = current.__cause__
    return ""


def http_status(exc: BaseException) -> int:
    """The HTTP status of a ClientError (0 when unknown)."""
    if isinstance(exc, ClientError):
        return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return 0


def is_throttle(exc: BaseException) -> bool:
    """AWS refused the call for its rate: it was not applied, sending it again later is safe."""
    return error_code(exc) in THROTTLING_ERROR_CODES or http_status(exc) == 429


def is_transient(exc: BaseException) -> bool:
    """Whether the failure may pass on its own: throttling of any service, server errors (5xx,
    ``InternalServerError``, ``ServiceUnavailable``...) and network errors (every botocore
    connection or timeout error). Anything else (validation, access denied, a missing resource,
    a bug) needs a fix first. An :class:`AwsError` answers with its own ``retryable``."""
    if isinstance(exc, EcspilotError):
        if isinstance(exc, AwsError) and exc.retryable:
            return True
        return exc.__cause__ is not None and is_transient(exc.__cause__)
    if isinstance(exc, BotoCoreError):
        return isinstance(exc, TRANSIENT_BOTOCORE_ERRORS)
    if isinstance(exc, ClientError):
        status = http_status(exc)
        return error_code(exc) in RETRYABLE_API_ERRORS or status >= 500 or status == 429
    return False


def is_uncertain(exc: BaseException) -> bool:
    """Whether a failed call may have been applied all the same: the request may have reached AWS
    and its reply was lost (a server error, a connection dropped or timed out after sending).
    A throttle, a validation error or a connection never made are certain: nothing happened."""
    if isinstance(exc, EcspilotError):
        return exc.__cause__ is not None and is_uncertain(exc.__cause__)
    if isinstance(exc, EndpointConnectionError):
        return False  # the connection was never made: nothing was sent
    if isinstance(exc, (NoCredentialsError, CredentialRetrievalError)):
        return False
    return is_transient(exc) and not is_throttle(exc)


def job_call_error(
    action: str, exc: ClientError | BotoCoreError, *, job: str, cluster: str, **context: Any
) -> JobError:
    """A typed error for a failed AWS call of a job run: transient (:func:`is_transient`) may
    pass (retryable), anything else will not (permanent)."""
    kind = RetryableJobError if is_transient(exc) else PermanentJobError
    return kind(f"{action} failed: {exc}", job=job, cluster=cluster, code=error_code(exc) or None, **context)


class AdoptionError(AwsError):
    """``ecspilot init`` could not read what runs in the account (cluster, service, rule, schedule)."""


class AdoptionInputError(EcspilotError):
    """Bad input to ``init`` or ``import copilot``: an unknown cluster, an output file that exists
    (without ``--force``), a workspace that is not a directory."""


class ScanError(AwsError):
    """Reading an image's ECR scan findings failed: the image is not deployed unchecked."""


class SignatureError(AwsError):
    """Reading an image's ECR signing status failed: the image is not deployed unchecked."""


class HookError(AwsError):
    """Answering a paused deployment's hook failed (ContinueServiceDeployment, the hook's record)."""


class NothingPausedError(EcspilotError):
    """``approve`` / ``reject``: no paused deployment of that service awaits an answer."""


class AccountAccessError(AwsError):
    """Clients for another account could not be made: ``sts:AssumeRole`` was denied, throttled past
    the retries, or failed (issue 13). Only that account's promotions fail; the others go on."""


class PromotionError(AwsError):
    """Evaluating or applying one promotion failed (a source read, the alarms, the state table)."""


class PromotionInputError(EcspilotError):
    """A promotion verb cannot do what was asked (``ecspilot promote``/``approve``): not a promoted
    service, a digest its source never COMPLETED (without ``--force``), no release awaiting approval."""


class ChatAnswerError(EcspilotError):
    """A chat button's payload is not a valid answer (an unknown action or field, a missing or
    malformed id, a service the config does not name): nothing is answered."""


class ChatAnswerStoreError(AwsError):
    """The answer path could not read or write its claim in the state table: nothing was answered
    (the press can be made again)."""
