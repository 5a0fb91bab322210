"""Service health against moto: stopped service tasks recorded, crash loops notified once.

The real track_deployments handler with ECS task events built from the samples in events/
(moto never emits them), real boto3 clients on moto's ECS, DynamoDB, SNS and SQS; notifications
are read from an SQS queue subscribed to the topic.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecspilot.aws.health_records import HealthRecords
from ecspilot.errors import HealthRecordError
from ecspilot.interfaces.runtime import Runtime
from ecspilot_dev.health_events import DRAINED, ELB_FAILED, service_task_stopped
from ecspilot_dev.local import invoke, load_event
from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox
from tests.conftest import MakeRuntime
from tests.faults import Faults
from tests.functional.test_track_deployments import emitted, metric_values
from tests.races import race
from tests.template import event_patterns, resolve

TRACK = "track_deployments"
T0 = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
DIGEST = "sha256:7d1e4c2b9a8f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d"
ELB_REASON = (
    "Task failed ELB health checks in (target-group "
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/7d3b2a1c9e8f6a5b)"
)


def config(crash_loop: Any = None) -> dict[str, Any]:
    web: dict[str, Any] = {
        "name": "web",
        "cluster": "prod",
        "containers": {"app": {"repository": "web", "tags": ["v*"]}},
    }
    if crash_loop is not None:
        web["crash_loop"] = crash_loop
    return {"version": 1, "services": [web]}


@pytest.fixture
def world(sandbox: Sandbox) -> str:
    """Cluster prod with service web; returns web's task definition ARN."""
    sandbox.cluster("prod")
    sandbox.repository("web")
    td = sandbox.task_definition("web", {"app": sandbox.image("web", "v0")})
    sandbox.service("prod", "web", td)
    return td


@pytest.fixture
def topic(sandbox: Sandbox) -> tuple[str, str]:
    """The notification topic, with an SQS queue subscribed to read what was published."""
    sns, sqs = sandbox.clients.sns, sandbox.clients.sqs
    topic_arn = sns.create_topic(Name="ecspilot-notify")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="ecspilot-notify-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return topic_arn, queue_url


def inbox(rt: Runtime, queue_url: str) -> list[dict[str, Any]]:
    """Every notification published so far (each is read once)."""
    out: list[dict[str, Any]] = []
    while True:
        resp = rt.clients.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = resp.get("Messages", [])
        if not messages:
            return out
        out += [json.loads(m["Body"]) for m in messages]
        for m in messages:
            rt.clients.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def replaced(td: str, number: int, minutes: float, sample: str = ELB_FAILED, **kw: Any) -> dict[str, Any]:
    """Web's task ``number``, replaced ``minutes`` after T0 (failed ELB health checks by default)."""
    return service_task_stopped(sample, number, T0 + timedelta(minutes=minutes), task_definition=td, **kw)


def test_five_replacements_within_ten_minutes_notify_once_with_the_count_window_reason_and_image(
    world: str, make_runtime: MakeRuntime, topic: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN web with the default crash_loop (5 in 10 minutes) and a notification topic
    topic_arn, queue = topic
    rt = make_runtime(config(), notify_topic_arn=topic_arn)
    capsys.readouterr()
    # WHEN ECS replaces seven of its tasks a minute apart, each failing the ELB health checks
    results = [invoke(TRACK, replaced(world, n, n)) for n in range(7)]
    # THEN the fifth started a crash loop; the others changed nothing
    assert [r["crash_loop"] for r in results] == [None, None, None, None, "start", None, None]
    assert [r["replacements_in_window"] for r in results] == [1, 2, 3, 4, 5, 6, 7]
    # AND exactly one notification names the service, the count, the window, the reason, the image
    [note] = inbox(rt, queue)
    assert note["Subject"].startswith("ecspilot: prod/web is crash-looping")
    body = note["Message"]
    assert "replaced:     5 tasks in 10 minutes" in body
    assert f"reason:       {ELB_REASON} (5 of 5)" in body
    assert f"image:        app={DIGEST}" in body
    assert "health check path" in body
    assert note["MessageAttributes"]["kind"]["Value"] == "crash-loop"
    # AND every replacement counted TasksReplaced once, dimensioned by the service
    blobs = emitted(capsys.readouterr().out)
    assert metric_values(blobs, "TasksReplaced") == [1.0] * 7
    blob = next(b for b in blobs if "TasksReplaced" in b)
    assert (blob["Cluster"], blob["Service"]) == ("prod", "web")


@pytest.mark.parametrize(
    ("minutes", "why"),
    [
        ([0, 2, 4, 6], "four replacements in ten minutes"),
        ([0, 7.5, 15, 22.5, 30], "five replacements spread over thirty minutes"),
    ],
)
def test_fewer_replacements_than_the_threshold_within_the_window_do_not_notify(
    minutes: list[float], why: str, world: str, make_runtime: MakeRuntime, topic: tuple[str, str]
) -> None:
    topic_arn, queue = topic
    rt = make_runtime(config(), notify_topic_arn=topic_arn)
    # WHEN the replacements come at these minutes
    results = [invoke(TRACK, replaced(world, n, m)) for n, m in enumerate(minutes)]
    # THEN no window holds five: no loop, no notification
    assert all(r["crash_loop"] is None for r in results), why
    assert max(r["replacements_in_window"] for r in results) < 5
    assert inbox(rt, queue) == []


def test_a_deployments_drained_tasks_are_recorded_but_never_count_as_replacements(
    world: str, make_runtime: MakeRuntime, topic: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    topic_arn, queue = topic
    rt = make_runtime(config(), notify_topic_arn=topic_arn)
    capsys.readouterr()
    # WHEN a deployment drains ten tasks of the old deployment within two minutes, among four
    # real replacements
    old = "ecs-svc/1111111111111111111"
    drained = [replaced(world, n, n * 0.2, DRAINED, started_by=old) for n in range(10)]
    failing = [replaced(world, 100 + n, 2 + n) for n in range(4)]
    results = [invoke(TRACK, e) for e in drained + failing]
    # THEN the drained stops are recorded as drained, with the deployment they belonged to
    stops = HealthRecords(rt.history).stops("prod", "web", "2026-11-26T00:00:00.000Z")
    assert len(stops) == 14
    assert {s["kind"] for s in stops if s["deployment_id"] == old} == {"drained"}
    # (each stop its own item, expiring within days: nothing grows)
    assert len({s["sk"] for s in stops}) == 14
    assert all(0 < int(s["expires_at"]) - time.time() <= 3 * 86400 for s in stops)
    assert all(not r["replacement"] for r in results[:10])
    # AND only the four replacements count: no loop, four TasksReplaced
    assert results[-1]["replacements_in_window"] == 4
    assert inbox(rt, queue) == []
    assert metric_values(emitted(capsys.readouterr().out), "TasksReplaced") == [1.0] * 4


def test_a_loop_that_ended_and_began_again_notifies_again_and_only_then(
    world: str, make_runtime: MakeRuntime, topic: tuple[str, str]
) -> None:
    topic_arn, queue = topic
    rt = make_runtime(config({"replacements": 3, "minutes": 5}), notify_topic_arn=topic_arn)
    # GIVEN a loop (3 in 5 minutes), notified
    first = [invoke(TRACK, replaced(world, n, n)) for n in range(4)]
    assert [r["crash_loop"] for r in first] == [None, None, "start", None]
    assert len(inbox(rt, queue)) == 1
    # WHEN a replacement comes after a quiet half hour (its window holds one: the loop ended),
    # then two more within the minute (a new loop)
    later = [invoke(TRACK, replaced(world, 10 + n, 40 + n * 0.5)) for n in range(3)]
    # THEN the loop ended, began again, and the new loop is notified once
    assert [r["crash_loop"] for r in later] == ["end", None, "start"]
    [note] = inbox(rt, queue)
    assert "replaced:     3 tasks in 5 minutes" in note["Message"]


def test_a_redelivered_stop_event_is_recorded_and_counted_once(
    world: str, make_runtime: MakeRuntime, topic: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    topic_arn, queue = topic
    rt = make_runtime(config(), notify_topic_arn=topic_arn)
    capsys.readouterr()
    event = replaced(world, 1, 0)
    # WHEN EventBridge delivers the same stop five times
    results = [invoke(TRACK, event) for _ in range(5)]
    # THEN one item, one TasksReplaced, a window of one, no loop
    assert [r["recorded"] for r in results] == [True, False, False, False, False]
    assert {r["replacements_in_window"] for r in results} == {1}
    assert len(HealthRecords(rt.history).stops("prod", "web", "2026-11-26T00:00:00.000Z")) == 1
    assert metric_values(emitted(capsys.readouterr().out), "TasksReplaced") == [1.0]
    assert inbox(rt, queue) == []


def test_a_dynamodb_outage_while_recording_a_stop_fails_the_invocation_and_the_retry_records_it(
    world: str, make_runtime: MakeRuntime, topic: tuple[str, str], faults: Faults
) -> None:
    topic_arn, queue = topic
    rt = make_runtime(config(), notify_topic_arn=topic_arn)
    for n in range(4):
        invoke(TRACK, replaced(world, n, n))
    # GIVEN DynamoDB unavailable (beyond botocore's retries) for the next stop's write
    outage = faults.fail("PutItem", "error", code="ServiceUnavailable", service="dynamodb", times=1)
    fifth = replaced(world, 4, 4)
    # WHEN the fifth replacement's event comes: the invocation fails (EventBridge retries it)
    with pytest.raises(HealthRecordError, match="recording the stopped task failed"):
        invoke(TRACK, fifth)
    assert outage.fired == 1
    assert inbox(rt, queue) == []
    # THEN the retry records it and the loop is notified, once
    retried = invoke(TRACK, fifth)
    assert (retried["recorded"], retried["crash_loop"]) == (True, "start")
    assert len(inbox(rt, queue)) == 1
    assert len(HealthRecords(rt.history).stops("prod", "web", "2026-11-26T00:00:00.000Z")) == 5


def test_two_invocations_racing_on_the_loops_fifth_and_sixth_replacement_notify_once(
    world: str, make_runtime: MakeRuntime, topic: tuple[str, str], faults: Faults
) -> None:
    topic_arn, queue = topic
    rt = make_runtime(config(), notify_topic_arn=topic_arn)
    for n in range(4):
        invoke(TRACK, replaced(world, n, n))
    # GIVEN the crash-loop item's write held back 0.3 s, so both invocations have read the state
    # (no loop yet) and both decided "start" before either writes
    held = faults.fail(
        "PutItem",
        "delay",
        seconds=0.3,
        when=lambda p: p.get("Item", {}).get("sk", {}).get("S") == "CRASHLOOP",
    )
    # WHEN the fifth and sixth replacements are tracked at once, on real threads
    results = race(
        lambda: invoke(TRACK, replaced(world, 4, 4.5)), lambda: invoke(TRACK, replaced(world, 5, 4.6))
    )
    # THEN both were recorded, both saw a loop, and only the conditional write's winner notified
    assert not [r for r in results if isinstance(r, Exception)], results
    assert held.fired >= 2
    assert sorted(str(r["crash_loop"]) for r in results) == ["None", "start"]
    assert len(inbox(rt, queue)) == 1


def test_a_stop_of_a_service_the_config_does_not_name_is_ignored_without_error(
    world: str, make_runtime: MakeRuntime
) -> None:
    rt = make_runtime(config())
    result = invoke(TRACK, replaced(world, 1, 0, service="billing"))
    assert result == {"ignored": "service prod/billing is not configured"}
    assert HealthRecords(rt.history).stops("prod", "billing", "2026-11-26T00:00:00.000Z") == []


def test_crash_loop_false_records_the_stops_and_counts_them_but_never_notifies(
    world: str, make_runtime: MakeRuntime, topic: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    topic_arn, queue = topic
    rt = make_runtime(config(False), notify_topic_arn=topic_arn)
    capsys.readouterr()
    results = [invoke(TRACK, replaced(world, n, n * 0.1)) for n in range(8)]
    assert all(r["crash_loop"] is None for r in results)
    assert inbox(rt, queue) == []
    assert metric_values(emitted(capsys.readouterr().out), "TasksReplaced") == [1.0] * 8


def test_a_failed_deployments_notification_quotes_its_tasks_health_check_failures_and_what_to_fix(
    world: str, sandbox: Sandbox, make_runtime: MakeRuntime, topic: tuple[str, str]
) -> None:
    # GIVEN a deployment deploy_on_push started, whose new tasks failed the ELB health checks
    # (two of them; an old task drained by it is no cause)
    topic_arn, queue = topic
    rt = make_runtime(config(), notify_topic_arn=topic_arn)
    invoke("deploy_on_push", sandbox.push("web", "v1"))
    [record] = rt.history.deployments("prod", "web")
    deployment = record["deployment_id"]
    started = datetime.fromisoformat(record["started_at"].replace("Z", "+00:00"))
    for n in range(2):
        invoke(
            TRACK,
            service_task_stopped(ELB_FAILED, n, started + timedelta(minutes=n + 1), started_by=deployment),
        )
    invoke(TRACK, service_task_stopped(DRAINED, 9, started + timedelta(minutes=2), started_by="ecs-svc/0"))
    # WHEN the circuit breaker fails the deployment
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/web"
    failed = load_event("ecs_deployment_failed", {"deploymentId": deployment}, resources=[arn])
    invoke(TRACK, failed)
    # THEN its notification quotes why its tasks stopped and says what to fix
    [note] = inbox(rt, queue)
    body = note["Message"]
    assert "Why its tasks stopped (2 replaced):" in body
    assert f"  2 x {ELB_REASON}" in body
    assert "What to fix: the load balancer's health check fails on these tasks" in body
    assert "Scaling activity" not in body


# --- the EventBridge rule ------------------------------------------------------------------------


@pytest.mark.parametrize("clusters", ["*", "prod*"])
def test_the_service_task_rule_forwards_stopped_service_tasks_of_service_clusters_only(
    clusters: str, sandbox: Sandbox
) -> None:
    # GIVEN the tracker's ServiceTaskStopped rule as template.yaml writes it (ServiceClusterNamePattern
    # given), delivering to a queue, on moto's EventBridge (which matches prefix and wildcard)
    events, sqs = sandbox.clients.get("events"), sandbox.clients.sqs
    pattern = resolve(
        event_patterns("TrackDeploymentsFunction")["ServiceTaskStopped"],
        ACCOUNT,
        REGION,
        {"ServiceClusterNamePattern": clusters},
    )
    queue = sqs.create_queue(QueueName="service-rule")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="service-task-stopped", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="service-task-stopped", Targets=[{"Id": "q", "Arn": queue_arn}])
    samples = {
        "a service task that failed its health checks": replaced("td", 1, 0),
        "a drained service task": replaced("td", 2, 0, DRAINED),
        "a job's task (group family:report)": load_event("ecs_task_stopped"),
        "a service task still RUNNING": replaced("td", 3, 0, last_status="RUNNING"),
        "a service task of another cluster": replaced("td", 4, 0, cluster="staging"),
        "a service task on a cluster of another account": replaced("td", 5, 0, account="222222222222"),
    }
    # WHEN ECS puts each event on the bus
    for event in samples.values():
        entry = {
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Resources": event["resources"],
            "Detail": json.dumps(event["detail"]),
        }
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
    # THEN the stopped service tasks of the service clusters reach the tracker, nothing else
    delivered = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    got = sorted(json.loads(m["Body"])["detail"]["taskArn"] for m in delivered)
    expected = [samples["a service task that failed its health checks"], samples["a drained service task"]]
    if clusters == "*":  # every cluster is a service cluster
        expected.append(samples["a service task of another cluster"])
    assert got == sorted(e["detail"]["taskArn"] for e in expected)


def test_plan_with_a_service_task_event_says_what_the_stop_would_be_recorded_as(
    world: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from ecspilot.interfaces.cli import main  # noqa: PLC0415
    from ecspilot_dev.local import EVENTS  # noqa: PLC0415

    path = tmp_path / "ecspilot.yaml"
    path.write_text(json.dumps(config()), encoding="utf-8")
    for sample, expected in [(ELB_FAILED, "elb-health-check"), (DRAINED, "drained")]:
        assert (
            main(
                ["plan", "--config", str(path), "--event", str(EVENTS / f"{sample}.json"), "--output", "json"]
            )
            == 0
        )
        result = json.loads(capsys.readouterr().out)
        assert [m["to"] for m in result["moves"]] == [expected], result


def test_a_crash_loop_state_write_that_fails_fails_the_invocation_and_the_retry_notifies_once(
    world: str, make_runtime: MakeRuntime, topic: tuple[str, str], faults: Faults
) -> None:
    topic_arn, queue = topic
    rt = make_runtime(config(), notify_topic_arn=topic_arn)
    for n in range(4):
        invoke(TRACK, replaced(world, n, n))
    # GIVEN the stop's write goes through but the crash-loop item's fails (beyond retries)
    outage = faults.fail(
        "PutItem",
        "network",
        times=1,
        when=lambda p: p.get("Item", {}).get("sk", {}).get("S") == "CRASHLOOP",
    )
    fifth = replaced(world, 4, 4)
    # WHEN the fifth replacement is tracked: the invocation fails before any notification
    with pytest.raises(HealthRecordError, match="writing the crash-loop state failed"):
        invoke(TRACK, fifth)
    assert (outage.fired, inbox(rt, queue)) == (1, [])
    # THEN EventBridge's retry finds the stop recorded (not counted again) and notifies the loop once
    retried = invoke(TRACK, fifth)
    assert (retried["recorded"], retried["crash_loop"]) == (False, "start")
    assert len(inbox(rt, queue)) == 1
    assert invoke(TRACK, fifth)["crash_loop"] is None
    assert inbox(rt, queue) == []
