"""track_deployments against moto: the real handler, ECS events from events/, real boto3 clients.

Deployments are started by the real deploy_on_push handler; ECS's own state events (which moto
never emits) are fed from the samples in events/ with the ids of those deployments. Job runs
are started by the real run_job handler and ended by the STOPPED event of their task
(tests.job_runs).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ecspilot.errors import EventError
from ecspilot.interfaces.runtime import Runtime
from ecspilot.jobs.plan import started_by
from ecspilot_dev.local import CallRecorder, invoke, load_event, task_stopped_event
from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox, fake_digest
from tests.conftest import MakeRuntime
from tests.faults import Faults
from tests.job_runs import ends, fire
from tests.moto_state import new_deployment_per_update
from tests.races import race
from tests.template import event_patterns, resolve_pseudo

TRACK = "track_deployments"
PUSH = "deploy_on_push"


def config(*, rollback: bool = True) -> dict[str, Any]:
    return {
        "version": 1,
        "services": [
            {
                "name": "web",
                "cluster": "prod",
                "containers": {"app": {"repository": "web", "tags": ["v*"]}},
                "rollback": rollback,
            }
        ],
        "jobs": [{"name": "nightly-report", "cluster": "prod", "task_definition": "report"}],
    }


def service_arn(cluster: str, service: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{service}"


def deployment_event(
    sample: str, deployment_id: str, service: str = "web", reason: str | None = None, at: str | None = None
) -> dict[str, Any]:
    """A sample ECS deployment event about ``deployment_id`` of prod/``service``."""
    detail: dict[str, Any] = {"deploymentId": deployment_id}
    if reason is not None:
        detail["reason"] = reason
    if at is not None:
        detail["updatedAt"] = at
    event = load_event(sample, detail, resources=[service_arn("prod", service)])
    event["id"] = f"{sample}-{deployment_id}-{at or ''}"
    return event


def rollback_event(rollback_id: str, to: str) -> dict[str, Any]:
    return deployment_event(
        "ecs_deployment_rolled_back",
        rollback_id,
        reason=f"ECS deployment circuit breaker: rolling back to deploymentId {to}.",
    )


def emitted(out: str) -> list[dict[str, Any]]:
    """The CloudWatch EMF blobs Powertools printed (the other stdout lines are logs)."""
    blobs = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blobs.append(json.loads(line))
    return blobs


def metric_values(blobs: list[dict[str, Any]], name: str) -> list[float]:
    values: list[float] = []
    for blob in blobs:
        if name in blob:
            value = blob[name]
            values += value if isinstance(value, list) else [value]
    return values


def dimensions_of(blobs: list[dict[str, Any]], name: str) -> dict[str, str]:
    blob = next(b for b in blobs if name in b)
    names = blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
    return {n: blob[n] for n in names if n != "service"}


@pytest.fixture(autouse=True)
def _ecs_deployment_ids() -> Iterator[None]:
    with new_deployment_per_update():
        yield


@pytest.fixture
def world(sandbox: Sandbox) -> Sandbox:
    sandbox.cluster("prod", instances_per_zone=1, zones=("us-east-1a",))
    sandbox.repository("web")
    td = sandbox.task_definition("web", {"app": sandbox.image("web", "v0")})
    sandbox.service("prod", "web", td)
    sandbox.task_definition("report", {"report": "report:1", "log-router": "fluent-bit:stable"})
    return sandbox


@pytest.fixture
def topic(world: Sandbox) -> tuple[str, str]:
    """An SNS topic with an SQS queue subscribed, to read what the tracker published."""
    sns, sqs = world.clients.sns, world.clients.sqs
    topic_arn = sns.create_topic(Name="ecspilot-notify")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="ecspilot-notify-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return topic_arn, queue_url


def notifications(rt: Runtime, queue_url: str) -> list[dict[str, Any]]:
    resp = rt.clients.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(m["Body"]) for m in resp.get("Messages", [])]


def deploy(world: Sandbox, rt: Runtime, tag: str) -> dict[str, Any]:
    """Push ``tag`` through the real deploy_on_push handler; return the new deployment record."""
    invoke(PUSH, world.push("web", tag))
    return next(r for r in rt.history.deployments("prod", "web") if r["image_tag"] == tag)


def test_a_completed_deployment_closes_its_record_with_the_duration_and_counts_a_success(
    world: Sandbox, make_runtime: MakeRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a deployment that deploy_on_push started
    rt = make_runtime(config())
    started = deploy(world, rt, "v1")
    capsys.readouterr()
    # WHEN ECS reports it completed, 30 seconds later than the record started
    at = started["started_at"].replace("Z", "+00:00")
    from datetime import datetime, timedelta  # noqa: PLC0415

    done_at = (datetime.fromisoformat(at) + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    result = invoke(TRACK, deployment_event("ecs_deployment_completed", started["deployment_id"], at=done_at))
    # THEN the record is COMPLETED with ECS's reason and a 30 s duration
    record = rt.history.deployment(started["deployment_id"])
    assert record["status"] == "COMPLETED"
    assert record["duration_seconds"] == 30
    assert record["reason"] == "ECS deployment ecs-svc/6405940160831029548 completed."
    assert result["moved"] == [
        {"deployment_id": started["deployment_id"], "from": "IN_PROGRESS", "to": "COMPLETED"}
    ]
    # AND one success and its duration are emitted, dimensioned by the configured service
    blobs = emitted(capsys.readouterr().out)
    assert metric_values(blobs, "DeploymentsSucceeded") == [1.0]
    assert metric_values(blobs, "DeploymentDuration") == [30.0]
    assert dimensions_of(blobs, "DeploymentsSucceeded") == {"Cluster": "prod", "Service": "web"}


def test_a_duplicate_completed_event_changes_nothing_and_counts_nothing(
    world: Sandbox, make_runtime: MakeRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    rt = make_runtime(config())
    started = deploy(world, rt, "v1")
    event = deployment_event("ecs_deployment_completed", started["deployment_id"])
    invoke(TRACK, event)
    first = rt.history.deployment(started["deployment_id"])
    capsys.readouterr()
    # WHEN EventBridge delivers the same event again
    result = invoke(TRACK, event)
    # THEN the record is untouched and no second success is counted
    again = rt.history.deployment(started["deployment_id"])
    assert again == first
    assert result["moved"] == []
    assert metric_values(emitted(capsys.readouterr().out), "DeploymentsSucceeded") == []


def test_a_late_in_progress_event_never_moves_a_completed_record_back(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    rt = make_runtime(config())
    started = deploy(world, rt, "v1")
    invoke(TRACK, deployment_event("ecs_deployment_completed", started["deployment_id"]))
    # WHEN the IN_PROGRESS event arrives after COMPLETED, then a FAILED one for the same deployment
    invoke(TRACK, deployment_event("ecs_deployment_in_progress", started["deployment_id"]))
    invoke(TRACK, deployment_event("ecs_deployment_failed", started["deployment_id"]))
    # THEN COMPLETED stays COMPLETED
    record = rt.history.deployment(started["deployment_id"])
    assert record["status"] == "COMPLETED"


def test_a_failed_deployment_is_recorded_counted_and_notified_with_what_a_person_needs(
    world: Sandbox, make_runtime: MakeRuntime, topic: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN notifications on, and a deployment of web:v1 to a service without rollback
    topic_arn, inbox = topic
    rt = make_runtime(config(rollback=False), notify_topic_arn=topic_arn)
    started = deploy(world, rt, "v1")
    capsys.readouterr()
    # WHEN ECS reports the circuit breaker failed it
    invoke(TRACK, deployment_event("ecs_deployment_failed", started["deployment_id"]))
    # THEN the record is FAILED with the reason
    record = rt.history.deployment(started["deployment_id"])
    assert (record["status"], record["reason"]) == (
        "FAILED",
        "ECS deployment circuit breaker: tasks failed to start.",
    )
    assert metric_values(emitted(capsys.readouterr().out), "DeploymentsFailed") == [1.0]
    # AND one message names the service, the image tag and digest, the reason and the console page
    [message] = notifications(rt, inbox)
    assert message["Subject"] == "ecspilot: prod/web deployment failed"
    body = message["Message"]
    assert "prod/web" in body
    assert f"web:v1 ({fake_digest('web:v1')})" in body
    assert "ECS deployment circuit breaker: tasks failed to start." in body
    assert "https://us-east-1.console.aws.amazon.com/ecs/v2/clusters/prod/services/web/deployments" in body
    assert message["MessageAttributes"]["status"]["Value"] == "FAILED"


def test_two_copies_of_a_failed_event_racing_on_real_threads_move_the_record_and_notify_once(
    world: Sandbox, make_runtime: MakeRuntime, topic: tuple[str, str], faults: Faults
) -> None:
    # GIVEN a deployment, and EventBridge delivering its FAILED event twice at once (at least once):
    # both copies read the record before either writes (the reads are held until both have come)
    topic_arn, inbox = topic
    rt = make_runtime(config(rollback=False), notify_topic_arn=topic_arn)
    started = deploy(world, rt, "v1")
    event = deployment_event("ecs_deployment_failed", started["deployment_id"])
    faults.fail("Query", "delay", seconds=0.3, service="dynamodb")
    # WHEN both copies are handled on real threads released together
    results = race(lambda: invoke(TRACK, event), lambda: invoke(TRACK, event))
    # THEN exactly one moved the record, the other changed nothing, and one message was sent
    moves = sorted(len(r["moved"]) for r in results)
    assert moves == [0, 1]
    assert rt.history.deployment(started["deployment_id"])["status"] == "FAILED"
    assert len(notifications(rt, inbox)) == 1


@pytest.mark.parametrize(
    "order",
    [("failed", "rollback", "rollback-completed"), ("rollback", "failed", "rollback-completed")],
    ids=["failed-then-rollback", "rollback-then-failed"],
)
def test_a_circuit_breaker_rollback_marks_the_bad_deployment_rolled_back_in_either_order(
    order: tuple[str, ...],
    world: Sandbox,
    make_runtime: MakeRuntime,
    topic: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN web:v1 deployed and completed, then web:v2 deployed
    topic_arn, inbox = topic
    rt = make_runtime(config(), notify_topic_arn=topic_arn)
    good = deploy(world, rt, "v1")
    invoke(TRACK, deployment_event("ecs_deployment_completed", good["deployment_id"]))
    bad = deploy(world, rt, "v2")
    capsys.readouterr()
    # WHEN the circuit breaker fails v2 and rolls back to v1's deployment (events in either order)
    rollback_id = "ecs-svc/3348108895209946212"
    events = {
        "failed": deployment_event("ecs_deployment_failed", bad["deployment_id"]),
        "rollback": rollback_event(rollback_id, to=good["deployment_id"]),
        "rollback-completed": deployment_event("ecs_deployment_completed", rollback_id),
    }
    for name in order:
        invoke(TRACK, events[name])
    # THEN v2 is ROLLED_BACK to v1's deployment, v1 stays COMPLETED, and the rollback is recorded
    bad_now = rt.history.deployment(bad["deployment_id"])
    assert bad_now["status"] == "ROLLED_BACK"
    assert bad_now["rolled_back_to"] == good["deployment_id"]
    assert bad_now["rollback_deployment_id"] == rollback_id
    assert rt.history.deployment(good["deployment_id"])["status"] == "COMPLETED"
    rollback = rt.history.deployment(rollback_id)
    assert (rollback["trigger"], rollback["status"]) == ("rollback", "COMPLETED")
    # AND the rollback is counted once and a person is told
    blobs = emitted(capsys.readouterr().out)
    assert metric_values(blobs, "DeploymentsRolledBack") == [1.0]
    subjects = [m["Subject"] for m in notifications(rt, inbox)]
    assert "ecspilot: prod/web deployment rolled back" in subjects


def test_a_deployment_ecspilot_did_not_start_is_recorded_as_external(
    world: Sandbox, make_runtime: MakeRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    rt = make_runtime(config())
    # WHEN ECS reports a deployment of a service nobody configured (a console deploy, say)
    invoke(TRACK, deployment_event("ecs_deployment_in_progress", "ecs-svc/111", service="api"))
    invoke(TRACK, deployment_event("ecs_deployment_completed", "ecs-svc/111", service="api"))
    # THEN it is kept as an external deployment of prod/api, closed
    [record] = rt.history.deployments("prod", "api")
    assert (record["trigger"], record["status"], record["deployment_id"]) == (
        "external",
        "COMPLETED",
        "ecs-svc/111",
    )
    # AND its metrics use the one shared dimension value, so dimensions stay bounded
    assert dimensions_of(emitted(capsys.readouterr().out), "DeploymentsSucceeded") == {
        "Cluster": "other",
        "Service": "other",
    }


@pytest.mark.usefixtures("frozen_tasks")
def test_a_job_task_that_exits_0_closes_its_run_as_succeeded_even_when_a_sidecar_was_killed(
    world: Sandbox, make_runtime: MakeRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a run of nightly-report that run_job started (report is essential, log-router is not)
    rt = make_runtime(config())
    task = fire(rt.clients, "nightly-report")
    assert [r["status"] for r in rt.history.runs("nightly-report")] == ["PENDING"]
    capsys.readouterr()
    # WHEN the task stops: report exited 0, log-router was killed (137)
    result = invoke(TRACK, ends(rt.clients, task, "ecs_task_stopped"))
    # THEN the run SUCCEEDED with exit codes per container, stop code and duration
    [record] = rt.history.runs("nightly-report")
    assert (record["task_arn"], record["trigger"]) == (task["taskArn"], "schedule")
    assert record["status"] == "SUCCEEDED"
    assert record["exit_codes"] == {"report": 0, "log-router": 137}
    assert record["stop_code"] == "EssentialContainerExited"
    assert record["stopped_reason"] == "Essential container in task exited"
    assert record["duration_seconds"] == 450  # startedAt 03:00:10.245 -> stoppedAt 03:07:40.514
    assert result["moved"] == {"from": "PENDING", "to": "SUCCEEDED"}
    blobs = emitted(capsys.readouterr().out)
    assert metric_values(blobs, "JobRunsSucceeded") == [1.0]
    assert metric_values(blobs, "JobRunDuration") == [450.0]
    assert dimensions_of(blobs, "JobRunsSucceeded") == {"Job": "nightly-report"}


@pytest.mark.usefixtures("frozen_tasks")
def test_a_job_task_that_exits_1_fails_the_run_and_tells_a_person(
    world: Sandbox, make_runtime: MakeRuntime, topic: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    topic_arn, inbox = topic
    rt = make_runtime(config(), notify_topic_arn=topic_arn)
    task = fire(rt.clients, "nightly-report")
    capsys.readouterr()
    invoke(TRACK, ends(rt.clients, task, "ecs_task_stopped_failed"))
    [record] = rt.history.runs("nightly-report")
    assert record["status"] == "FAILED"
    assert record["reason"] == "report exited 1 (Essential container in task exited)"
    assert metric_values(emitted(capsys.readouterr().out), "JobRunsFailed") == [1.0]
    [message] = notifications(rt, inbox)
    assert message["Subject"] == "ecspilot: job nightly-report failed"
    assert task["taskArn"] in message["Message"]
    assert "report=1" in message["Message"]
    task_id = task["taskArn"].rsplit("/", 1)[-1]
    assert f"/ecs/v2/clusters/prod/tasks/{task_id}/configuration" in message["Message"]


@pytest.mark.usefixtures("frozen_tasks")
def test_a_task_that_never_started_fails_the_run_with_the_containers_reason(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    rt = make_runtime(config())
    task = fire(rt.clients, "nightly-report")
    invoke(TRACK, ends(rt.clients, task, "ecs_task_failed_to_start"))
    [record] = rt.history.runs("nightly-report")
    assert record["status"] == "FAILED"
    assert record["reason"].startswith("container report did not run to an exit: CannotPullContainerError")
    assert record["stop_code"] == "TaskFailedToStart"


@pytest.mark.usefixtures("frozen_tasks")
def test_a_duplicate_or_late_task_event_never_reopens_or_recounts_a_closed_run(
    world: Sandbox, make_runtime: MakeRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    rt = make_runtime(config())
    task = fire(rt.clients, "nightly-report")
    invoke(TRACK, ends(rt.clients, task, "ecs_task_stopped_failed"))
    capsys.readouterr()
    # WHEN the same STOPPED event comes again, then a different one (exit 0) for the same task
    invoke(TRACK, task_stopped_event("ecs_task_stopped_failed", task))
    invoke(TRACK, task_stopped_event("ecs_task_stopped", task))
    # THEN the run stays FAILED and nothing more is counted
    [record] = rt.history.runs("nightly-report")
    assert record["status"] == "FAILED"
    blobs = emitted(capsys.readouterr().out)
    assert metric_values(blobs, "JobRunsFailed") == metric_values(blobs, "JobRunsSucceeded") == []


@pytest.mark.usefixtures("frozen_tasks")
def test_a_stopped_task_that_run_job_did_not_start_is_ignored(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN a task of the same family started by hand, not by run_job
    rt = make_runtime(config())
    [task] = rt.clients.ecs.run_task(cluster="prod", taskDefinition="report", startedBy="console")["tasks"]
    # WHEN its STOPPED event reaches the tracker
    result = invoke(TRACK, ends(rt.clients, task, "ecs_task_stopped"))
    # THEN no run is opened or closed
    assert result == {"ignored": "no run record for this task"}
    assert rt.history.runs("nightly-report") == []


def fresh_report_job(world: Sandbox) -> dict[str, Any]:
    """The config with nightly-report (runs may overlap) on a family no other test registered:
    the tracker keeps a revision's essential containers for the life of the process, across tests."""
    family = f"report-{uuid.uuid4().hex[:8]}"
    world.task_definition(family, {"report": "report:1", "log-router": "fluent-bit:stable"})
    job = {"name": "nightly-report", "cluster": "prod", "task_definition": family, "concurrency": "allow"}
    return {**config(), "jobs": [job]}


@pytest.mark.usefixtures("frozen_tasks")
def test_a_revision_that_cannot_be_described_judges_every_container_and_is_asked_again_next_time(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults, recorder: CallRecorder
) -> None:
    # GIVEN a run whose task definition AWS refuses to describe once (beyond botocore's retries)
    rt = make_runtime(fresh_report_job(world))
    first = fire(rt.clients, "nightly-report")
    rule = faults.fail("DescribeTaskDefinition", "error", code="AccessDeniedException", times=1)
    # WHEN the task stops: report exited 0, the log-router sidecar was killed (137)
    invoke(TRACK, ends(rt.clients, first, "ecs_task_stopped"))
    # THEN every container was judged (the safe side: a sidecar may fail a good run, never pass a bad one)
    assert rule.fired == 1
    [record] = rt.history.runs("nightly-report")
    assert record["status"] == "FAILED"
    assert "log-router exited 137" in record["reason"]
    # AND the refusal was not remembered: the next run of the revision is judged on report alone
    second = fire(rt.clients, "nightly-report", scheduled_time="2026-11-26T02:00:00Z")
    recorder.reset()
    invoke(TRACK, ends(rt.clients, second, "ecs_task_stopped"))
    assert recorder.count("DescribeTaskDefinition") == 1
    statuses = {r["task_arn"]: r["status"] for r in rt.history.runs("nightly-report")}
    assert statuses == {first["taskArn"]: "FAILED", second["taskArn"]: "SUCCEEDED"}


@pytest.mark.usefixtures("frozen_tasks")
def test_a_revision_is_described_once_for_the_life_of_the_process(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN two runs of the same revision
    rt = make_runtime(fresh_report_job(world))
    first = fire(rt.clients, "nightly-report")
    second = fire(rt.clients, "nightly-report", scheduled_time="2026-11-26T02:00:00Z")
    recorder.reset()
    # WHEN both tasks stop, each event in its own invocation
    invoke(TRACK, ends(rt.clients, first, "ecs_task_stopped"))
    invoke(TRACK, ends(rt.clients, second, "ecs_task_stopped"))
    # THEN the revision was described once (revisions never change), and both runs were judged on it
    assert recorder.count("DescribeTaskDefinition") == 1
    assert [r["status"] for r in rt.history.runs("nightly-report")] == ["SUCCEEDED", "SUCCEEDED"]


@pytest.mark.usefixtures("frozen_tasks")
def test_a_notification_that_cannot_be_sent_never_undoes_or_repeats_the_records_move(
    world: Sandbox,
    make_runtime: MakeRuntime,
    topic: tuple[str, str],
    faults: Faults,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a failed run, and SNS unreachable past botocore's retries
    topic_arn, inbox = topic
    rt = make_runtime(config(), notify_topic_arn=topic_arn)
    task = fire(rt.clients, "nightly-report")
    rule = faults.fail("Publish", "network")
    capsys.readouterr()
    event = ends(rt.clients, task, "ecs_task_stopped_failed")
    # WHEN the tracker handles its STOPPED event (and the event comes again)
    result = invoke(TRACK, event)
    again = invoke(TRACK, event)
    # THEN the record moved once and the handler did not raise (a retry would not notify either)
    assert rule.fired == 1
    assert result["moved"] == {"from": "PENDING", "to": "FAILED"}
    assert again["moved"] is None
    assert [r["status"] for r in rt.history.runs("nightly-report")] == ["FAILED"]
    # AND the lost notification is counted, and nothing reached the topic
    assert metric_values(emitted(capsys.readouterr().out), "NotificationErrors") == [1.0]
    assert notifications(rt, inbox) == []


def tracker_rule_pattern(event: str) -> dict[str, Any]:
    """The EventBridge pattern of one of track_deployments' events in template.yaml, with the
    stack's account and region filled in."""
    pattern = event_patterns("TrackDeploymentsFunction")[event]
    return dict(resolve_pseudo(pattern, ACCOUNT, REGION))


@pytest.mark.usefixtures("frozen_tasks")
@pytest.mark.parametrize("job", ["nightly-report", "billing.export-for-the-finance-team-monthly"])
def test_the_stopped_event_of_a_task_run_job_started_matches_the_trackers_rule_and_others_do_not(
    job: str, world: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN the tracker's JobTaskStopped rule exactly as template.yaml writes it, delivering to a queue
    events, sqs = world.clients.get("events"), world.clients.sqs
    inbox = sqs.create_queue(QueueName="tracker-rule")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="job-task-stopped", EventPattern=json.dumps(tracker_rule_pattern("JobTaskStopped")))
    events.put_targets(Rule="job-task-stopped", Targets=[{"Id": "inbox", "Arn": inbox_arn}])
    # AND a task that run_job started for the job (its startedBy may be shortened and hashed),
    # and one started by hand
    rt = make_runtime({**config(), "jobs": [{"name": job, "cluster": "prod", "task_definition": "report"}]})
    mine = fire(rt.clients, job)
    [other] = rt.clients.ecs.run_task(cluster="prod", taskDefinition="report", startedBy="console")["tasks"]
    # WHEN both stop and ECS puts their STOPPED events on the default bus
    for task in (mine, other):
        event = ends(rt.clients, task, "ecs_task_stopped")
        entry = {
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Resources": event["resources"],
            "Detail": json.dumps(event["detail"]),
        }
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
    # THEN only run_job's task reaches the tracker: the startedBy it sets matches the rule's prefix
    delivered = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["detail"]["taskArn"] for m in delivered] == [mine["taskArn"]]
    assert mine["startedBy"] == started_by(job)


def test_a_malformed_ecs_event_gets_a_typed_error_naming_the_field(make_runtime: MakeRuntime) -> None:
    make_runtime(config())
    event = load_event("ecs_deployment_completed")
    del event["detail"]["deploymentId"]
    with pytest.raises(EventError, match=r"detail\.deploymentId"):
        invoke(TRACK, event)
