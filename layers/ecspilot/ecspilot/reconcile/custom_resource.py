"""CloudFormation custom resource protocol: run an action on Create/Update, answer the stack.

The answer is an HTTPS PUT of a JSON document to the pre-signed ``ResponseURL``. Guarantees:

- every well-formed request gets an answer, so a stack operation never waits for its timeout:
  anything the action raises (a config error while the runtime is built, an AWS error, a bug)
  answers ``FAILED`` with the reason;
- ``Delete`` always answers ``SUCCESS`` and runs nothing (what reconcile created outlives the
  stack, by design), so a broken config never blocks deleting the stack;
- a PUT that fails (network, 5xx) is tried again a few times, each failure logged; when every
  attempt failed, :class:`CustomResourceError` is raised so Lambda's retry tries once more;
- a request without ``ResponseURL``, ``StackId``, ``RequestId`` or ``LogicalResourceId`` (nothing
  could answer it) or with an unknown ``RequestType`` is an :class:`EventError`;
- the answer goes only to CloudFormation's response bucket (issue 24: a direct invoke must not
  make the function PUT to a host of the caller's choosing): an ``https`` URL, default port, no
  user info, on ``cloudformation-custom-resource-response-<region>.s3[.<region>|-<region>].
  amazonaws.com[.cn]`` or path-style ``s3[.<region>].amazonaws.com[.cn]/cloudformation-custom-
  resource-response-<region>/...`` (:func:`response_url_refusal`). Any other URL is logged and
  refused (an :class:`EventError`: nothing is run, nothing is sent).
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pydantic import Field, field_validator
else:
    from ecspilot.domain.modeling import Field, field_validator

from ecspilot.domain.envelope import EventModel, parse_event
from ecspilot.errors import CustomResourceError
from ecspilot.obs import count, logger

PHYSICAL_ID = "ecspilot-reconcile"
# CloudFormation rejects a response body over 4 KiB: keep the reason well under it
MAX_REASON = 2000
ANSWER_ATTEMPTS = 4

Status = Literal["SUCCESS", "FAILED"]

_BUCKET = r"cloudformation-custom-resource-response-[a-z0-9-]{1,40}"
_S3 = r"s3(?:[.-][a-z]{2}(?:-[a-z]+)+-[0-9])?\.amazonaws\.com(?:\.cn)?"
_VIRTUAL_HOST = re.compile(rf"{_BUCKET}\.{_S3}")
_PATH_STYLE = re.compile(rf"/{_BUCKET}/.+", re.DOTALL)

Opener = Callable[..., Any]
# how the answer is sent: urllib's urlopen; tests and the demo send it to a loopback stand-in
# (``use_opener``), the URL having passed the same check
_opener: Opener = urllib.request.urlopen


def use_opener(opener: Opener | None) -> None:
    """Send answers through ``opener`` (``urlopen``'s signature); None restores urlopen."""
    global _opener  # noqa: PLW0603 - one transport per process, swapped only by tests and the demo
    _opener = opener or urllib.request.urlopen


def response_url_refusal(url: str) -> str | None:
    """Why ``url`` is not CloudFormation's pre-signed response URL (pure), or None."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return "ResponseURL is not a URL"
    host = parts.hostname or ""
    if parts.scheme != "https" or parts.username is not None or parts.password is not None:
        return "ResponseURL must be https, without user info"
    if port not in (None, 443) or not url.isprintable():
        return "ResponseURL must use the default https port and printable characters"
    if _VIRTUAL_HOST.fullmatch(host) or (re.fullmatch(_S3, host) and _PATH_STYLE.fullmatch(parts.path)):
        return None
    return "ResponseURL is not on CloudFormation's response bucket (S3)"


class CustomResourceRequest(EventModel):
    """The fields of a CloudFormation custom resource request that an answer needs.

    CloudFormation's request also carries ``ResourceType`` and ``ResourceProperties`` (and
    ``ServiceToken``): the answer and the reconcile it runs read none of them, so they are not
    required (issue 22: no more required than what is used; tests/unit/test_event_fields.py)."""

    request_type: Literal["Create", "Update", "Delete"] = Field(alias="RequestType")
    response_url: str = Field(alias="ResponseURL")
    stack_id: str = Field(alias="StackId", min_length=1)
    request_id: str = Field(alias="RequestId", min_length=1)
    logical_resource_id: str = Field(alias="LogicalResourceId", min_length=1)
    physical_resource_id: str = Field(default="", alias="PhysicalResourceId")

    @field_validator("response_url")
    @classmethod
    def _response_url(cls, value: str) -> str:
        refusal = response_url_refusal(value)
        if refusal:
            logger.warning("custom resource request refused", reason=refusal, response_url=value[:300])
            count("CustomResourceRefused")
            raise ValueError(refusal)
        return value


def parse_request(event: Any) -> CustomResourceRequest:
    """Validate a custom resource request; :class:`EventError` names the missing field."""
    return parse_event(CustomResourceRequest, event, "CloudFormation custom resource")


def _body(request: CustomResourceRequest, status: Status, reason: str, data: Mapping[str, Any]) -> bytes:
    return json.dumps(
        {
            "Status": status,
            "Reason": (reason or "see the reconcile function's logs")[:MAX_REASON],
            "PhysicalResourceId": request.physical_resource_id or PHYSICAL_ID,
            "StackId": request.stack_id,
            "RequestId": request.request_id,
            "LogicalResourceId": request.logical_resource_id,
            "Data": {k: str(v)[:200] for k, v in data.items()},
        }
    ).encode()


def respond(
    request: CustomResourceRequest,
    status: Status,
    reason: str = "",
    data: Mapping[str, Any] | None = None,
    *,
    attempts: int = ANSWER_ATTEMPTS,
    backoff: float = 0.25,
) -> None:
    """PUT the answer to CloudFormation, trying again on network errors and 5xx answers."""
    body = _body(request, status, reason, data or {})
    for attempt in range(1, attempts + 1):
        put = urllib.request.Request(
            request.response_url,
            data=body,
            method="PUT",
            headers={"Content-Type": "", "Content-Length": str(len(body))},
        )
        try:
            with _opener(put, timeout=30) as resp:  # CloudFormation's pre-signed URL (checked)
                logger.info(
                    "custom resource answered", status=status, http_status=resp.status, attempt=attempt
                )
                return
        except urllib.error.HTTPError as exc:
            failure: OSError = exc
            retryable = exc.code >= 500 or exc.code == 429
        except OSError as exc:  # URLError, timeouts, connection resets
            failure, retryable = exc, True
        logger.warning(
            "custom resource answer failed",
            status=status,
            attempt=attempt,
            attempts=attempts,
            retryable=retryable,
            error=str(failure),
        )
        count("CustomResourceAnswerFailures")
        if not retryable or attempt == attempts:
            raise CustomResourceError(
                f"could not answer CloudFormation after {attempt} attempt(s): {failure}",
                request_id=request.request_id,
            ) from failure
        time.sleep(backoff * 2 ** (attempt - 1))


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def handle(event: Any, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``action`` for Create/Update (not Delete) and answer CloudFormation in every case.

    ``action`` is called inside the guard, so building what it needs (settings, config,
    clients) may fail too and is still answered. A failure is answered and returned, not
    raised: raising would make Lambda run the request again and answer it twice.
    """
    request = parse_request(event)
    if request.request_type == "Delete":
        respond(request, "SUCCESS", "nothing to undo: reconciled resources outlive the stack")
        return {"custom_resource": "Delete", "status": "SUCCESS"}
    try:
        result = action()
    except Exception as exc:  # any failure must reach CloudFormation, not a timeout
        logger.exception(
            "custom resource action failed", request_type=request.request_type, request_id=request.request_id
        )
        count("CustomResourceFailed")
        reason = f"reconcile failed: {_reason(exc)}"
        respond(request, "FAILED", reason)
        return {"custom_resource": request.request_type, "status": "FAILED", "reason": reason}
    summary = result.get("summary", {})
    failed = int(summary.get("error", 0))
    errors = [
        f"{a['kind']} {a['target']}: {a['detail']}"
        for a in result.get("actions", [])
        if a["change"] == "error"
    ]
    reason = f"{failed} reconcile error(s): " + "; ".join(errors) if failed else "reconciled"
    status: Status = "FAILED" if failed else "SUCCESS"
    if failed:
        count("CustomResourceFailed")
    respond(request, status, reason, summary)
    return {**result, "custom_resource": request.request_type, "status": status}


__all__ = [
    "CustomResourceRequest",
    "handle",
    "parse_request",
    "respond",
    "response_url_refusal",
    "use_opener",
]
