"""ECS's real sequences, not single events (issue 22): each row is a sequence of deployment events
and of reconciles, with what ECS's DescribeServiceDeployments answers at each; out come the record,
the hold of the digest and the ECS write calls (reconcile never redeploys what ECS rolled back).

Deployments are started by the real deploy_on_push handler against moto and followed by the real
track_deployments handler and reconcile; an OperationStubber answers ListServiceDeployments and
DescribeServiceDeployments (validated against the API model; every queued answer must be asked
for). Pause hooks' sequences (a lost hook event, a hook answered from the console, the event and
reconcile racing) are table rows in tests/functional/test_paused_from_ecs.py (test_a_hook_sequence).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecspilot.deploy.handler import reconcile_catch_up
from ecspilot.interfaces.runtime import Runtime
from ecspilot.reconcile.runbook import reconcile
from ecspilot.tracking.handler import reconcile_deployments
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import Sandbox, fake_digest, push_event
from ecspilot_dev.service_deployments import OperationStubber
from tests.functional.test_track_service_deployments import (
    TRACK,
    deploy,
    event,
    expect_describe,
    expect_list,
    stub,
    use_strategy,
    world,
)

__all__ = ["stub", "world"]

Step = tuple[str, str, tuple[str, str] | None, int]  # kind, sample, ECS's (status, stage), minutes
COMPLETED, IN_PROGRESS, FAILED = (
    "ecs_deployment_bluegreen_completed",
    "ecs_deployment_in_progress",
    "ecs_deployment_bluegreen_failed",
)
BAKING, DONE, ROLLED = (
    ("IN_PROGRESS", "BAKE_TIME"),
    ("SUCCESSFUL", "CLEAN_UP"),
    ("ROLLBACK_SUCCESSFUL", "CLEAN_UP"),
)

ROWS: list[Any] = [
    pytest.param(
        "ROLLING",
        [("event", IN_PROGRESS, None, 1), ("event", "ecs_deployment_completed", None, 5)],
        "COMPLETED",
        False,
        id="rolling",
    ),
    pytest.param(
        "ROLLING",
        [
            ("event", IN_PROGRESS, None, 1),
            ("event", "ecs_deployment_failed", None, 9),
            ("reconcile", "", None, 10),
        ],
        "FAILED",
        True,
        id="rolling-circuit-breaker-rolls-back",
    ),
    pytest.param(
        "LINEAR",
        [("event", COMPLETED, BAKING, 10), ("reconcile", "", BAKING, 15), ("event", COMPLETED, DONE, 41)],
        "COMPLETED",
        False,
        id="linear-completed-during-the-bake-then-successful",
    ),
    pytest.param(
        "LINEAR",
        [("event", COMPLETED, BAKING, 10), ("reconcile", "", ROLLED, 20), ("reconcile", "", None, 25)],
        "ROLLED_BACK",
        True,
        id="linear-completed-during-the-bake-then-rolled-back-with-no-event",
    ),
    pytest.param(
        "CANARY",
        [("event", COMPLETED, BAKING, 10), ("event", COMPLETED, BAKING, 10), ("reconcile", "", DONE, 45)],
        "COMPLETED",
        False,
        id="canary-event-twice-then-successful-by-reconcile",
    ),
    pytest.param(
        "BLUE_GREEN",
        [("event", COMPLETED, DONE, 30), ("event", IN_PROGRESS, DONE, 2), ("reconcile", "", None, 35)],
        "COMPLETED",
        False,
        id="blue-green-events-out-of-order",
    ),
    pytest.param(
        "BLUE_GREEN",
        [("event", FAILED, ROLLED, 12), ("event", FAILED, ROLLED, 12), ("reconcile", "", None, 15)],
        "ROLLED_BACK",
        True,
        id="blue-green-rolled-back-event-twice",
    ),
]


@pytest.mark.parametrize(("strategy", "steps", "final", "held"), ROWS)
def test_a_sequence_ends_where_ecs_does_and_reconcile_never_undoes_it(
    world: Sandbox,
    stub: tuple[Runtime, OperationStubber],
    recorder: CallRecorder,
    strategy: str,
    steps: list[Step],
    final: str,
    held: bool,
) -> None:
    rt, stubber = stub
    conf = use_strategy(rt, strategy) if strategy != "ROLLING" else {}
    record = deploy(world, rt)
    dep, start = record["deployment_id"], datetime.now(UTC) - timedelta(hours=1)
    linked = reverted = False
    recorder.reset()
    for kind, sample, ecs, minutes in steps:
        at = start + timedelta(minutes=minutes)
        if ecs is not None:
            if kind == "event" and not linked:
                expect_list(stubber, dep, start)
                linked = True
            expect_describe(stubber, conf, dep, ecs[0], ecs[1], at)
        rolled_back = (ecs is not None and ecs[0].startswith("ROLLBACK")) or sample == "ecs_deployment_failed"
        if rolled_back and not reverted:
            # ECS runs the previous revision again (moto does not roll back by itself)
            rt.clients.ecs.update_service(
                cluster="prod", service="web", taskDefinition=record["from_task_definition"]
            )
        if kind == "event":
            invoke(TRACK, event(sample, dep, at))
        else:
            reconcile(
                rt, parts_to_run=[("deployments", reconcile_deployments), ("catch-up", reconcile_catch_up)]
            )
    # THEN the record ends where ECS did, and nothing deployed the image again
    assert (rt.history.deployment(dep) or {})["status"] == final
    ours = [
        p for p in recorder.params("UpdateService") if p["taskDefinition"] != record["from_task_definition"]
    ]
    assert ours == []
    # AND a redelivered push of the image is held exactly when ECS rolled it back
    again = invoke("deploy_on_push", push_event("web", "v1", fake_digest("web:v1")))
    assert ([o["outcome"] for o in again["services"]] == ["held"]) is held, again
