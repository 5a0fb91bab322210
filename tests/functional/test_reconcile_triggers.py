"""The reconcile function's triggers: schedule, drift events, and the stack-deploy custom resource."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ecspilot.errors import EventError
from ecspilot.reconcile.handler import SCHEDULE_INPUT
from ecspilot_dev.local import CallRecorder, invoke, load_event
from ecspilot_dev.sandbox import Sandbox
from tests.conftest import MakeRuntime
from tests.faults import Faults, Mode
from tests.functional.cloudformation import CloudFormationStandIn, custom_resource_event
from tests.template import load_template


@pytest.fixture
def cloudformation() -> Iterator[CloudFormationStandIn]:
    stand_in = CloudFormationStandIn()
    yield stand_in
    stand_in.close()


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_a_stack_deploy_runs_reconcile_and_answers_success(
    request_type: str, cloudformation: CloudFormationStandIn, make_runtime: MakeRuntime
) -> None:
    make_runtime({"version": 1})
    result = invoke("reconcile", custom_resource_event(request_type, cloudformation.url))
    assert result["dry_run"] is False
    [response] = cloudformation.responses
    assert response["Status"] == "SUCCESS"
    assert (response["RequestId"], response["LogicalResourceId"]) == ("req-1", "ReconcileOnDeploy")
    assert response["PhysicalResourceId"] == "ecspilot-reconcile"


def test_a_stack_delete_answers_without_touching_aws(
    cloudformation: CloudFormationStandIn, make_runtime: MakeRuntime
) -> None:
    make_runtime({"version": 1})
    assert invoke("reconcile", custom_resource_event("Delete", cloudformation.url)) == {
        "custom_resource": "Delete",
        "status": "SUCCESS",
    }
    assert [r["Status"] for r in cloudformation.responses] == ["SUCCESS"]


@pytest.mark.parametrize("event", [{}, None, SCHEDULE_INPUT])
def test_the_rate_schedule_runs_reconcile(event: Any, make_runtime: MakeRuntime) -> None:
    make_runtime({"version": 1})
    result = invoke("reconcile", event)
    assert result == {"dry_run": False, "summary": {}, "actions": []}


def test_the_rate_schedule_of_the_template_sends_what_reconcile_reads_as_the_schedule() -> None:
    events = load_template()["Resources"]["ReconcileFunction"]["Properties"]["Events"]
    [schedule] = [e for e in events.values() if e["Type"] == "ScheduleV2"]
    assert json.loads(schedule["Properties"]["Input"]) == SCHEDULE_INPUT


# --- each part runs even when another fails -------------------------------------------------------

GROUP = "ecspilot-test"
SCHEDULE_SETTINGS = {
    "schedule_group": GROUP,
    "run_job_arn": "arn:aws:lambda:us-east-1:123456789012:function:ecspilot-RunJob",
    "scheduler_role_arn": "arn:aws:iam::123456789012:role/ecspilot-scheduler",
}
THREE_PARTS = {
    "version": 1,
    "daemons": [{"name": "log-agent", "clusters": ["alpha"], "task_definition": "fluent-bit"}],
    "jobs": [{"name": "report", "cluster": "alpha", "task_definition": "report", "schedule": "rate(1 day)"}],
    "services": [{"name": "web", "cluster": "prod", "containers": {"app": {"repository": "web"}}}],
}


@pytest.fixture
def three_parts(sandbox: Sandbox, make_runtime: MakeRuntime) -> Sandbox:
    """A daemon to create, a schedule to create and a service to catch up: one action per part."""
    sandbox.cluster("alpha")
    sandbox.cluster("prod")
    sandbox.task_definition("fluent-bit", {"fluent-bit": "public.ecr.aws/fluent-bit:stable"})
    sandbox.repository("web")
    sandbox.service("prod", "web", sandbox.task_definition("web", {"app": sandbox.image("web", "v0")}))
    sandbox.clients.scheduler.create_schedule_group(Name=GROUP)
    make_runtime(THREE_PARTS, **SCHEDULE_SETTINGS)
    sandbox.push("web", "v1")
    return sandbox


PART_KINDS = {
    "daemons": {"daemons", "daemon"},
    "schedules": {"schedules", "schedule"},
    "catch-up": {"catch-up"},
}


def changes_by_part(result: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {part: set() for part in PART_KINDS}
    for action in result["actions"]:
        [part] = [p for p, kinds in PART_KINDS.items() if action["kind"] in kinds]
        out[part].add(action["change"])
    return out


def test_every_part_has_work_when_nothing_fails(three_parts: Sandbox) -> None:
    assert changes_by_part(invoke("reconcile", {})) == {
        "daemons": {"create"},
        "schedules": {"create"},
        "catch-up": {"update"},
    }


@pytest.mark.parametrize(
    ("part", "operation", "mode"),
    [
        ("daemons", "DescribeClusters", "exception"),
        ("daemons", "DescribeClusters", "network"),
        ("schedules", "ListSchedules", "exception"),
        ("schedules", "ListSchedules", "error"),
        ("catch-up", "DescribeImages", "exception"),
        ("catch-up", "DescribeImages", "network"),
        ("catch-up", "DescribeServices", "error"),  # on cluster prod only: daemons describe alpha
    ],
)
def test_a_failing_part_is_an_error_action_and_the_others_still_run(
    part: str,
    operation: str,
    mode: Mode,
    three_parts: Sandbox,
    faults: Faults,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN one part's AWS call fails: a bug (an unexpected exception), a network error, or
    # throttling beyond botocore's retries
    rule = faults.fail(
        operation,
        mode,
        exception=ValueError(f"bug in {part}"),
        when=lambda p: p.get("cluster") in (None, "prod"),
    )
    # WHEN reconcile runs
    result = invoke("reconcile", {})
    # THEN that part reports an error, every other part did its work
    assert rule.fired >= 1
    got = changes_by_part(result)
    assert "error" in got[part]
    expected = {"daemons": {"create"}, "schedules": {"create"}, "catch-up": {"update"}}
    for other in set(PART_KINDS) - {part}:
        assert got[other] == expected[other], other
    # AND the result and the metrics say so
    assert result["summary"]["error"] >= 1
    out = capsys.readouterr().out
    assert any('"ReconcileError"' in line and '"_aws"' in line for line in out.splitlines())


def test_a_part_that_raises_is_logged_with_its_name_and_counted(
    three_parts: Sandbox, faults: Faults, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    faults.fail("ListSchedules", "exception", exception=ValueError("bug in schedules"))
    result = invoke("reconcile", {})
    [failed] = [a for a in result["actions"] if a["kind"] == "schedules"]
    assert failed == {
        "kind": "schedules",
        "target": "(part)",
        "change": "error",
        "detail": "schedules failed: ValueError: bug in schedules",
        "applied": False,
    }
    out = capsys.readouterr().out
    assert any('"ReconcilePartFailed"' in line and '"_aws"' in line for line in out.splitlines())
    [logged] = [r for r in caplog.records if r.getMessage() == "reconcile part failed"]
    assert (logged.levelname, getattr(logged, "part", None)) == ("ERROR", "schedules")
    assert logged.exc_info is not None


# --- events from elsewhere, and malformed events --------------------------------------------------


@pytest.mark.parametrize(
    ("account", "region"),
    [("999999999999", "us-east-1"), ("123456789012", "eu-west-1")],
    ids=["account", "region"],
)
def test_a_cloudtrail_event_from_an_untrusted_origin_is_ignored(
    account: str,
    region: str,
    make_runtime: MakeRuntime,
    recorder: CallRecorder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_runtime({"version": 1, "daemons": [{"name": "a", "clusters": "*", "task_definition": "a"}]})
    result = invoke("reconcile", load_event("cloudtrail_create_cluster", account=account, region=region))
    assert result == {"ignored": f"event from untrusted origin account {account} region {region}"}
    assert recorder.calls == []
    out = capsys.readouterr().out
    assert any('"EventsUntrustedOrigin"' in line and '"_aws"' in line for line in out.splitlines())


def test_a_trusted_cloudtrail_event_runs_reconcile(make_runtime: MakeRuntime) -> None:
    make_runtime({"version": 1})
    assert invoke("reconcile", load_event("cloudtrail_create_cluster"))["dry_run"] is False


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({**load_event("cloudtrail_create_cluster"), "detail": None}, "detail"),
        ({k: v for k, v in load_event("cloudtrail_create_cluster").items() if k != "detail"}, "detail"),
        (load_event("cloudtrail_create_cluster", {"eventName": ""}), "detail.eventName"),
        (load_event("cloudtrail_create_cluster", account="12345678901"), "account"),
        ({"detail-type": "Scheduled Event"}, "id"),
        ({"unexpected": True}, "detail-type"),
        ([], "JSON object"),
    ],
    ids=[
        "detail-null",
        "detail-missing",
        "no-event-name",
        "short-account",
        "bare-envelope",
        "unknown",
        "list",
    ],
)
def test_a_malformed_reconcile_event_is_an_event_error(
    event: Any, field: str, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    make_runtime({"version": 1})
    with pytest.raises(EventError) as info:
        invoke("reconcile", event)
    assert field in str(info.value) or info.value.context.get("field") == field
    assert recorder.calls == []
