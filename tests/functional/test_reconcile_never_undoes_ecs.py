"""Reconcile never undoes ECS: its ``deployments`` part settles open records from ECS before
catch-up and promotion decide anything, and those two leave a service whose blue/green, linear or
canary deployment is still open (rolling out, baking, paused) to ECS: ``waiting``, with the reason.

The issue's sequence: a LINEAR deployment, its COMPLETED event during the bake, then ECS rolls it
back (an alarm) and sends no further event. The next reconcile must not deploy the rolled-back
digest again. moto has no service deployments API: an OperationStubber answers
ListServiceDeployments / DescribeServiceDeployments (validated against the API model); moto does
not roll the service back either, so the test puts it back on its previous revision as ECS would.
"""

from __future__ import annotations

from datetime import timedelta

from ecspilot.aws.deployment_fields import annotate
from ecspilot.aws.open_work import open_reason
from ecspilot.interfaces.runtime import Runtime
from ecspilot.reconcile.runbook import parts, reconcile
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import Sandbox, fake_digest
from ecspilot_dev.service_deployments import OperationStubber
from tests.conftest import MakeRuntime
from tests.functional.test_reconcile_open_deployments import completed_while_baking
from tests.functional.test_track_service_deployments import expect_describe, stub, world
from tests.moto_state import set_image_pushed_at
from tests.promotion_world import World, config

__all__ = ["stub", "world"]  # the tracker tests' fixtures


def _update_service_digests(recorder: CallRecorder, rt: Runtime) -> list[str]:
    out = []
    for params in recorder.params("UpdateService"):
        td = rt.clients.ecs.describe_task_definition(taskDefinition=params["taskDefinition"])
        out += [c["image"] for c in td["taskDefinition"]["containerDefinitions"]]
    return out


def test_the_deployments_part_runs_before_catch_up_and_promotion() -> None:
    names = [name for name, _ in parts()]
    assert names.index("deployments") < names.index("catch-up") < names.index("promotion")


def test_a_linear_rollback_learned_by_reconcile_is_held_and_never_redeployed(
    world: Sandbox, stub: tuple[Runtime, OperationStubber], recorder: CallRecorder
) -> None:
    rt, stubber = stub
    # GIVEN a LINEAR deployment of web:v1 whose COMPLETED event came during the bake (left open)
    conf, dep, baking_since = completed_while_baking(world, rt, stubber, "LINEAR")
    record = rt.history.deployment(dep) or {}
    # AND an alarm made ECS roll it back (no further event); ECS runs the previous revision again
    rt.clients.ecs.update_service(
        cluster="prod", service="web", taskDefinition=record["from_task_definition"]
    )
    expect_describe(
        stubber, conf, dep, "ROLLBACK_SUCCESSFUL", "CLEAN_UP", baking_since + timedelta(minutes=5)
    )
    recorder.reset()
    # WHEN the reconcile function runs every part
    result = invoke("reconcile", {})
    # THEN the record is ROLLED_BACK and v1 is held: catch-up does not deploy it again
    assert (rt.history.deployment(dep) or {})["status"] == "ROLLED_BACK"
    assert _update_service_digests(recorder, rt) == []
    assert recorder.params("RegisterTaskDefinition") == []
    catch_up = [a for a in result["actions"] if a["kind"] == "catch-up"]
    assert [a["change"] for a in catch_up] == ["conflict"], catch_up
    assert "ROLLED_BACK" in catch_up[0]["detail"], catch_up
    kinds = [a["kind"] for a in result["actions"]]
    assert kinds.index("deployment") < kinds.index("catch-up")
    # AND the next reconcile does not either
    recorder.reset()
    invoke("reconcile", {})
    assert recorder.params("UpdateService") == []


def test_catch_up_waits_while_ecs_still_bakes_and_says_why(
    world: Sandbox, stub: tuple[Runtime, OperationStubber], recorder: CallRecorder
) -> None:
    rt, stubber = stub
    # GIVEN a LINEAR deployment of v1 still baking, and a newer v2 pushed whose event was lost
    conf, dep, baking_since = completed_while_baking(world, rt, stubber, "LINEAR")
    world.push("web", "v2")
    set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=120)
    set_image_pushed_at("web", fake_digest("web:v2"), seconds_ago=0)
    expect_describe(stubber, conf, dep, "IN_PROGRESS", "BAKE_TIME", baking_since + timedelta(minutes=2))
    recorder.reset()
    # WHEN reconcile runs
    result = reconcile(rt)
    # THEN catch-up waits for ECS (no deployment over an open one), with the reason
    [catch_up] = [a for a in result.actions if a.kind == "catch-up"]
    assert catch_up.change == "waiting"
    assert dep in catch_up.detail
    assert "BAKE_TIME" in catch_up.detail
    assert recorder.params("UpdateService") == []
    assert (rt.history.deployment(dep) or {})["status"] == "IN_PROGRESS"
    # AND once ECS says SUCCESSFUL, the next reconcile closes it and deploys v2
    expect_describe(stubber, conf, dep, "SUCCESSFUL", "CLEAN_UP", baking_since + timedelta(minutes=31))
    result = reconcile(rt)
    assert (rt.history.deployment(dep) or {})["status"] == "COMPLETED"
    [catch_up] = [a for a in result.actions if a.kind == "catch-up"]
    assert (catch_up.change, catch_up.applied) == ("update", True), catch_up
    assert "v2" in catch_up.detail


def test_open_reason_counts_open_tracked_deployments_only() -> None:
    tracked = {"status": "IN_PROGRESS", "service_deployment_arn": "arn", "deployment_id": "d1"}
    assert "d1 is still open at BAKE_TIME" in open_reason([{**tracked, "lifecycle_stage": "BAKE_TIME"}])
    assert open_reason([{**tracked, "status": "COMPLETED"}]) == ""
    assert open_reason([{"status": "IN_PROGRESS", "deployment_id": "rolling"}]) == ""  # events decide
    assert open_reason([]) == ""


def test_promotion_waits_while_the_targets_own_deployment_is_open(
    sandbox: Sandbox, make_runtime: MakeRuntime
) -> None:
    from ecspilot.aws.history import DeploymentRecord  # noqa: PLC0415
    from ecspilot.domain.keys import state_keys  # noqa: PLC0415

    # GIVEN a release staging completed, and web-prod's own LINEAR deployment still baking
    w = World(sandbox, make_runtime, config(bake=0))
    w.release("v1")
    before = w.images()
    cluster, service = state_keys(w.rt.config, (w.rt.settings.account_id, w.rt.settings.region))["web-prod"]
    open_record = DeploymentRecord(
        cluster=cluster,
        service=service,
        from_task_definition="td:1",
        to_task_definition="td:2",
        image_digest=fake_digest("web:v0"),
        image_tag="v0",
        repository="web",
        deployment_id="ecs-svc/42",
        started_at="2026-12-07T04:00:00Z",
    )
    w.rt.history.record_deployments([open_record])
    annotate(
        w.rt.history, open_record.key(), {"service_deployment_arn": "arn:sd", "lifecycle_stage": "BAKE_TIME"}
    )
    # WHEN reconcile's promotion part runs
    [action] = w.reconcile()
    # THEN web-prod waits for ECS, with the reason, and nothing was deployed there
    assert (action.target, action.change) == ("web-prod", "waiting")
    assert "ecs-svc/42 is still open at BAKE_TIME" in action.detail
    assert w.images() == before
