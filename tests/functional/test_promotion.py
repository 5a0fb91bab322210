"""Promotion across accounts and regions (issue 13), against moto with two accounts."""

from __future__ import annotations

from datetime import UTC, datetime

from ecspilot_dev.local import CallRecorder
from ecspilot_dev.sandbox import Sandbox
from tests.conftest import MakeRuntime
from tests.promotion_world import TARGET_ACCOUNT, TARGET_REGION, World, config


def test_a_baked_release_is_promoted_into_the_other_account_with_the_exact_digest(
    sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN staging COMPLETED web:v1 31 minutes ago, prod (another account and region) on v0
    world = World(sandbox, make_runtime, config(bake=30))
    record = world.backdate(world.release("v1"), 31)
    assert record["status"] == "COMPLETED"
    assert world.images()["app"] == sandbox.image("web", "v0")
    # WHEN reconcile runs its promotion part
    recorder.reset()
    actions = world.reconcile()
    # THEN prod runs exactly staging's digest, pinned in staging's registry; the sidecar and the
    # desired count are untouched
    assert [(a.change, a.applied) for a in actions] == [("update", True)], actions
    assert actions[0].detail.startswith("promote sha256:")
    images = world.images()
    assert images["app"] == f"{sandbox.registry}/web@{record['image_digest']}"
    assert images["envoy"] == "envoy:1"
    assert world.prod_service()["desiredCount"] == 3
    updates = recorder.params("UpdateService")
    assert len(updates) == 1
    assert "desiredCount" not in updates[0]
    # AND the record, keyed in the target account, is closed by the target account's forwarded event
    key_service = f"web@{TARGET_ACCOUNT}:{TARGET_REGION}"
    promoted = world.rt.history.deployments("prod", key_service)
    assert [(r["status"], r["trigger"], r["image_digest"]) for r in promoted] == [
        ("IN_PROGRESS", "promotion", record["image_digest"])
    ]
    world.ecs_event(
        "completed",
        promoted[0]["deployment_id"],
        datetime.now(UTC),
        account=TARGET_ACCOUNT,
        region=TARGET_REGION,
        cluster="prod",
    )
    assert world.rt.history.deployment(promoted[0]["deployment_id"])["status"] == "COMPLETED"
    # AND a second reconcile writes nothing
    recorder.reset()
    again = world.reconcile()
    assert [(a.change, a.detail.split(" ")[0]) for a in again] == [("in-sync", "in-sync")]
    assert recorder.writes() == [], recorder.writes()
