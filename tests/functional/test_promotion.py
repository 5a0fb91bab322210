"""Promotion across accounts and regions (issue 13), against moto with two accounts."""

from __future__ import annotations

from datetime import UTC, datetime

from ecspilot.aws.service_state import ServiceState, held_records
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import Sandbox, push_event
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


def test_an_ecs_event_from_an_account_not_configured_stays_ignored(
    sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    world = World(sandbox, make_runtime, config(bake=30))
    recorder.reset()
    out = world.ecs_event(
        "completed",
        "ecs-svc/1",
        datetime.now(UTC),
        account="444444444444",
        region=TARGET_REGION,
        cluster="prod",
    )
    assert "untrusted origin account 444444444444" in out["ignored"]
    assert recorder.calls == []


def test_the_same_cluster_and_service_in_two_accounts_keep_their_records_apart(
    sandbox: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN the target account has a staging/web too (the source's names), promoted from staging/web
    cfg = config(bake=0)
    cfg["services"][1]["cluster"] = "staging"
    world = World(sandbox, make_runtime, cfg)
    world.target.cluster("staging")
    twin = world.target.task_definition("web-twin", {"app": sandbox.image("web", "v0")})
    world.target.service("staging", "web", twin)
    # WHEN v1 completes in the source and is promoted to the twin, whose deployment then FAILS
    v1 = world.release("v1")
    key = f"web@{TARGET_ACCOUNT}:{TARGET_REGION}"
    [promoted] = world.rt.history.deployments("staging", key)
    world.ecs_event(
        "failed",
        promoted["deployment_id"],
        datetime.now(UTC),
        TARGET_ACCOUNT,
        TARGET_REGION,
        cluster="staging",
    )
    # THEN each account's records and holds stay its own: the source's v1 is COMPLETED and not held
    assert [(r["status"], r["trigger"]) for r in world.rt.history.deployments("staging", "web")] == [
        ("COMPLETED", "push")
    ]
    assert world.rt.history.deployment(promoted["deployment_id"])["status"] == "FAILED"
    assert world.images(world.target, "staging")["app"].endswith(v1["image_digest"])
    states = ServiceState(world.rt.history).read([("staging", "web"), ("staging", key)])
    assert held_records(states[("staging", key)])[0]["image_digest"] == v1["image_digest"]
    assert held_records(states[("staging", "web")]) == []  # the source's digest is not held there
    again = invoke("deploy_on_push", push_event("web", "v1", v1["image_digest"]))  # a redelivery
    assert [s["outcome"] for s in again["services"]] == ["unchanged"]
