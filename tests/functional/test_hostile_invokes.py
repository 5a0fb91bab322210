"""Direct invokes with hostile shapes (issue 24): every function answers, or raises a typed
``EcspilotError`` (the invoke fails, Lambda's retry and dead-letter queue take it), never an
AttributeError, KeyError or TypeError from deep inside, and never acts on what it was sent."""

from __future__ import annotations

from typing import Any

import pytest

from ecspilot.errors import EcspilotError
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import Sandbox
from tests.conftest import MakeRuntime

FUNCTIONS = ["deploy_on_push", "run_job", "run_queued_jobs", "track_deployments", "reconcile"]
SHAPES: list[Any] = [
    None,
    "x",
    42,
    [],
    [{"job": "nightly"}],
    {},
    {"Records": None},
    {"Records": "x"},
    {"Records": [None]},
    {"Records": [1, "two"]},
    {"Records": [{"body": None, "messageId": None}]},
    {"Records": [{"body": "[1, 2]", "messageId": "m", "eventSource": "aws:sqs"}]},
    {"Records": [{"body": '"just a string"', "messageId": "m", "eventSource": "aws:sqs"}]},
    {"job": None},
    {"job": ["nightly"]},
    {"job": {"name": "nightly"}},
    {"job": "nightly", "scheduled_time": 5},
    {"job": "nightly", "overrides": "x"},
    {"detail": None, "detail-type": "ECS Deployment State Change", "source": "aws.ecs"},
    {"detail": "x", "detail-type": "ECR Image Action", "source": "aws.ecr"},
    {"detail-type": ["x"], "source": {"a": 1}},
    {"trigger": None},
    {"trigger": "promotion", "service": ["web"]},
    {"RequestType": "Create"},
    {"RequestType": "Create", "ResponseURL": None},
]
CONFIG = {
    "version": 1,
    "services": [{"name": "web", "cluster": "prod", "containers": {"app": {"repository": "web"}}}],
    "jobs": [
        {"name": "nightly", "cluster": "batch", "task_definition": "nightly", "schedule": "rate(1 day)"}
    ],
}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_hostile_direct_invokes_get_an_answer_or_a_typed_error(
    function: str, sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    make_runtime(CONFIG, jobs_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/jobs")
    untyped = []
    for shape in SHAPES:
        try:
            invoke(function, shape)
        except EcspilotError:
            pass
        except Exception as exc:
            untyped.append(f"{shape!r}: {type(exc).__name__}: {exc}")
    assert untyped == [], "\n".join(untyped)
    # and nothing was changed in AWS by any of them
    assert [op for op in recorder.writes() if op not in ("PutMetricData",)] == []
