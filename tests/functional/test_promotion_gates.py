"""Every promotion gate blocks on its own (issue 13): the source's deployment not COMPLETED, the
bake, the source no longer running the digest, an alarm in ALARM now or during the bake, a missing
approval; a hold on the target. Each test breaks one gate and shows the plan word, then (where the
gate can pass) that the promotion happens once it does."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ecspilot.interfaces import runtime
from ecspilot.promotion.handler import promoter
from ecspilot.promotion.manual import approve_promotion
from ecspilot_dev.local import CallRecorder
from ecspilot_dev.sandbox import Sandbox
from tests.conftest import MakeRuntime
from tests.promotion_world import TARGET_ACCOUNT, TARGET_REGION, World, config


def on_v0(world: World, sandbox: Sandbox) -> bool:
    return world.images()["app"] == sandbox.image("web", "v0")


@pytest.mark.parametrize("status", [None, "failed"])
def test_a_source_deployment_that_did_not_complete_is_never_promoted(
    status: str | None, sandbox: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN staging's deployment of v1 still IN_PROGRESS, or FAILED
    world = World(sandbox, make_runtime, config(bake=0))
    record = world.release("v1", status=status)
    assert record["status"] == ("FAILED" if status else "IN_PROGRESS")
    # WHEN reconcile evaluates prod
    assert world.plan() == ["web-prod: waiting (the source has no COMPLETED deployment yet)"]
    world.reconcile()
    # THEN prod is not touched
    assert on_v0(world, sandbox)


def test_a_release_still_baking_waits_for_the_end_of_its_bake_then_is_promoted(
    sandbox: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN staging COMPLETED v1 just now, bake 30 minutes
    world = World(sandbox, make_runtime, config(bake=30))
    record = world.release("v1")
    # THEN the plan waits for the end of the bake, and reconcile changes nothing
    [line] = world.plan()
    assert line.startswith("web-prod: waiting (bake ends at 20")
    world.reconcile()
    assert on_v0(world, sandbox)
    # WHEN the bake is over
    world.backdate(record, 31)
    world.reconcile()
    # THEN prod runs the release
    assert world.images()["app"].endswith(record["image_digest"])


def test_a_release_the_source_no_longer_runs_is_blocked(sandbox: Sandbox, make_runtime: MakeRuntime) -> None:
    # GIVEN v1 COMPLETED and baked, then v2 pushed to staging (still IN_PROGRESS)
    world = World(sandbox, make_runtime, config(bake=30))
    v1 = world.backdate(world.release("v1"), 31)
    v2 = world.release("v2", status=None)
    # THEN v1 is blocked: staging runs v2 now; v2 is not COMPLETED
    [line] = world.plan()
    assert line == (
        f"web-prod: blocked (web-staging no longer runs {v1['image_digest'][:19]} "
        f"(runs {v2['image_digest'][:19]}))"
    )
    world.reconcile()
    assert on_v0(world, sandbox)


def test_an_alarm_in_alarm_now_blocks_and_notifies_once_per_release_and_reason(
    sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN an SNS topic, staging-5xx in ALARM, and v1 COMPLETED after it (bake 0)
    topic = sandbox.clients.sns.create_topic(Name="ecspilot-notify")["TopicArn"]
    world = World(sandbox, make_runtime, config(bake=0, alarms=("staging-5xx",)), notify_topic_arn=topic)
    world.alarm("staging-5xx")
    world.alarm("staging-5xx", "ALARM")
    world.release("v1")  # the tracker evaluates at once (bake 0): blocked
    # THEN the plan names the alarm; prod stays on v0
    assert world.plan() == ["web-prod: blocked (alarm staging-5xx in ALARM)"]
    assert on_v0(world, sandbox)
    # AND reconciles after the first notice publish nothing more
    recorder.reset()
    world.reconcile()
    world.reconcile()
    assert recorder.count("Publish") == 0
    assert recorder.writes() == []
    # AND the one notice (sent when the tracker first saw it blocked) is in the history
    runs = promoter(world.rt).records.runs("web-prod")
    assert [(r["outcome"], r["detail"]) for r in runs] == [
        ("blocked", "blocked (alarm staging-5xx in ALARM)")
    ]


def test_the_blocked_notice_is_published_once(
    sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    topic = sandbox.clients.sns.create_topic(Name="ecspilot-notify")["TopicArn"]
    world = World(sandbox, make_runtime, config(bake=30, alarms=("staging-5xx",)), notify_topic_arn=topic)
    world.alarm("staging-5xx")
    world.alarm("staging-5xx", "ALARM")
    record = world.release("v1")
    world.backdate(record, 31)
    recorder.reset()
    for _ in range(3):
        world.reconcile()
    [publish] = recorder.params("Publish")
    assert "staging-5xx in ALARM" in publish["Message"]
    assert json.dumps(publish["MessageAttributes"]["kind"]) == json.dumps(
        {"DataType": "String", "StringValue": "promotion"}
    )


def test_an_alarm_that_changed_state_during_the_bake_blocks_even_when_ok_now(
    sandbox: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN staging-5xx quiet when v1 COMPLETED (bake 30), then ALARM and back to OK
    world = World(sandbox, make_runtime, config(bake=30, alarms=("staging-5xx",)))
    world.alarm("staging-5xx")
    record = world.release("v1", completed=datetime.now(UTC))
    world.alarm("staging-5xx", "ALARM")
    world.alarm("staging-5xx", "OK")
    world.backdate(record, 31)
    # THEN it is blocked: the alarm moved during the bake, and moto has no alarm history to
    # tell a dip into ALARM from a harmless move (real AWS would name the time it went into ALARM)
    [line] = world.plan()
    assert line.startswith("web-prod: blocked (alarm staging-5xx ")
    world.reconcile()
    assert on_v0(world, sandbox)


def test_a_quiet_alarm_lets_the_release_through(sandbox: Sandbox, make_runtime: MakeRuntime) -> None:
    world = World(sandbox, make_runtime, config(bake=0, alarms=("staging-5xx",)))
    world.alarm("staging-5xx")
    record = world.release("v1")  # bake 0: the tracker promotes at once
    assert world.images()["app"].endswith(record["image_digest"])
    assert world.plan() == [f"web-prod: in-sync (runs {record['image_digest'][:19]})"]


def test_approval_is_required_then_given_and_a_newer_release_needs_a_new_one(
    sandbox: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN approval: true and v1 COMPLETED (bake 0)
    world = World(sandbox, make_runtime, config(bake=0, approval=True))
    v1 = world.release("v1")
    # THEN it awaits approval, and prod is untouched
    [line] = world.plan()
    assert line.startswith("web-prod: awaiting approval")
    assert on_v0(world, sandbox)
    # WHEN it is approved (the approval names v1's deployment) THEN it is promoted at once
    [done] = approve_promotion(promoter(runtime.current()), "web-prod", by="test")
    assert done.applied
    assert world.images()["app"].endswith(v1["image_digest"])
    # WHEN v2 completes THEN it awaits its own approval
    world.release("v2")
    [line] = world.plan()
    assert line.startswith("web-prod: awaiting approval")
    assert world.images()["app"].endswith(v1["image_digest"])


def test_a_digest_that_failed_on_the_target_is_held_there(
    sandbox: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN v1 promoted to prod (bake 0), and its deployment there FAILED (the target account's event)
    world = World(sandbox, make_runtime, config(bake=0))
    v1 = world.release("v1")
    [record] = world.rt.history.deployments("prod", f"web@{TARGET_ACCOUNT}:{TARGET_REGION}")
    world.ecs_event(
        "failed", record["deployment_id"], datetime.now(UTC), TARGET_ACCOUNT, TARGET_REGION, cluster="prod"
    )
    # AND prod back on v0 (the circuit breaker's rollback)
    v0 = world.target.clients.ecs.describe_task_definition(taskDefinition="web-prod:1")["taskDefinition"]
    world.target.clients.ecs.update_service(
        cluster="prod", service="web", taskDefinition=v0["taskDefinitionArn"]
    )
    # THEN v1 is held on prod: blocked, never redeployed
    assert world.plan() == [f"web-prod: blocked ({v1['image_digest'][:19]} was FAILED on the target: held)"]
    world.reconcile()
    assert on_v0(world, sandbox)
