"""The one transient/permanent classifier (ecspilot.errors), table-tested."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoRegionError,
    ParamValidationError,
    ReadTimeoutError,
)

from ecspilot.errors import (
    AwsError,
    PermanentJobError,
    RetryableJobError,
    error_code,
    is_throttle,
    is_transient,
    is_uncertain,
    job_call_error,
)


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


TRANSIENT_CODES = [
    ("ProvisionedThroughputExceededException", 400),
    ("RequestLimitExceeded", 400),
    ("ThrottlingException", 400),
    ("Throttling", 400),
    ("ThrottledException", 400),
    ("TooManyRequestsException", 429),
    ("RequestThrottled", 400),
    ("RequestThrottledException", 400),
    ("SlowDown", 503),
    ("LimitExceededException", 400),
    ("InternalServerError", 500),
    ("ServiceUnavailable", 503),
    ("ServiceUnavailableException", 503),
    ("ServerException", 500),
    ("InternalFailure", 500),
    ("RequestTimeout", 400),
    ("TransactionConflictException", 400),
    ("SomethingNew", 502),  # any 5xx, whatever its code
    ("SomethingNew", 429),  # too many requests, whatever its code
]
PERMANENT_CODES = [
    ("ClientException", 400),
    ("InvalidParameterException", 400),
    ("AccessDeniedException", 400),
    ("ValidationException", 400),
    ("ResourceNotFoundException", 400),
    ("ConditionalCheckFailedException", 400),
    ("ClusterNotFoundException", 400),
]


@pytest.mark.parametrize(("code", "status"), TRANSIENT_CODES)
def test_throttling_and_server_errors_of_every_service_are_transient(code: str, status: int) -> None:
    assert is_transient(client_error(code, status))


@pytest.mark.parametrize(("code", "status"), PERMANENT_CODES)
def test_client_side_errors_are_permanent(code: str, status: int) -> None:
    assert not is_transient(client_error(code, status))


@pytest.mark.parametrize(
    ("exc", "transient", "uncertain"),
    [
        (EndpointConnectionError(endpoint_url="https://x"), True, False),  # never sent
        (ConnectTimeoutError(endpoint_url="https://x"), True, True),
        (ReadTimeoutError(endpoint_url="https://x"), True, True),  # sent, answer lost
        (ConnectionClosedError(endpoint_url="https://x"), True, True),
        (ParamValidationError(report="bad"), False, False),
        (NoRegionError(), False, False),
        (KeyError("a bug"), False, False),
    ],
)
def test_network_errors_are_transient_and_those_after_sending_are_uncertain(
    exc: Exception, transient: bool, uncertain: bool
) -> None:
    assert (is_transient(exc), is_uncertain(exc)) == (transient, uncertain)


@pytest.mark.parametrize(
    ("code", "status", "throttle", "uncertain"),
    [
        ("ThrottlingException", 400, True, False),  # refused: not applied
        ("ProvisionedThroughputExceededException", 400, True, False),
        ("InternalFailure", 500, False, True),  # may have been applied
        ("ServiceUnavailable", 503, False, True),
        ("ClientException", 400, False, False),
    ],
)
def test_a_throttle_is_certain_a_server_error_is_not(
    code: str, status: int, throttle: bool, uncertain: bool
) -> None:
    exc = client_error(code, status)
    assert (is_throttle(exc), is_uncertain(exc)) == (throttle, uncertain)


def test_typed_errors_answer_through_their_cause() -> None:
    cause = client_error("InternalServerError", 500)
    wrapped = AwsError("writing history failed")
    wrapped.__cause__ = cause  # as `raise ... from cause` sets it
    assert error_code(wrapped) == "InternalServerError"
    assert is_transient(wrapped)
    assert is_uncertain(wrapped)
    assert not is_transient(AwsError("no cause, not retryable"))
    assert is_transient(RetryableJobError("capacity"))
    assert not is_transient(PermanentJobError("missing"))


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (client_error("ProvisionedThroughputExceededException"), RetryableJobError),
        (client_error("InternalServerError", 500), RetryableJobError),
        (EndpointConnectionError(endpoint_url="https://x"), RetryableJobError),
        (client_error("AccessDeniedException"), PermanentJobError),
    ],
)
def test_job_call_errors_take_their_kind_from_the_classifier(exc: ClientError, kind: type) -> None:
    error = job_call_error("RunTask", exc, job="render", cluster="c")
    assert type(error) is kind
    assert error.context["job"] == "render"


def test_the_classifier_covers_botocores_own_retry_lists() -> None:
    from botocore.retries.standard import (  # noqa: PLC0415
        ThrottledRetryableChecker,
        TransientRetryableChecker,
    )

    codes = [
        *ThrottledRetryableChecker._THROTTLED_ERROR_CODES,
        *TransientRetryableChecker._TRANSIENT_ERROR_CODES,
    ]
    assert [c for c in codes if not is_transient(client_error(c))] == []
