"""A stand-in for CloudFormation's pre-signed ResponseURL: an HTTP server on loopback, in a thread,
that records every custom resource answer PUT to it and can fail the first ones."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ecspilot_dev.local import RESPONSE_URL, answers_to_loopback


class CloudFormationStandIn:
    """Records the answers; ``fail_with`` lists HTTP statuses to answer the first PUTs with."""

    def __init__(self, fail_with: list[int] | None = None) -> None:
        self.responses: list[dict[str, Any]] = []
        self.attempts = 0
        self.fail_with = list(fail_with or [])
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers["Content-Length"])
                body = self.rfile.read(length)
                outer.attempts += 1
                if outer.fail_with:
                    self.send_response(outer.fail_with.pop(0))
                    self.end_headers()
                    return
                outer.responses.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # the URL CloudFormation sends; answers to it reach this server (answers_to_loopback)
        self.url = RESPONSE_URL
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self._loopback = answers_to_loopback(self.server.server_port)
        self._loopback.__enter__()

    def close(self) -> None:
        self._loopback.__exit__(None, None, None)
        self.server.shutdown()
        self.server.server_close()


def custom_resource_event(request_type: str, url: str, **extra: Any) -> dict[str, Any]:
    """A CloudFormation custom resource request for the stack's ReconcileOnDeploy resource."""
    event = {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:ecspilot-Reconcile",
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/ecspilot/1",
        "RequestId": "req-1",
        "LogicalResourceId": "ReconcileOnDeploy",
        "ResourceType": "Custom::EcspilotReconcile",
        "ResourceProperties": {"ConfigVersion": "1"},
        **extra,
    }
    if request_type != "Create":
        event.setdefault("PhysicalResourceId", "ecspilot-reconcile")
    return event
