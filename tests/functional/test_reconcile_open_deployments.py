"""Reconcile's ``deployments`` part: a blue/green, linear or canary deployment whose COMPLETED event
came during the bake is closed once ECS says how it ended, though ECS sends no further event.

Deployments are started by the real deploy_on_push handler against moto and tracked by the real
track_deployments handler; moto has no service deployments API, so an :class:`OperationStubber`
answers ListServiceDeployments and DescribeServiceDeployments on the runtime's own ECS client
(each request and response validated against the API model).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecspilot.domain.service_deployments import stage_text
from ecspilot.interfaces.runtime import Runtime
from ecspilot.promotion.handler import reconcile_promotions
from ecspilot.reconcile.runbook import reconcile
from ecspilot.tracking.handler import reconcile_deployments
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import Sandbox, fake_digest, push_event
from ecspilot_dev.service_deployments import OperationStubber, strategy_configuration
from tests.conftest import MakeRuntime
from tests.faults import Faults
from tests.functional.test_track_deployments import emitted, metric_values
from tests.functional.test_track_service_deployments import (
    SD_ARN,
    TRACK,
    deploy,
    event,
    expect_describe,
    expect_list,
    stub,
    use_strategy,
    world,
)
from tests.promotion_world import World, config
from tests.races import race

__all__ = ["stub", "world"]  # the fixtures, shared with the tracker's tests

PART = [("deployments", reconcile_deployments)]


def completed_while_baking(
    world: Sandbox, rt: Runtime, stubber: OperationStubber, strategy: str = "LINEAR"
) -> tuple[dict[str, Any], str, datetime]:
    """A deployment whose SERVICE_DEPLOYMENT_COMPLETED event came in BAKE_TIME: left open, linked."""
    conf = use_strategy(rt, strategy)
    dep = deploy(world, rt)["deployment_id"]
    baking_since = datetime.now(UTC) - timedelta(minutes=12)
    expect_list(stubber, dep, baking_since - timedelta(minutes=5))
    expect_describe(stubber, conf, dep, "IN_PROGRESS", "BAKE_TIME", baking_since)
    invoke(TRACK, event("ecs_deployment_bluegreen_completed", dep, baking_since))
    record = rt.history.deployment(dep) or {}
    assert (record["status"], record["service_deployment_arn"]) == ("IN_PROGRESS", SD_ARN)
    return conf, dep, baking_since


def test_a_linear_deployment_completed_during_the_bake_is_closed_by_reconcile_once_ecs_says_successful(
    world: Sandbox,
    stub: tuple[Runtime, OperationStubber],
    capsys: pytest.CaptureFixture[str],
    recorder: CallRecorder,
) -> None:
    rt, stubber = stub
    conf, dep, baking_since = completed_while_baking(world, rt, stubber)
    # GIVEN ECS sends no further event; the bake ends and ECS says SUCCESSFUL
    done = baking_since + timedelta(minutes=31)
    expect_describe(stubber, conf, dep, "SUCCESSFUL", "CLEAN_UP", done)
    capsys.readouterr()
    # WHEN the reconcile function runs (every part)
    result = invoke("reconcile", {})
    # THEN the record is COMPLETED, as the event would have made it, and counted
    record = rt.history.deployment(dep) or {}
    assert (record["status"], record["ecs_status"]) == ("COMPLETED", "SUCCESSFUL")
    assert record["finished_at"].startswith(done.strftime("%Y-%m-%dT%H:%M"))
    mine = [a for a in result["actions"] if a["kind"] == "deployment"]
    assert [(a["change"], a["applied"]) for a in mine] == [("update", True)]
    assert "IN_PROGRESS -> COMPLETED" in mine[0]["detail"]
    assert metric_values(emitted(capsys.readouterr().out), "DeploymentsSucceeded") == [1.0]
    # AND a second reconcile reads it no more and writes nothing
    recorder.reset()
    again = reconcile(rt, parts_to_run=PART)
    assert again.actions == []
    assert "DescribeServiceDeployments" not in recorder.ops("ecs")
    assert recorder.writes() == []


def test_a_deployment_still_baking_stays_in_progress_with_its_stage_updated(
    world: Sandbox, stub: tuple[Runtime, OperationStubber], recorder: CallRecorder
) -> None:
    rt, stubber = stub
    conf, dep, baking_since = completed_while_baking(world, rt, stubber, "CANARY")
    # GIVEN ECS says the deployment is still baking, its service deployment updated since
    later = baking_since + timedelta(minutes=3)
    expect_describe(stubber, conf, dep, "IN_PROGRESS", "CLEAN_UP", later)
    result = reconcile(rt, parts_to_run=PART)
    # THEN the record stays IN_PROGRESS, its stage written
    record = rt.history.deployment(dep) or {}
    assert (record["status"], record["lifecycle_stage"]) == ("IN_PROGRESS", "CLEAN_UP")
    assert stage_text(record, datetime.now(UTC)) == "cleaning up the old revision"
    assert [(a.change, a.applied) for a in result.actions] == [("update", True)]
    # AND a second reconcile that learns nothing new writes nothing
    expect_describe(stubber, conf, dep, "IN_PROGRESS", "CLEAN_UP", later)
    recorder.reset()
    again = reconcile(rt, parts_to_run=PART)
    assert [a.change for a in again.actions] == ["in-sync"]
    assert recorder.writes() == []
    assert (rt.history.deployment(dep) or {})["status"] == "IN_PROGRESS"


def test_a_rollback_found_by_reconcile_is_rolled_back_and_its_digest_held(
    world: Sandbox, stub: tuple[Runtime, OperationStubber], capsys: pytest.CaptureFixture[str]
) -> None:
    rt, stubber = stub
    conf, dep, baking_since = completed_while_baking(world, rt, stubber, "BLUE_GREEN")
    # GIVEN an alarm rolled the deployment back during its bake, and no event said so
    expect_describe(
        stubber, conf, dep, "ROLLBACK_SUCCESSFUL", "CLEAN_UP", baking_since + timedelta(minutes=5)
    )
    capsys.readouterr()
    invoke("reconcile", {})  # the function: its metrics are flushed
    # THEN the record is ROLLED_BACK, counted, with the reason ECS gave
    record = rt.history.deployment(dep) or {}
    assert (record["status"], record["reason"]) == ("ROLLED_BACK", "alarm web-5xx in ALARM")
    assert metric_values(emitted(capsys.readouterr().out), "DeploymentsRolledBack") == [1.0]
    # AND a redelivered push of that image is held (ECS went back to v0: moto does not, so the
    # service is put back on its previous revision here)
    rt.clients.ecs.update_service(
        cluster="prod", service="web", taskDefinition=record["from_task_definition"]
    )
    again = invoke("deploy_on_push", push_event("web", "v1", fake_digest("web:v1")))
    assert [o["outcome"] for o in again["services"]] == ["held"]


def test_a_throttled_read_is_one_error_action_nothing_written_and_the_other_parts_still_run(
    world: Sandbox, stub: tuple[Runtime, OperationStubber], faults: Faults, recorder: CallRecorder
) -> None:
    rt, stubber = stub
    _, dep, _ = completed_while_baking(world, rt, stubber)
    # GIVEN DescribeServiceDeployments throttled past botocore's retries
    rule = faults.fail("DescribeServiceDeployments", "error", code="ThrottlingException")
    recorder.reset()
    ran: list[str] = []

    def after(rt: Runtime, dry_run: bool) -> list[Any]:
        ran.append("after")
        return []

    result = reconcile(rt, parts_to_run=[*PART, ("after", after)])
    # THEN one error action, nothing written, the record still open, and the next part ran
    assert rule.fired >= 1
    assert [(a.kind, a.change) for a in result.actions] == [("deployments", "error")]
    assert "ThrottlingException" in result.actions[0].detail
    assert recorder.writes() == []
    assert ran == ["after"]
    assert (rt.history.deployment(dep) or {})["status"] == "IN_PROGRESS"


def test_plan_shows_would_move_and_writes_nothing(
    world: Sandbox, stub: tuple[Runtime, OperationStubber], recorder: CallRecorder
) -> None:
    rt, stubber = stub
    conf, dep, baking_since = completed_while_baking(world, rt, stubber)
    expect_describe(stubber, conf, dep, "SUCCESSFUL", "CLEAN_UP", baking_since + timedelta(minutes=31))
    recorder.reset()
    result = reconcile(rt, dry_run=True, parts_to_run=PART)
    [action] = result.actions
    assert (action.change, action.applied) == ("update", False)
    assert action.detail.startswith("would-move IN_PROGRESS -> COMPLETED")
    assert recorder.writes() == []
    assert (rt.history.deployment(dep) or {})["status"] == "IN_PROGRESS"


@pytest.fixture
def promotion(sandbox: Sandbox, make_runtime: MakeRuntime) -> Iterator[tuple[World, OperationStubber]]:
    w = World(sandbox, make_runtime, config(bake=0))
    w.rt.clients.ecs.update_service(
        cluster="staging", service="web", deploymentConfiguration=strategy_configuration("LINEAR")
    )
    with OperationStubber(w.rt.clients.ecs) as stubber:
        yield w, stubber
        assert stubber.pending == 0


def test_a_release_closed_by_reconcile_is_promoted_in_the_same_run(
    promotion: tuple[World, OperationStubber],
) -> None:
    from ecspilot_dev.sandbox import ACCOUNT, REGION  # noqa: PLC0415
    from ecspilot_dev.service_deployments import brief, deployment_arn, described, revision_arn  # noqa: PLC0415

    w, stubber = promotion
    conf = strategy_configuration("LINEAR")
    sd = deployment_arn(REGION, ACCOUNT, "staging", "web", "lin1")
    now = datetime.now(UTC)
    invoke("deploy_on_push", w.own.push("web", "v1"))
    dep = next(r for r in w.rt.history.deployments("staging", "web") if r["image_tag"] == "v1")[
        "deployment_id"
    ]
    target = revision_arn(REGION, ACCOUNT, "staging", "web", dep)

    def answer(status: str, stage: str) -> None:
        body = described(sd, status, stage, target, conf, created_at=now, updated_at=now)
        stubber.add_response("describe_service_deployments", {"serviceDeployments": [body]})

    # GIVEN staging's COMPLETED event came during the bake: not promoted
    stubber.add_response(
        "list_service_deployments", {"serviceDeployments": [brief(sd, "IN_PROGRESS", target, now)]}
    )
    answer("IN_PROGRESS", "BAKE_TIME")
    w.ecs_event("completed", dep, now)
    assert (w.rt.history.deployment(dep) or {})["status"] == "IN_PROGRESS"
    assert w.images()["app"].endswith(":v0")
    # WHEN ECS says SUCCESSFUL and reconcile runs its deployments part, then promotion
    answer("SUCCESSFUL", "CLEAN_UP")
    result = reconcile(w.rt, parts_to_run=[*PART, ("promotion", reconcile_promotions)])
    # THEN the release is COMPLETED and web-prod runs v1 after this one run
    assert (w.rt.history.deployment(dep) or {})["status"] == "COMPLETED"
    assert w.images()["app"].endswith("@" + fake_digest("web:v1")), result.actions
    assert [a.kind for a in result.actions] == ["deployment", "promotion"]


def test_reconcile_racing_the_late_event_closes_the_record_once(
    world: Sandbox, stub: tuple[Runtime, OperationStubber]
) -> None:
    rt, stubber = stub
    conf, dep, baking_since = completed_while_baking(world, rt, stubber)
    done = baking_since + timedelta(minutes=31)
    for _ in range(2):  # the same answer for each reader, whichever asks first
        expect_describe(stubber, conf, dep, "SUCCESSFUL", "CLEAN_UP", done)
    late = event("ecs_deployment_bluegreen_completed", dep, done)
    # WHEN reconcile and a late COMPLETED event read and move the record at the same time (threads)
    by_reconcile, by_event = race(lambda: reconcile(rt, parts_to_run=PART), lambda: invoke(TRACK, late))
    # THEN it is COMPLETED, moved by exactly one of them (one conditional write wins)
    assert (rt.history.deployment(dep) or {})["status"] == "COMPLETED"
    applied = [a for a in by_reconcile.actions if a.change == "update" and a.applied]
    assert len(applied) + len(by_event["moved"]) == 1, (by_reconcile.actions, by_event)


def test_an_event_that_closes_the_record_while_reconcile_reads_it_leaves_reconcile_nothing_to_move(
    world: Sandbox,
    stub: tuple[Runtime, OperationStubber],
    faults: Faults,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rt, stubber = stub
    conf, dep, baking_since = completed_while_baking(world, rt, stubber)
    done = baking_since + timedelta(minutes=31)
    for _ in range(2):
        expect_describe(stubber, conf, dep, "SUCCESSFUL", "CLEAN_UP", done)
    delivered: list[dict[str, Any]] = []

    def late_event_first(_: Any) -> bool:
        """The late COMPLETED event, tracked after reconcile found the record open (no fault)."""
        if not delivered:
            delivered.append({})
            delivered[0] = invoke(TRACK, event("ecs_deployment_bluegreen_completed", dep, done))
        return False

    faults.fail("DescribeServiceDeployments", "delay", when=late_event_first)
    capsys.readouterr()
    # WHEN the event closes the record between reconcile's Query and its move
    result = reconcile(rt, parts_to_run=PART)
    # THEN the event moved it; reconcile's conditional move found it moved on: no second move
    assert delivered[0]["moved"] == [{"deployment_id": dep, "from": "IN_PROGRESS", "to": "COMPLETED"}]
    assert [(a.change, a.applied) for a in result.actions] == [("in-sync", False)]
    assert (rt.history.deployment(dep) or {})["status"] == "COMPLETED"
    assert metric_values(emitted(capsys.readouterr().out), "DeploymentsSucceeded") == [1.0]


def test_the_part_reads_one_query_per_own_service_and_leaves_other_accounts_alone(
    promotion: tuple[World, OperationStubber], recorder: CallRecorder
) -> None:
    w, _ = promotion
    # GIVEN web-staging (ecspilot's account) and web-prod (another account), neither deploying
    recorder.reset()
    result = reconcile(w.rt, parts_to_run=PART)
    # THEN one Query (web-staging's newest records), no ECS call, nothing to do
    assert result.actions == []
    assert recorder.ops() == ["Query"]
    assert recorder.calls[0][2]["ExpressionAttributeValues"][":pk"]["S"].endswith("staging#web")
