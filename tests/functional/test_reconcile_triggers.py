"""The reconcile function's triggers: schedule, drift events, and the stack-deploy custom resource."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from ecspilot_dev.local import invoke
from tests.conftest import MakeRuntime


class CloudFormationStandIn:
    """Receives the custom resource response PUT, as CloudFormation's pre-signed URL would."""

    def __init__(self) -> None:
        self.responses: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers["Content-Length"])
                outer.responses.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/response"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def cloudformation() -> Iterator[CloudFormationStandIn]:
    stand_in = CloudFormationStandIn()
    yield stand_in
    stand_in.server.shutdown()


def custom_resource_event(request_type: str, url: str) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/ecspilot/1",
        "RequestId": "req-1",
        "LogicalResourceId": "ReconcileOnDeploy",
        "ResourceType": "Custom::EcspilotReconcile",
        "ResourceProperties": {"ConfigVersion": "1"},
    }


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_a_stack_deploy_runs_reconcile_and_answers_success(
    request_type: str, cloudformation: CloudFormationStandIn, make_runtime: MakeRuntime
) -> None:
    make_runtime({"version": 1})
    result = invoke("reconcile", custom_resource_event(request_type, cloudformation.url))
    assert result["dry_run"] is False
    [response] = cloudformation.responses
    assert response["Status"] == "SUCCESS"
    assert (response["RequestId"], response["LogicalResourceId"]) == ("req-1", "ReconcileOnDeploy")
    assert response["PhysicalResourceId"] == "ecspilot-reconcile"


def test_a_stack_delete_answers_without_touching_aws(
    cloudformation: CloudFormationStandIn, make_runtime: MakeRuntime
) -> None:
    make_runtime({"version": 1})
    assert invoke("reconcile", custom_resource_event("Delete", cloudformation.url)) == {
        "custom_resource": "Delete"
    }
    assert [r["Status"] for r in cloudformation.responses] == ["SUCCESS"]


def test_the_rate_schedule_runs_reconcile(make_runtime: MakeRuntime) -> None:
    make_runtime({"version": 1})
    result = invoke("reconcile", {})
    assert result == {"dry_run": False, "summary": {}, "actions": []}
