"""run_job against moto: concurrency policies, count splitting, failure classes, run records,
retried firings. Tasks are frozen in their status (moto moves a task towards STOPPED on every
DescribeTasks); RunTask ``failures[]`` moto cannot produce are injected with a botocore
``before-call`` hook on the real client, which answers RunTask with a canned response."""

from __future__ import annotations

from typing import Any

import pytest

from ecspilot.aws.clients import Clients
from ecspilot.aws.dynamo import deserialize
from ecspilot.errors import PermanentJobError, RetryableJobError, UnknownJobError
from ecspilot.interfaces.runtime import Runtime
from ecspilot.jobs.plan import client_token, firing_token, started_by
from ecspilot.jobs.runbook import run_job
from ecspilot_dev.local import CallRecorder, invoke, load_event
from ecspilot_dev.sandbox import Sandbox
from tests.canned import CannedRunTask, failure
from tests.conftest import TABLE, MakeRuntime
from tests.faults import Faults

CLUSTER = "batchfarm"


pytestmark = pytest.mark.usefixtures("frozen_tasks")


@pytest.fixture
def world(sandbox: Sandbox) -> Sandbox:
    sandbox.cluster(CLUSTER, instances_per_zone=1)
    sandbox.task_definition("report", {"report": sandbox.image("report", "v1")})
    sandbox.task_definition("report", {"report": sandbox.image("report", "v2")})
    return sandbox


def config(**job: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "jobs": [
            {"name": "report", "cluster": CLUSTER, "task_definition": "report", "launch_type": "EC2", **job}
        ],
    }


def live(clients: Clients, job: str = "report") -> list[dict[str, Any]]:
    arns = clients.ecs.list_tasks(cluster=CLUSTER)["taskArns"]
    tasks = clients.ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []
    return [t for t in tasks if t.get("startedBy") == started_by(job) and t["lastStatus"] != "STOPPED"]


def run_items(clients: Clients, job: str = "report") -> list[dict[str, Any]]:
    resp = clients.dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :run)",
        ExpressionAttributeValues={":pk": {"S": f"JOB#{job}"}, ":run": {"S": "RUN#"}},
    )
    return [deserialize(i) for i in resp["Items"]]


# --- concurrency ------------------------------------------------------------------------------


def test_allow_starts_a_second_run_while_the_first_still_runs(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    rt = make_runtime(config(concurrency="allow"))
    first = run_job(rt.config.jobs[0], rt.clients, rt.history, "manual")
    second = run_job(rt.config.jobs[0], rt.clients, rt.history, "manual")
    assert (first.outcome, second.outcome) == ("started", "started")
    assert len(live(rt.clients)) == 2


def test_forbid_skips_a_run_while_a_task_of_the_job_runs(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    rt = make_runtime(config(concurrency="forbid"))
    first = run_job(rt.config.jobs[0], rt.clients, rt.history, "manual")
    second = run_job(rt.config.jobs[0], rt.clients, rt.history, "manual")
    assert first.outcome == "started"
    assert second.outcome == "skipped"
    assert "still PENDING or RUNNING" in second.reason
    assert recorder.count("RunTask") == 1
    assert [t["taskArn"] for t in live(rt.clients)] == first.task_arns


def test_forbid_ignores_tasks_of_other_jobs_and_runs(world: Sandbox, make_runtime: MakeRuntime) -> None:
    rt = make_runtime(
        {
            "version": 1,
            "jobs": [
                {"name": "report", "cluster": CLUSTER, "task_definition": "report", "concurrency": "forbid"},
                {"name": "cleanup", "cluster": CLUSTER, "task_definition": "report", "concurrency": "forbid"},
            ],
        }
    )
    run_job(rt.config.jobs[1], rt.clients, rt.history, "manual")
    assert run_job(rt.config.jobs[0], rt.clients, rt.history, "manual").outcome == "started"


def test_replace_stops_the_running_tasks_with_a_reason_and_runs_again(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    rt = make_runtime(config(concurrency="replace", count=2))
    first = run_job(rt.config.jobs[0], rt.clients, rt.history, "manual")
    second = run_job(rt.config.jobs[0], rt.clients, rt.history, "manual")
    assert second.outcome == "started"
    assert sorted(second.stopped) == sorted(first.task_arns)
    old = rt.clients.ecs.describe_tasks(cluster=CLUSTER, tasks=first.task_arns)["tasks"]
    assert {t["desiredStatus"] for t in old} == {"STOPPED"}
    assert all("replaced by a new run of job report" in t["stoppedReason"] for t in old)
    assert sorted(t["taskArn"] for t in live(rt.clients)) == sorted(second.task_arns)


# --- what RunTask receives --------------------------------------------------------------------


def test_a_count_above_ten_is_split_in_calls_of_at_most_ten(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    rt = make_runtime(config(count=23))
    result = run_job(rt.config.jobs[0], rt.clients, rt.history, "manual")
    assert [p["count"] for p in recorder.params("RunTask")] == [10, 10, 3]
    assert len(result.task_arns) == 23
    assert len(live(rt.clients)) == 23


def test_a_family_runs_its_latest_active_revision_and_a_pinned_one_runs_as_pinned(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    rt = make_runtime(config())
    assert run_job(rt.config.jobs[0], rt.clients, rt.history, "manual").task_definition.endswith(
        "task-definition/report:2"
    )
    rt = make_runtime(config(task_definition="report:1", concurrency="allow"), table=False)
    assert run_job(rt.config.jobs[0], rt.clients, rt.history, "manual").task_definition.endswith(
        "task-definition/report:1"
    )


def test_run_task_gets_the_tags_placement_overrides_and_started_by_of_the_job(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    rt = make_runtime(
        config(
            placement="az-balanced-spread",
            overrides={
                "containers": {"report": {"command": ["report", "--daily"], "environment": {"LEVEL": "info"}}}
            },
        )
    )
    result = run_job(
        rt.config.jobs[0],
        rt.clients,
        rt.history,
        "manual",
        overrides={"containers": {"report": {"environment": {"DAY": "1"}}}},
    )
    [params] = recorder.params("RunTask")
    assert params["startedBy"] == "ecspilot/report"
    # the job's tag, and the run's: a run whose RunTask reply is lost finds its tasks by it
    assert params["tags"] == [
        {"key": "ecspilot:job", "value": "report"},
        {"key": "ecspilot:run", "value": result.run_id},
    ]
    assert (params["propagateTags"], params["enableECSManagedTags"], params["launchType"]) == (
        "TASK_DEFINITION",
        True,
        "EC2",
    )
    assert params["placementStrategy"] == [
        {"type": "spread", "field": "attribute:ecs.availability-zone"},
        {"type": "spread", "field": "instanceId"},
    ]
    assert params["overrides"]["containerOverrides"] == [
        {
            "name": "report",
            "command": ["report", "--daily"],
            "environment": [{"name": "LEVEL", "value": "info"}, {"name": "DAY", "value": "1"}],
        }
    ]
    [task] = live(rt.clients)
    assert {"key": "ecspilot:job", "value": "report"} in rt.clients.ecs.list_tags_for_resource(
        resourceArn=task["taskArn"]
    )["tags"]


def test_a_dry_run_plans_the_calls_and_changes_nothing(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    rt = make_runtime(config(count=12))
    result = run_job(rt.config.jobs[0], rt.clients, rt.history, "manual", dry_run=True)
    assert result.outcome == "would-run"
    assert [r["count"] for r in result.requests] == [10, 2]
    assert recorder.writes() == []


# --- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "error"),
    [
        ("RESOURCE:MEMORY", RetryableJobError),
        ("RESOURCE:PORTS_TCP", RetryableJobError),
        ("AGENT", RetryableJobError),
        ("MISSING", PermanentJobError),
        ("ATTRIBUTE", PermanentJobError),
    ],
)
def test_run_task_failures_raise_by_class_and_are_recorded(
    reason: str, error: type[Exception], world: Sandbox, make_runtime: MakeRuntime
) -> None:
    rt = make_runtime(config())
    CannedRunTask(rt.clients, {"failures": [failure(reason, "no luck")]})
    with pytest.raises(error, match=reason) as caught:
        run_job(rt.config.jobs[0], rt.clients, rt.history, "schedule")
    assert caught.value.context["job"] == "report"
    [item] = run_items(rt.clients)
    assert (item["type"], item["status"], item["reason"], item["detail"]) == (
        "run-failure",
        "FAILED",
        reason,
        "no luck",
    )


def test_an_invalid_request_is_a_permanent_error_with_the_reason(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    rt = make_runtime(config(task_definition="nothing-here"))
    with pytest.raises(PermanentJobError, match="nothing-here not found"):
        run_job(rt.config.jobs[0], rt.clients, rt.history, "manual")


def test_an_awsvpc_task_definition_without_network_config_is_refused_before_run_task(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    world.task_definition("vpcjob", {"app": "x"}, networkMode="awsvpc")
    rt = make_runtime(config(task_definition="vpcjob"))
    with pytest.raises(PermanentJobError, match=r"network\.subnets"):
        run_job(rt.config.jobs[0], rt.clients, rt.history, "manual")
    assert recorder.count("RunTask") == 0


def test_an_unknown_job_is_a_permanent_error(world: Sandbox, make_runtime: MakeRuntime) -> None:
    make_runtime(config())
    with pytest.raises(UnknownJobError, match="no job named 'nope'"):
        invoke("run_job", {"job": "nope"})


# --- records and retried firings --------------------------------------------------------------


def test_each_task_started_gets_a_run_record_findable_by_task_arn(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    rt = make_runtime(config(count=2))
    event = load_event("scheduler_run_job", job="report")
    result = invoke("run_job", event)
    items = sorted(run_items(rt.clients), key=lambda i: i["task_arn"])
    assert sorted(result["task_arns"]) == [i["task_arn"] for i in items]
    assert {(i["type"], i["trigger"], i["status"], i["scheduled_time"]) for i in items} == {
        ("run", "schedule", "PENDING", event["scheduled_time"])
    }
    by_task = rt.clients.dynamodb.query(
        TableName=TABLE,
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"TASK#{items[0]['task_arn']}"}},
    )["Items"]
    assert deserialize(by_task[0])["run_id"] == result["run_id"]


def test_a_retried_firing_never_starts_twice(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    rt = make_runtime(config(concurrency="allow"))
    event = load_event("scheduler_run_job", job="report")
    first = invoke("run_job", event)
    again = invoke("run_job", event)
    assert (first["outcome"], again["outcome"]) == ("started", "duplicate")
    assert again["task_arns"] == first["task_arns"]
    assert recorder.count("RunTask") == 1
    assert len(live(rt.clients)) == 1
    assert recorder.params("RunTask")[0]["clientToken"] == client_token(
        firing_token("report", event["scheduled_time"]), 0
    )
    later = invoke("run_job", {**event, "scheduled_time": "2026-11-26T02:00:00Z"})
    assert later["outcome"] == "started"


def test_a_retry_after_a_capacity_failure_starts_only_the_missing_tasks(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    rt = make_runtime(config(count=3, concurrency="forbid"))
    event = load_event("scheduler_run_job", job="report")
    ghost = "arn:aws:ecs:us-east-1:123456789012:task/batchfarm/started-before"
    canned = CannedRunTask(
        rt.clients, {"tasks": [{"taskArn": ghost}], "failures": [failure("RESOURCE:MEMORY")] * 2}
    )
    with pytest.raises(RetryableJobError, match=r"2 task\(s\) of report could not start \(1 started\)"):
        invoke("run_job", event)
    canned.remove()
    recorder.reset()
    result = invoke("run_job", event)
    [params] = recorder.params("RunTask")
    assert params["count"] == 2
    key = firing_token("report", event["scheduled_time"])
    assert params["clientToken"] == client_token(key, 1)
    assert result["outcome"] == "started"
    assert result["task_arns"][0] == ghost
    assert len(result["task_arns"]) == 3


def test_without_a_state_table_a_retried_firing_still_sends_the_same_client_token(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    make_runtime(config(concurrency="allow"), table=False)
    event = load_event("scheduler_run_job", job="report")
    invoke("run_job", event)
    invoke("run_job", event)
    tokens = [p["clientToken"] for p in recorder.params("RunTask")]
    assert len(tokens) == 2
    assert tokens[0] == tokens[1]


def test_a_runtime_built_for_the_handler_is_used(world: Sandbox, make_runtime: MakeRuntime) -> None:
    rt: Runtime = make_runtime(config())
    assert invoke("run_job", {"job": "report"})["trigger"] == "manual"
    assert len(run_items(rt.clients)) == 1


# --- claims under faults (issue 9) ------------------------------------------------------------


def claim_item(rt: Runtime, event: dict[str, Any]) -> dict[str, Any]:
    key = {
        "pk": {"S": "JOB#report"},
        "sk": {"S": f"REQUEST#{firing_token('report', event['scheduled_time'])}"},
    }
    return deserialize(rt.clients.dynamodb.get_item(TableName=TABLE, Key=key, ConsistentRead=True)["Item"])


def test_the_handler_passes_its_context_so_a_claim_expires_with_the_invocation(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    import time  # noqa: PLC0415

    rt = make_runtime(config())
    event = load_event("scheduler_run_job", job="report")
    # GIVEN the claim can be taken but never released (the table fails every later update)
    faults.fail(
        "UpdateItem", service="dynamodb", code="InternalServerError", when=lambda p: ":status" in str(p)
    )
    faults.fail("BatchWriteItem", service="dynamodb", code="InternalServerError")
    with pytest.raises(RetryableJobError, match="could not be recorded"):
        invoke("run_job", event)
    claim = claim_item(rt, event)
    # THEN it holds as long as the invocation's remaining time (LocalContext: 300 s), not 900 s
    assert claim["status"] == "STARTING"
    assert abs(int(claim["in_progress_until"]) - (time.time() + 300)) <= 2


def test_a_firing_whose_run_record_write_fails_is_recorded_by_its_retry_without_a_second_task(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults, recorder: CallRecorder
) -> None:
    rt = make_runtime(config(concurrency="allow"))
    event = load_event("scheduler_run_job", job="report")
    outage = faults.fail("BatchWriteItem", service="dynamodb", code="ProvisionedThroughputExceededException")
    with faults.active(outage), pytest.raises(RetryableJobError, match="starts nothing more"):
        invoke("run_job", event)
    assert claim_item(rt, event)["status"] == "RETRY"  # never DONE before the run is recorded
    assert run_items(rt.clients) == []
    recorder.reset()
    result = invoke("run_job", event)
    assert recorder.count("RunTask") == 0
    [task] = live(rt.clients)
    assert result["task_arns"] == [task["taskArn"]]
    assert [i["task_arn"] for i in run_items(rt.clients)] == [task["taskArn"]]
    assert claim_item(rt, event)["status"] == "DONE"


def test_a_firing_whose_run_task_reply_is_lost_starts_one_task(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    rt = make_runtime(config(concurrency="allow", count=2))
    event = load_event("scheduler_run_job", job="report")
    faults.fail("RunTask", "lost-reply", times=1)
    result = invoke("run_job", event)
    assert result["outcome"] == "started"
    assert len(live(rt.clients)) == 2
    assert sorted(result["task_arns"]) == sorted(t["taskArn"] for t in live(rt.clients))
    assert len(run_items(rt.clients)) == 2
