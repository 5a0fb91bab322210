"""run_queued_jobs against moto's SQS, ECS and DynamoDB: the real handler, a stand-in for Lambda's
SQS event source mapping (``QueuePump``: receive, invoke, delete what did not fail)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecspilot.aws.clients import Clients
from ecspilot.jobs.plan import started_by
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import QueuePump, Sandbox, create_jobs_queue
from tests.canned import CannedRunTask, failure
from tests.conftest import MakeRuntime

CLUSTER = "renderfarm"
RUN = "run_queued_jobs"


@pytest.fixture(autouse=True)
def _frozen(frozen_tasks: None) -> None:
    """Tasks stay RUNNING once started (moto moves them on every DescribeTasks)."""


def render_job(**queue: Any) -> dict[str, Any]:
    return {
        "name": "render",
        "cluster": CLUSTER,
        "task_definition": "render",
        "launch_type": "EC2",
        "concurrency": "forbid",  # queue runs are bounded by max_running, not by this policy
        "queue": {"allow": ["command", "environment.INPUT_URL", "container"], **queue},
    }


class Queue:
    """The jobs queue, its DLQ, and a pump that plays Lambda's event source mapping."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients
        self.url, self.dlq_url = create_jobs_queue(clients, max_receive_count=3)
        self.pump = QueuePump(clients, self.url)

    def send(self, body: Any, message_id_hint: str = "") -> str:
        raw = body if isinstance(body, str) else json.dumps(body)
        return str(self.clients.sqs.send_message(QueueUrl=self.url, MessageBody=raw)["MessageId"])

    def deliver(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """One batch through the real handler; returns (event, response) after settling."""
        event = self.pump.receive()
        response: dict[str, Any] = invoke(RUN, event)
        self.pump.settle(event, response)
        return event, response

    def dead_letters(self) -> list[dict[str, Any]]:
        return self.clients.sqs.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])

    def waiting(self) -> int:
        attrs = self.clients.sqs.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"])


@pytest.fixture
def queue(sandbox: Sandbox, make_runtime: MakeRuntime, clients: Clients) -> Queue:
    sandbox.cluster(CLUSTER, instances_per_zone=2)
    sandbox.task_definition("render", {"app": sandbox.image("render", "v1")})
    q = Queue(clients)
    make_runtime({"version": 1, "jobs": [render_job(max_running=3)]}, jobs_dlq_url=q.dlq_url)
    return q


def failed_ids(response: dict[str, Any]) -> list[str]:
    return sorted(f["itemIdentifier"] for f in response["batchItemFailures"])


def running(clients: Clients) -> list[dict[str, Any]]:
    arns = clients.ecs.list_tasks(cluster=CLUSTER, startedBy=started_by("render"))["taskArns"]
    tasks = clients.ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []
    return [t for t in tasks if t["lastStatus"] != "STOPPED"]


def test_a_batch_reports_exactly_the_transient_failures_and_dead_letters_the_permanent_ones(
    queue: Queue, clients: Clients, recorder: CallRecorder
) -> None:
    # GIVEN two valid messages, a forbidden override, an unknown job, bad JSON, and one over max_running
    ok = [queue.send({"job": "render", "overrides": {"command": ["render", str(i)]}}) for i in range(2)]
    forbidden = queue.send(
        {"job": "render", "overrides": {"taskRoleArn": "arn:aws:iam::123456789012:role/admin"}}
    )
    unknown = queue.send({"job": "nope"})
    bad_json = queue.send("{not json")
    too_many = queue.send({"job": "render", "count": 2})
    recorder.reset()
    # WHEN the batch is delivered
    _, response = queue.deliver()
    # THEN only the over-limit message is reported failed (it waits in the queue)
    assert failed_ids(response) == [too_many]
    assert queue.waiting() == 1
    # AND the permanent ones are in the DLQ, each with its reason; they were not retried
    reasons = {
        m["Body"]: m["MessageAttributes"]["ecspilot_reason"]["StringValue"] for m in queue.dead_letters()
    }
    assert len(reasons) == 3
    assert "taskRoleArn are not allowed" in next(r for b, r in reasons.items() if "taskRoleArn" in b)
    assert "unknown job 'nope'" in next(r for b, r in reasons.items() if "nope" in b)
    assert "not JSON" in reasons["{not json"]
    # AND RunTask ran once per valid message, ListTasks once for the job
    assert recorder.count("RunTask") == 2
    assert recorder.count("ListTasks") == 1
    assert recorder.count("DescribeTaskDefinition") == 1  # resolved once per job per batch
    assert all("taskRoleArn" not in json.dumps(p) for p in recorder.params("RunTask"))
    assert {
        tuple(p["overrides"]["containerOverrides"][0]["command"]) for p in recorder.params("RunTask")
    } == {
        ("render", "0"),
        ("render", "1"),
    }
    assert len(running(clients)) == 2
    del ok, forbidden, unknown, bad_json


def test_max_running_holds_across_a_batch_and_the_rest_waits(queue: Queue, clients: Clients) -> None:
    # GIVEN max_running 3 and five messages of one task each
    ids = [queue.send({"job": "render"}) for _ in range(5)]
    # WHEN the batch is delivered
    _, response = queue.deliver()
    # THEN three run and two wait in the queue
    assert len(running(clients)) == 3
    assert len(response["batchItemFailures"]) == 2
    assert set(failed_ids(response)) < set(ids)
    # AND while the three still run, the next delivery starts nothing
    _, again = queue.deliver()
    assert len(again["batchItemFailures"]) == 2
    assert len(running(clients)) == 3


def test_a_redelivered_message_never_starts_a_second_task(
    queue: Queue, clients: Clients, recorder: CallRecorder
) -> None:
    queue.send({"job": "render"})
    event = queue.pump.receive()
    first = invoke(RUN, event)
    recorder.reset()
    # WHEN SQS delivers the same message again (at least once delivery, or a Lambda retry)
    second = invoke(RUN, event)
    # THEN it is a success (deleted from the queue) and no task starts
    assert first["batchItemFailures"] == second["batchItemFailures"] == []
    assert recorder.count("RunTask") == 0
    assert len(running(clients)) == 1


def test_an_idempotency_key_in_the_body_deduplicates_two_different_messages(
    queue: Queue, clients: Clients
) -> None:
    queue.send({"job": "render", "idempotency_key": "video-42"})
    queue.send({"job": "render", "idempotency_key": "video-42"})
    _, response = queue.deliver()
    assert response["batchItemFailures"] == []
    assert len(running(clients)) == 1


def test_capacity_failures_are_transient_and_stay_in_the_queue(queue: Queue, clients: Clients) -> None:
    canned = CannedRunTask(clients, {"failures": [failure("RESOURCE:MEMORY", cluster=CLUSTER)]})
    message = queue.send({"job": "render"})
    _, response = queue.deliver()
    canned.remove()
    assert failed_ids(response) == [message]
    assert queue.dead_letters() == []
    # AND once capacity is back, the redelivered message runs
    _, retried = queue.deliver()
    assert retried["batchItemFailures"] == []
    assert len(running(clients)) == 1


def test_a_missing_resource_is_permanent_and_goes_to_the_dead_letter_queue(
    queue: Queue, clients: Clients
) -> None:
    canned = CannedRunTask(clients, {"failures": [failure("MISSING", "cluster gone", cluster=CLUSTER)]})
    queue.send({"job": "render"})
    _, response = queue.deliver()
    canned.remove()
    assert response["batchItemFailures"] == []
    [dead] = queue.dead_letters()
    assert "MISSING" in dead["MessageAttributes"]["ecspilot_reason"]["StringValue"]


def test_without_a_configured_dlq_the_source_queues_redrive_policy_is_used(
    queue: Queue, make_runtime: MakeRuntime
) -> None:
    make_runtime({"version": 1, "jobs": [render_job()]}, table=False)
    queue.send({"job": "render", "overrides": {"image": "evil"}})
    _, response = queue.deliver()
    assert response["batchItemFailures"] == []
    assert len(queue.dead_letters()) == 1


BODIES = st.one_of(
    st.text(max_size=40),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=12),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=12,
    ).map(json.dumps),
    st.fixed_dictionaries(
        {"job": st.sampled_from(["render", "nope", ""])},
        optional={
            "overrides": st.dictionaries(
                st.sampled_from(["command", "environment", "taskRoleArn", "image", "cpu"]),
                st.none() | st.text(max_size=5) | st.lists(st.text(max_size=5), max_size=2),
                max_size=2,
            ),
            "count": st.integers(-1, 12),
        },
    ).map(json.dumps),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bodies=st.lists(BODIES, min_size=1, max_size=10))
def test_any_batch_never_raises_and_never_runs_an_invalid_message(
    bodies: list[str], queue: Queue, clients: Clients, recorder: CallRecorder
) -> None:
    from ecspilot.errors import InvalidMessageError  # noqa: PLC0415
    from ecspilot.interfaces import runtime  # noqa: PLC0415
    from ecspilot.queue.request import parse_request  # noqa: PLC0415

    config = runtime.current().config
    valid = 0
    for body in bodies:
        try:
            parse_request(body, config)
            valid += 1
        except InvalidMessageError:
            pass
    records = [
        {"messageId": f"m-{i}", "receiptHandle": f"r-{i}", "body": body, "eventSourceARN": queue.pump.arn}
        for i, body in enumerate(bodies)
    ]
    recorder.reset()
    response = invoke(RUN, {"Records": records})
    assert set(failed_ids(response)) <= {r["messageId"] for r in records}
    assert recorder.count("RunTask") <= valid
    for params in recorder.params("RunTask"):
        assert "taskRoleArn" not in json.dumps(params)


def test_enqueue_validates_locally_then_sends_a_well_formed_message(
    queue: Queue, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml  # noqa: PLC0415

    from ecspilot.interfaces.cli import main  # noqa: PLC0415

    config = tmp_path / "ecspilot.yaml"
    config.write_text(yaml.safe_dump({"version": 1, "jobs": [render_job()]}), encoding="utf-8")
    base = ["--config", str(config), "enqueue", "render", "--queue-url", queue.url]
    # a forbidden override never leaves the workstation
    assert main([*base, "--set", "environment.SECRET=x"]) == 2
    assert "environment.SECRET is not in this job's queue.allow" in capsys.readouterr().err
    assert queue.waiting() == 0
    # a valid one is sent as the handler expects it
    assert main([*base, "--set", "command=render --fast", "--set", "environment.INPUT_URL=s3://in/1"]) == 0
    [message] = queue.clients.sqs.receive_message(QueueUrl=queue.url).get("Messages", [])
    assert json.loads(message["Body"]) == {
        "job": "render",
        "count": 1,
        "overrides": {"command": ["render", "--fast"], "environment": {"INPUT_URL": "s3://in/1"}},
    }


def test_the_sample_batch_runs_the_valid_message_and_dead_letters_the_role_override(
    sandbox: Sandbox, make_runtime: MakeRuntime, clients: Clients, recorder: CallRecorder
) -> None:
    from ecspilot_dev.local import load_event  # noqa: PLC0415

    sandbox.cluster(CLUSTER, instances_per_zone=1)
    sandbox.task_definition("render", {"app": sandbox.image("render", "v1")})
    _, dlq_url = create_jobs_queue(clients, name="ecspilot-JobsQueue")
    job = {**render_job(), "name": "render-video"}
    make_runtime({"version": 1, "jobs": [job]}, jobs_dlq_url=dlq_url)
    response = invoke(RUN, load_event("sqs_jobs_batch"))
    assert response == {"batchItemFailures": []}
    [params] = recorder.params("RunTask")
    assert params["overrides"]["containerOverrides"] == [
        {"name": "app", "environment": [{"name": "INPUT_URL", "value": "s3://uploads/clip-42.mov"}]}
    ]
    [dead] = clients.sqs.receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"])["Messages"]
    assert "taskRoleArn" in dead["MessageAttributes"]["ecspilot_reason"]["StringValue"]


# --- the batch's pool and reads ---------------------------------------------------------------


def test_two_jobs_sharing_a_task_definition_describe_it_once_per_batch(
    sandbox: Sandbox, make_runtime: MakeRuntime, clients: Clients, recorder: CallRecorder
) -> None:
    # GIVEN two queue jobs that run the same task definition family, and a message for each
    sandbox.cluster(CLUSTER, instances_per_zone=2)
    sandbox.task_definition("render", {"app": sandbox.image("render", "v1")})
    q = Queue(clients)
    make_runtime(
        {"version": 1, "jobs": [render_job(), {**render_job(), "name": "render-hd"}]}, jobs_dlq_url=q.dlq_url
    )
    q.send({"job": "render"})
    q.send({"job": "render-hd"})
    recorder.reset()
    # WHEN the batch is delivered
    _, response = q.deliver()
    # THEN both ran, and the task definition was read once (the batch's TaskDefinitions cache)
    assert response["batchItemFailures"] == []
    assert recorder.count("RunTask") == 2
    assert recorder.count("DescribeTaskDefinition") == 1


def test_the_batch_launches_messages_concurrently_never_more_than_max_workers_at_once(
    sandbox: Sandbox, make_runtime: MakeRuntime, clients: Clients
) -> None:
    # GIVEN six messages of a job without max_running, and a batch given a pool of 2 workers, on
    # clients whose session counts the RunTask calls in flight (each held 0.2 s)
    from ecspilot.queue.batch import QueueBatch  # noqa: PLC0415

    sandbox.cluster(CLUSTER, instances_per_zone=2)
    sandbox.task_definition("render", {"app": sandbox.image("render", "v1")})
    queue = Queue(clients)
    rt = make_runtime({"version": 1, "jobs": [render_job()]}, jobs_dlq_url=queue.dlq_url)
    lock, in_flight, peak = threading.Lock(), [0], [0]

    def enter(**_: Any) -> None:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.2)

    def leave(**_: Any) -> None:
        with lock:
            in_flight[0] -= 1

    session = boto3.Session(region_name=clients.ecs.meta.region_name)
    session.events.register("before-call.ecs.RunTask", enter)
    session.events.register("after-call.ecs.RunTask", leave)
    counted = Clients(session=session)
    for i in range(6):
        queue.send({"job": "render", "overrides": {"command": ["render", str(i)]}})
    records = queue.pump.receive()["Records"]
    # WHEN the batch is processed with max_workers=2
    outcomes = QueueBatch(rt.config, counted, rt.history, max_workers=2, dlq_url=queue.dlq_url).process(
        records
    )
    # THEN every message started, two at a time: concurrently, and bounded by the pool
    assert [o.outcome for o in outcomes.values()] == ["started"] * 6
    assert len(running(clients)) == 6
    assert peak[0] == 2
