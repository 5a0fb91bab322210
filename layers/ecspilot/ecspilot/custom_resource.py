"""CloudFormation custom resource protocol: run an action on Create/Update, answer the stack.

The answer is an HTTPS PUT of a JSON document to the pre-signed ``ResponseURL``.
It is always sent, success or failure, so a stack operation never waits for an
hour-long timeout. A failure on Create/Update is reported to CloudFormation
with the reason (the deploy rolls back, visibly).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from ecspilot.errors import EcspilotError
from ecspilot.obs import logger

PHYSICAL_ID = "ecspilot-reconcile"


def respond(
    event: Mapping[str, Any], status: str, reason: str = "", data: Mapping[str, Any] | None = None
) -> None:
    """PUT the custom resource response to CloudFormation."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:3500] or "see the reconcile function's logs",
            "PhysicalResourceId": event.get("PhysicalResourceId") or PHYSICAL_ID,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": dict(data or {}),
        }
    ).encode()
    request = urllib.request.Request(
        event["ResponseURL"],
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        logger.info("custom resource answered", extra={"status": status, "http_status": resp.status})


def handle(event: Mapping[str, Any], action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``action`` for Create/Update (not Delete) and answer CloudFormation either way."""
    request_type = event["RequestType"]
    if request_type == "Delete":
        respond(event, "SUCCESS", "nothing to undo: reconciled resources outlive the stack")
        return {"custom_resource": "Delete"}
    try:
        result = action()
    except EcspilotError as exc:
        respond(event, "FAILED", f"reconcile failed: {exc}")
        raise
    summary = {k: str(v) for k, v in result.get("summary", {}).items()}
    failed = int(summary.get("error", "0"))
    respond(
        event, "FAILED" if failed else "SUCCESS", f"{failed} reconcile error(s)" if failed else "", summary
    )
    return result
