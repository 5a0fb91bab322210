"""Schedule reconciliation against moto's EventBridge Scheduler: create, update on change,
delete on removal, nothing outside ecspilot's group, and a second run that writes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecspilot.aws.clients import Clients
from ecspilot.domain.config import parse_config
from ecspilot.jobs.schedules import ScheduleTarget, schedule_name, sync_schedules
from ecspilot.reconcile.runbook import reconcile
from ecspilot_dev.local import CallRecorder, invoke
from tests.conftest import MakeRuntime
from tests.faults import Faults

GROUP = "ecspilot-test"
RUN_JOB = "arn:aws:lambda:us-east-1:123456789012:function:ecspilot-RunJob"
ROLE = "arn:aws:iam::123456789012:role/ecspilot-scheduler"
DLQ = "arn:aws:sqs:us-east-1:123456789012:ecspilot-scheduler-dlq"
SETTINGS = {
    "schedule_group": GROUP,
    "run_job_arn": RUN_JOB,
    "scheduler_role_arn": ROLE,
    "scheduler_dlq_arn": DLQ,
}


def job(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "cluster": "prod", "task_definition": name, **fields}


def config(*jobs: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "jobs": list(jobs)}


@pytest.fixture
def groups(clients: Clients) -> Clients:
    clients.scheduler.create_schedule_group(Name=GROUP)
    clients.scheduler.create_schedule_group(Name="someone-else")
    return clients


def schedule(clients: Clients, name: str, group: str = GROUP) -> dict[str, Any]:
    return dict(clients.scheduler.get_schedule(Name=name, GroupName=group))


def names(clients: Clients, group: str = GROUP) -> list[str]:
    return sorted(s["Name"] for s in clients.scheduler.list_schedules(GroupName=group)["Schedules"])


def test_reconcile_creates_a_schedule_per_scheduled_job_targeting_run_job(
    groups: Clients, make_runtime: MakeRuntime
) -> None:
    rt = make_runtime(
        config(
            job("nightly-report", schedule="cron(0 3 * * ? *)", timezone="Europe/Rome"),
            job(
                "cleanup",
                schedule="rate(15 minutes)",
                enabled=False,
                flexible_window_minutes=5,
                retry_policy={"maximum_event_age_seconds": 600, "maximum_retry_attempts": 2},
            ),
            job("migration"),
        ),
        **SETTINGS,
    )
    result = reconcile(rt)
    assert [(a.target, a.change, a.applied) for a in result.actions] == [
        (f"{GROUP}/cleanup", "create", True),
        (f"{GROUP}/nightly-report", "create", True),
    ]
    nightly = schedule(groups, "nightly-report")
    assert (nightly["ScheduleExpression"], nightly["ScheduleExpressionTimezone"], nightly["State"]) == (
        "cron(0 3 * * ? *)",
        "Europe/Rome",
        "ENABLED",
    )
    assert nightly["Target"]["Arn"] == RUN_JOB
    assert nightly["Target"]["RoleArn"] == ROLE
    assert nightly["Target"]["DeadLetterConfig"] == {"Arn": DLQ}
    assert json.loads(nightly["Target"]["Input"]) == {
        "job": "nightly-report",
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }
    cleanup = schedule(groups, "cleanup")
    assert cleanup["State"] == "DISABLED"
    assert cleanup["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 5}
    assert cleanup["Target"]["RetryPolicy"] == {"MaximumEventAgeInSeconds": 600, "MaximumRetryAttempts": 2}


def test_a_second_reconcile_finds_everything_in_sync_and_writes_nothing(
    groups: Clients, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    rt = make_runtime(config(job("nightly-report", schedule="cron(0 3 * * ? *)")), **SETTINGS)
    reconcile(rt)
    recorder.reset()
    again = reconcile(rt)
    assert [a.change for a in again.actions] == ["in-sync"]
    assert recorder.writes() == []


def test_a_changed_job_updates_its_schedule_and_says_what_changed(
    groups: Clients, make_runtime: MakeRuntime
) -> None:
    reconcile(make_runtime(config(job("nightly-report", schedule="cron(0 3 * * ? *)")), **SETTINGS))
    rt = make_runtime(
        config(job("nightly-report", schedule="cron(30 4 * * ? *)", timezone="Europe/Rome", enabled=False)),
        table=False,
        **SETTINGS,
    )
    [action] = reconcile(rt).actions
    assert action.change == "update"
    assert "ScheduleExpression cron(0 3 * * ? *) -> cron(30 4 * * ? *)" in action.detail
    assert "ScheduleExpressionTimezone UTC -> Europe/Rome" in action.detail
    assert "State ENABLED -> DISABLED" in action.detail
    updated = schedule(groups, "nightly-report")
    assert (updated["ScheduleExpression"], updated["State"]) == ("cron(30 4 * * ? *)", "DISABLED")


def test_a_job_removed_from_the_config_loses_its_schedule_but_others_groups_are_untouched(
    groups: Clients, make_runtime: MakeRuntime
) -> None:
    foreign = {
        "ScheduleExpression": "rate(1 hour)",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {"Arn": RUN_JOB, "RoleArn": ROLE},
    }
    groups.scheduler.create_schedule(Name="nightly-report", GroupName="someone-else", **foreign)
    groups.scheduler.create_schedule(Name="theirs", **foreign)
    reconcile(make_runtime(config(job("nightly-report", schedule="rate(1 day)")), **SETTINGS))
    rt = make_runtime(config(job("nightly-report")), table=False, **SETTINGS)
    [action] = reconcile(rt).actions
    assert (action.target, action.change) == (f"{GROUP}/nightly-report", "delete")
    assert names(groups) == []
    assert names(groups, "someone-else") == ["nightly-report"]
    assert names(groups, "default") == ["theirs"]
    assert schedule(groups, "nightly-report", "someone-else")["ScheduleExpression"] == "rate(1 hour)"


def test_plan_is_a_dry_run_that_lists_the_changes_without_writing(
    groups: Clients, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    rt = make_runtime(config(job("nightly-report", schedule="rate(1 day)")), **SETTINGS)
    result = reconcile(rt, dry_run=True)
    assert [(a.change, a.applied) for a in result.actions] == [("create", False)]
    assert recorder.writes() == []
    assert names(groups) == []


@pytest.mark.parametrize(
    ("missing", "variable"),
    [("run_job_arn", "ECSPILOT_RUN_JOB_ARN"), ("scheduler_role_arn", "ECSPILOT_SCHEDULER_ROLE_ARN")],
)
def test_scheduled_jobs_need_the_target_settings_and_say_which_is_missing(
    missing: str, variable: str, groups: Clients, make_runtime: MakeRuntime
) -> None:
    rt = make_runtime(config(job("nightly-report", schedule="rate(1 day)")), **{**SETTINGS, missing: None})
    # the schedules part fails alone: its error action names the variable, reconcile goes on
    [action] = [a for a in reconcile(rt).actions if a.kind == "schedules"]
    assert (action.change, action.applied) == ("error", False)
    assert "SettingsError" in action.detail
    assert variable in action.detail


def test_without_scheduled_jobs_no_target_setting_is_needed(
    groups: Clients, make_runtime: MakeRuntime
) -> None:
    make_runtime(config(job("migration")), schedule_group=GROUP)
    assert invoke("reconcile", {})["actions"] == []


def test_long_job_names_get_a_valid_unique_schedule_name() -> None:
    long_a, long_b = "a" * 70 + "-one", "a" * 70 + "-two"
    assert len(schedule_name(long_a)) <= 64
    assert schedule_name(long_a) != schedule_name(long_b)
    assert schedule_name("nightly-report") == "nightly-report"


def test_one_schedule_change_failing_is_an_error_action_and_the_others_are_applied(
    groups: Clients, faults: Faults
) -> None:
    # GIVEN three scheduled jobs, and CreateSchedule of one of them throttled beyond the retries
    cfg = parse_config(config(*(job(name, schedule="rate(1 hour)") for name in ("alpha", "beta", "gamma"))))
    target = ScheduleTarget(run_job_arn=RUN_JOB, role_arn=ROLE)
    throttled = faults.fail("CreateSchedule", "error", when=lambda p: p.get("Name") == "beta")
    # WHEN the schedules' core syncs the group, with the scheduler client it is given
    with faults.active(throttled):
        actions = sync_schedules(groups.scheduler, cfg, GROUP, target, dry_run=False)
    # THEN beta is an error action naming the throttle, alpha and gamma exist; nothing raised
    assert [(a.target, a.change, a.applied) for a in actions] == [
        (f"{GROUP}/alpha", "create", True),
        (f"{GROUP}/beta", "error", False),
        (f"{GROUP}/gamma", "create", True),
    ]
    assert "ThrottlingException" in actions[1].detail
    assert names(groups) == ["alpha", "gamma"]
    # AND the next sync (the fault passed) creates beta only
    again = sync_schedules(groups.scheduler, cfg, GROUP, target, dry_run=False)
    assert [(a.target, a.change) for a in again if a.change != "in-sync"] == [(f"{GROUP}/beta", "create")]
    assert names(groups) == ["alpha", "beta", "gamma"]
