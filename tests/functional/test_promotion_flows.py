"""Promotion's flows end to end (issue 13): a chain dev -> staging -> prod, a push and catch-up
never touching a promoted service, the accounts (one AssumeRole per account, a denied or throttled
one failing only its own promotions), the tracker's one timer per release, the reconcile input the
timer sends, and the CLI verbs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecspilot.interfaces.cli import main
from ecspilot.jobs.handler import reconcile_schedules
from ecspilot.reconcile.runbook import reconcile
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import REGION, Sandbox
from tests.conftest import TABLE, MakeRuntime
from tests.faults import Faults
from tests.moto_state import no_service_deployments_in_progress
from tests.promotion_world import (
    OTHER_ACCOUNT,
    OTHER_ROLE_ARN,
    TARGET_ACCOUNT,
    TARGET_REGION,
    World,
    assumed_clients,
    config,
)

TIMER_SETTINGS = {
    "reconcile_arn": f"arn:aws:lambda:{REGION}:123456789012:function:ecspilot-Reconcile",
    "scheduler_role_arn": "arn:aws:iam::123456789012:role/ecspilot-PromotionTimerRole",
    "schedule_group": "ecspilot",
}


def test_a_chain_dev_staging_prod_promotes_the_same_digest_stage_by_stage(
    sandbox: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN dev (follows pushes) -> staging (this account, bake 0) -> prod (other account, bake 0);
    # the world's "web-staging" plays dev here, its promoted copy "staging" runs in cluster qa
    sandbox.cluster("qa")
    cfg = config(bake=0)
    cfg["services"][1]["promote"]["from"] = "web-qa"
    cfg["services"].append(
        {
            "name": "web-qa",
            "cluster": "qa",
            "service": "web",
            "promote": {"from": "web-staging", "bake_minutes": 0},
        }
    )
    world = World(sandbox, make_runtime, cfg)
    world.own.service("qa", "web", world.own.task_definition("web-qa", {"app": sandbox.image("web", "v0")}))
    # WHEN dev's deployment of v1 completes: qa is promoted at once
    v1 = world.release("v1")
    assert world.images(world.own, "qa")["app"].endswith(v1["image_digest"])
    assert world.images()["app"] == sandbox.image("web", "v0")  # prod waits for qa's own COMPLETED
    # WHEN qa's deployment completes THEN prod gets the very same digest
    [qa] = world.rt.history.deployments("qa", "web")
    assert qa["trigger"] == "promotion"
    world.ecs_event("completed", qa["deployment_id"], datetime.now(UTC), cluster="qa")
    assert world.images()["app"] == f"{sandbox.registry}/web@{v1['image_digest']}"


def test_a_push_and_catch_up_never_touch_a_promoted_service(
    sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN a promoted service in this account whose ECS service follows the same repository
    cfg = config(bake=30)
    cfg["services"].append(
        {"name": "web-copy", "cluster": "staging", "service": "copy", "promote": {"from": "web-staging"}}
    )
    world = World(sandbox, make_runtime, cfg)
    sandbox.service("staging", "copy", sandbox.task_definition("copy", {"app": sandbox.image("web", "v0")}))
    # WHEN web:v1 is pushed, and catch-up runs
    result = invoke("deploy_on_push", sandbox.push("web", "v1"))
    actions = reconcile(
        world.rt,
        parts_to_run=[("catch-up", __import__("ecspilot.deploy.handler", fromlist=["x"]).reconcile_catch_up)],
    ).actions
    # THEN only web-staging was deployed; neither the push nor catch-up named the promoted services
    assert [s["name"] for s in result["services"]] == ["web-staging"]
    assert {a.target for a in actions} == {"staging/web"}
    assert all(p["service"] == "web" for p in recorder.params("UpdateService"))
    assert world.images(sandbox, "staging")["app"].endswith(result["digest"])
    svc = sandbox.clients.ecs.describe_services(cluster="staging", services=["copy"])["services"][0]
    assert svc["taskDefinition"].endswith("copy:1")


def test_one_assume_role_per_account_per_invocation_whatever_the_services(
    sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN two promoted services in the same target account
    cfg = config(bake=30)
    cfg["services"].append(
        {
            "name": "api-prod",
            "account": "prod",
            "cluster": "prod",
            "service": "api",
            "promote": {"from": "web-staging"},
        }
    )
    world = World(sandbox, make_runtime, cfg)
    world.target.service(
        "prod", "api", world.target.task_definition("api-prod", {"app": sandbox.image("web", "v0")})
    )
    world.backdate(world.release("v1"), 31)
    # WHEN reconcile promotes both
    recorder.reset()
    actions = world.reconcile()
    # THEN both are promoted, with one AssumeRole
    assert [(a.target, a.change, a.applied) for a in actions] == [
        ("web-prod", "update", True),
        ("api-prod", "update", True),
    ]
    [assumed] = recorder.params("AssumeRole")
    assert assumed["RoleSessionName"] == "ecspilot-reconcile"
    assert "ExternalId" not in assumed


@pytest.mark.parametrize("code", ["AccessDenied", "Throttling"])
def test_an_account_whose_role_cannot_be_assumed_fails_only_its_promotions(
    code: str, sandbox: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    # GIVEN prod (assumable) and dr, another account whose AssumeRole is denied or throttled past retries
    cfg = config(bake=30)
    cfg["accounts"]["dr"] = {
        "role_arn": OTHER_ROLE_ARN,
        "region": TARGET_REGION,
        "external_id": "ecspilot-dr",
    }
    cfg["services"].append(
        {
            "name": "web-dr",
            "account": "dr",
            "cluster": "dr",
            "service": "web",
            "promote": {"from": "web-staging"},
        }
    )
    world = World(sandbox, make_runtime, cfg)
    dr = Sandbox(
        assumed_clients(sandbox.clients, OTHER_ROLE_ARN, TARGET_REGION), OTHER_ACCOUNT, TARGET_REGION
    )
    dr.cluster("dr")
    dr.service("dr", "web", dr.task_definition("web-dr", {"app": sandbox.image("web", "v0")}))
    v1 = world.backdate(world.release("v1"), 31)
    rule = faults.fail("AssumeRole", "error", code=code, when=lambda p: p.get("RoleArn") == OTHER_ROLE_ARN)
    # WHEN reconcile runs
    actions = {a.target: a for a in world.reconcile()}
    # THEN prod is promoted and dr is one error naming the role; dr is untouched
    assert (actions["web-prod"].change, actions["web-prod"].applied) == ("update", True)
    assert actions["web-dr"].change == "error"
    assert OTHER_ROLE_ARN in actions["web-dr"].detail
    assert code in actions["web-dr"].detail
    assert rule.fired >= 1
    assert world.images()["app"].endswith(v1["image_digest"])
    assert world.images(dr, "dr")["app"] == sandbox.image("web", "v0")
    # WHEN the role can be assumed again THEN the next reconcile promotes dr too (with its ExternalId)
    faults.clear()
    actions = {a.target: a for a in world.reconcile()}
    assert (actions["web-dr"].change, actions["web-dr"].applied) == ("update", True)
    assert world.images(dr, "dr")["app"].endswith(v1["image_digest"])


def test_a_redelivered_completed_event_sets_one_timer_which_runs_the_same_evaluation(
    sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN bake 30 and the tracker configured to set timers in ecspilot's group
    sandbox.clients.scheduler.create_schedule_group(Name="ecspilot")
    world = World(sandbox, make_runtime, config(bake=30), **TIMER_SETTINGS)
    # WHEN staging's COMPLETED event comes, and comes again
    record = world.release("v1", status=None)
    completed = datetime.now(UTC)
    first = world.ecs_event("completed", record["deployment_id"], completed)
    again = world.ecs_event("completed", record["deployment_id"], completed)
    # THEN one one-time schedule exists, at the end of the bake, deleted after it fires
    assert first["promotions"][0]["created"] is True
    assert "promotions" not in again  # the record had moved already: no second timer
    scheduler = sandbox.clients.scheduler
    [summary] = scheduler.list_schedules(GroupName="ecspilot")["Schedules"]
    timer = scheduler.get_schedule(Name=summary["Name"], GroupName="ecspilot")
    assert timer["ScheduleExpression"].startswith("at(")
    assert timer["ActionAfterCompletion"] == "DELETE"
    assert timer["Target"]["Arn"] == TIMER_SETTINGS["reconcile_arn"]
    payload = json.loads(timer["Target"]["Input"])
    assert payload == {"trigger": "promotion", "service": "web-prod"}
    # AND the schedules part of reconcile leaves it alone
    schedules = reconcile(world.rt, parts_to_run=[("schedules", reconcile_schedules)]).actions
    assert schedules == []
    assert len(scheduler.list_schedules(GroupName="ecspilot")["Schedules"]) == 1
    # WHEN the timer fires (after the bake) THEN reconcile evaluates web-prod and promotes it
    world.backdate(record, 31)
    out = invoke("reconcile", payload)
    assert [a["change"] for a in out["actions"]] == ["update"]
    assert world.images()["app"].endswith(record["image_digest"])


def test_a_timer_that_could_not_be_set_is_counted_and_reconcile_still_promotes(
    sandbox: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    # the timer is set after the record moved: a failed CreateSchedule is logged and counted
    # (reconcile's schedule promotes anyway); a retried event finds the record moved and sets none
    sandbox.clients.scheduler.create_schedule_group(Name="ecspilot")
    world = World(sandbox, make_runtime, config(bake=30), **TIMER_SETTINGS)
    record = world.release("v1", status=None)
    with faults.active(faults.fail("CreateSchedule", "error", code="InternalServerException")):
        out = world.ecs_event("completed", record["deployment_id"], datetime.now(UTC))
    assert "error" in out["promotions"][0]
    assert sandbox.clients.scheduler.list_schedules(GroupName="ecspilot")["Schedules"] == []
    # reconcile still promotes it once the bake is over
    world.backdate(world.rt.history.deployment(record["deployment_id"]) or {}, 31)
    world.reconcile()
    assert world.images()["app"].endswith(record["image_digest"])


def cli_world(
    world: World, tmp_path: Path, cfg: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    path = tmp_path / "ecspilot.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    monkeypatch.setenv("ECSPILOT_TABLE", TABLE)
    monkeypatch.setenv("ECSPILOT_ACCOUNT_ID", "123456789012")
    return ["--config", str(path), "--region", REGION]


def test_cli_promote_approve_and_history(
    sandbox: Sandbox,
    make_runtime: MakeRuntime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = config(bake=30, approval=True)
    world = World(sandbox, make_runtime, cfg)
    base = cli_world(world, tmp_path, cfg, monkeypatch)
    session = sandbox.clients.base_session()
    v1 = world.release("v1")
    digest = v1["image_digest"]
    # a digest the source never COMPLETED is refused (bad input, exit 2), unless forced
    never = "sha256:" + "0" * 64
    assert main([*base, "promote", "web-prod", "--digest", never], session=session) == 2
    assert "never COMPLETED" in capsys.readouterr().err
    # through the gates: baking -> exit 1, nothing changed
    assert main([*base, "promote", "web-prod", "--digest", digest], session=session) == 1
    assert "waiting (bake ends at" in capsys.readouterr().out
    assert world.images()["app"] == sandbox.image("web", "v0")
    # approve: nothing awaits approval yet? it waits for its bake: the approval is recorded for v1
    assert main([*base, "approve", "web-prod"], session=session) == 0
    capsys.readouterr()
    world.backdate(v1, 31)
    # the bake over and approved: the dry run says promote, the real run promotes
    assert main([*base, "promote", "web-prod", "--digest", digest, "--dry-run"], session=session) == 0
    assert world.images()["app"] == sandbox.image("web", "v0")
    assert main([*base, "promote", "web-prod", "--digest", digest], session=session) == 0
    assert world.images()["app"].endswith(digest)
    capsys.readouterr()
    # history shows the promotion with its source deployment and gates
    assert main([*base, "history", "web-prod"], session=session) == 0
    out = capsys.readouterr().out
    assert v1["deployment_id"] in out
    assert "approval: given" in out
    assert "bake: ended at" in out
    # a forced promotion of a digest staging never completed pins prod on it
    assert (
        main(
            [*base, "--output", "json", "promote", "web-prod", "--digest", never, "--force"], session=session
        )
        == 0
    )
    assert world.images()["app"].endswith(never)
    capsys.readouterr()
    # and reconcile keeps the pin (v1 completed before it)
    assert [a.detail.split(" ")[0] for a in world.reconcile()] == ["in-sync"]
    assert world.images()["app"].endswith(never)
    # a service that is not promoted: approve is the pause hooks' (nothing paused: exit 1)
    with no_service_deployments_in_progress():  # ECS: nothing in progress (moto lacks the API)
        assert main([*base, "approve", "web-staging"], session=session) == 1
    assert "no paused deployment of web-staging" in capsys.readouterr().err
    assert TARGET_ACCOUNT  # the target account's records are keyed with it (see test_promotion)


def test_plan_prints_each_promotion_and_a_due_one_is_a_change(
    sandbox: Sandbox,
    make_runtime: MakeRuntime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    recorder: CallRecorder,
) -> None:
    cfg = config(bake=30)
    world = World(sandbox, make_runtime, cfg)
    base = cli_world(world, tmp_path, cfg, monkeypatch)
    session = sandbox.clients.base_session()
    record = world.release("v1")
    # baking: a waiting line, no change (exit 0 with --detailed-exitcode)
    assert main([*base, "plan", "--detailed-exitcode"], session=session) == 0
    assert "waiting (bake ends at" in capsys.readouterr().out
    # baked: a promote line, a change (exit 3), and the dry run wrote nothing
    world.backdate(record, 31)
    recorder.reset()
    assert main([*base, "plan", "--detailed-exitcode"], session=session) == 3
    out = capsys.readouterr().out
    assert f"promote {record['image_digest'][:19]} from web-staging {record['deployment_id']}" in out
    assert [w for w in recorder.writes() if w != "AssumeRole"] == []  # AssumeRole changes nothing
    assert world.images()["app"] == sandbox.image("web", "v0")


def test_a_timer_for_a_service_no_longer_promoted_is_ignored(
    sandbox: Sandbox, make_runtime: MakeRuntime
) -> None:
    World(sandbox, make_runtime, config(bake=30))
    out = invoke("reconcile", {"trigger": "promotion", "service": "web-gone"})
    assert "not a promoted service" in out["ignored"]


def test_setting_the_same_timer_twice_creates_one_schedule(sandbox: Sandbox) -> None:
    # the name comes from the target and the source deployment: a second attempt (two deliveries
    # of the COMPLETED event racing) finds it there and creates none
    from ecspilot.promotion.decisions import schedule_name  # noqa: PLC0415
    from ecspilot.promotion.timer import TimerTarget, set_timer  # noqa: PLC0415

    scheduler = sandbox.clients.scheduler
    scheduler.create_schedule_group(Name="ecspilot")
    where = TimerTarget(TIMER_SETTINGS["reconcile_arn"], TIMER_SETTINGS["scheduler_role_arn"], "ecspilot")
    name = schedule_name("web-prod", "ecs-svc/42")
    when = datetime.now(UTC)
    assert set_timer(scheduler, where, name, when, "web-prod") is True
    assert set_timer(scheduler, where, name, when, "web-prod") is False
    assert [s["Name"] for s in scheduler.list_schedules(GroupName="ecspilot")["Schedules"]] == [name]
