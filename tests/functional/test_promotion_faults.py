"""Promotion under faults (issue 13): a lost UpdateService reply in the target account and a
DynamoDB outage while the promotion is recorded. The retry (the next reconcile) converges: the
target runs the release, one revision was registered, its deployment record and the promotion's
are written, and the reconcile after that writes nothing."""

from __future__ import annotations

import pytest

from ecspilot_dev.local import CallRecorder
from ecspilot_dev.sandbox import Sandbox
from tests.conftest import MakeRuntime
from tests.faults import Faults
from tests.promotion_world import TARGET_ACCOUNT, TARGET_REGION, World, config

KEY = f"web@{TARGET_ACCOUNT}:{TARGET_REGION}"


def revisions(world: World) -> list[str]:
    return world.target.clients.ecs.list_task_definitions(familyPrefix="web-prod")["taskDefinitionArns"]


def converged(world: World, digest: str, recorder: CallRecorder) -> None:
    """The target runs ``digest`` on one new revision, recorded once, and nothing is left to write."""
    assert world.images()["app"].endswith(digest)
    assert [a.rsplit("/", 1)[-1] for a in revisions(world)] == ["web-prod:1", "web-prod:2"]
    records = world.rt.history.deployments("prod", KEY)
    assert [(r["status"], r["image_digest"], r["trigger"]) for r in records] == [
        ("IN_PROGRESS", digest, "promotion")
    ]
    assert records[0]["deployment_id"] == world.prod_service()["deployments"][0]["id"]
    from ecspilot.interfaces import runtime  # noqa: PLC0415
    from ecspilot.promotion.handler import promoter  # noqa: PLC0415

    promoted = [r for r in promoter(runtime.current()).records.runs("web-prod") if r["outcome"] == "promoted"]
    assert [r["deployment_id"] for r in promoted] == [records[0]["deployment_id"]]
    recorder.reset()
    assert [a.change for a in world.reconcile()] == ["in-sync"]
    assert recorder.writes() == []


@pytest.mark.parametrize("fault", ["lost-reply", "error"])
def test_an_update_service_failing_beyond_retries_in_the_target_converges_on_the_next_reconcile(
    fault: str, sandbox: Sandbox, make_runtime: MakeRuntime, faults: Faults, recorder: CallRecorder
) -> None:
    # GIVEN a baked release, and UpdateService in the target account failing past botocore's
    # retries: every reply lost (applied at ECS) or every attempt refused (not applied)
    world = World(sandbox, make_runtime, config(bake=30))
    record = world.backdate(world.release("v1"), 31)
    rule = faults.fail(
        "UpdateService",
        fault,
        code="InternalFailure" if fault == "lost-reply" else "ServerException",
        when=lambda p: p.get("cluster") == "prod",
    )
    # WHEN reconcile promotes: the promotion is an error (its retry is the next reconcile)
    [action] = world.reconcile()
    assert action.change == "error"
    assert "UpdateService failed" in action.detail
    assert rule.fired >= 2
    # WHEN the fault passes and reconcile runs again
    faults.clear()
    world.reconcile()
    # THEN it converged: one revision, one record, one promotion record, then nothing to write
    converged(world, record["image_digest"], recorder)


@pytest.mark.parametrize("operation", ["TransactWriteItems", "PutItem"])
def test_a_dynamodb_outage_while_promoting_converges_on_the_next_reconcile(
    operation: str, sandbox: Sandbox, make_runtime: MakeRuntime, faults: Faults, recorder: CallRecorder
) -> None:
    # GIVEN a baked release, and the state table failing the promotion's writes: the claims and
    # records (TransactWriteItems), or the promotion's own record (PutItem)
    world = World(sandbox, make_runtime, config(bake=30))
    record = world.backdate(world.release("v1"), 31)
    rule = faults.fail(operation, "error", code="InternalServerError", service="dynamodb")
    # WHEN reconcile runs during the outage THEN the promotion is one error
    [action] = world.reconcile()
    assert action.change == "error"
    assert rule.fired >= 1
    # WHEN the outage ends THEN the next reconcile converges, without a second revision
    faults.clear()
    world.reconcile()
    converged(world, record["image_digest"], recorder)
