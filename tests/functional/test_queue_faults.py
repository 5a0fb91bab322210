"""The queue under injected faults (tests/faults.py): nothing lost, nothing run twice, each failure
classified once. The real ``run_queued_jobs`` handler against moto's SQS, ECS and DynamoDB; the
``Queue`` helper plays Lambda's event source mapping (receive, invoke, delete what did not fail).

Each test breaks one guarantee's precondition (a DynamoDB outage, a throttle beyond retries, a
network error, a lost reply, an exception, two invocations racing) and checks the end state:
tasks running in ECS, run records and claims in the table, messages in the queue and the DLQ.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from ecspilot.aws.clients import Clients
from ecspilot.aws.history import deserialize
from ecspilot.interfaces import runtime
from ecspilot.queue.handler import handle_queue_event
from ecspilot_dev.local import CallRecorder, invoke, load_handler
from tests.conftest import TABLE
from tests.faults import Faults
from tests.functional.test_run_queued_jobs import RUN, Queue, failed_ids, queue, running

__all__ = ["queue"]  # the fixture, shared with test_run_queued_jobs


@pytest.fixture(autouse=True)
def _frozen(frozen_tasks: None) -> None:
    """Tasks stay RUNNING once started (moto moves them on every DescribeTasks)."""


def run_records(clients: Clients) -> list[dict[str, Any]]:
    resp = clients.dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :run)",
        ExpressionAttributeValues={":pk": {"S": "JOB#render"}, ":run": {"S": "RUN#"}},
        ConsistentRead=True,
    )
    return [deserialize(i) for i in resp["Items"] if i.get("type", {}).get("S") == "run"]


def claims(clients: Clients) -> list[dict[str, Any]]:
    resp = clients.dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :req)",
        ExpressionAttributeValues={":pk": {"S": "JOB#render"}, ":req": {"S": "REQUEST#"}},
        ConsistentRead=True,
    )
    return [deserialize(i) for i in resp["Items"]]


def reasons(queue: Queue) -> dict[str, str]:
    """Body -> reason of every message in the DLQ (a message without a reason maps to "")."""
    return {
        m["Body"]: m.get("MessageAttributes", {}).get("ecspilot_reason", {}).get("StringValue", "")
        for m in queue.dead_letters()
    }


def assert_ran_once_and_recorded(queue: Queue, clients: Clients) -> None:
    """The end state every fault must reach once it passes: one task, one record, claim DONE,
    nothing waiting, nothing dead-lettered."""
    [task] = running(clients)
    [record] = run_records(clients)
    assert record["task_arn"] == task["taskArn"]
    [claim] = claims(clients)
    assert (claim["status"], claim["task_arns"]) == ("DONE", [task["taskArn"]])
    assert queue.waiting() == 0
    assert queue.dead_letters() == []


# --- a DynamoDB outage ------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["InternalServerError", "ProvisionedThroughputExceededException"])
def test_a_dynamodb_outage_while_claiming_keeps_the_message_queued_not_dead_lettered(
    queue: Queue, clients: Clients, faults: Faults, code: str
) -> None:
    # GIVEN the state table fails every call (beyond botocore's retries)
    message = queue.send({"job": "render"})
    outage = faults.fail("*", service="dynamodb", code=code)
    # WHEN the message is delivered
    with faults.active(outage):
        _, response = queue.deliver()
    # THEN it stays in the queue (transient), no task started, nothing in the DLQ
    assert failed_ids(response) == [message]
    assert running(clients) == []
    assert queue.dead_letters() == []
    # AND once the table is back, the redelivered message runs once and is recorded
    _, again = queue.deliver()
    assert again["batchItemFailures"] == []
    assert_ran_once_and_recorded(queue, clients)


def test_a_dynamodb_outage_while_writing_the_run_record_retries_without_a_second_task(
    queue: Queue, clients: Clients, faults: Faults, recorder: CallRecorder
) -> None:
    # GIVEN RunTask works but writing the run record fails
    message = queue.send({"job": "render"})
    outage = faults.fail("BatchWriteItem", service="dynamodb", code="InternalServerError")
    batched = faults.fail("TransactWriteItems", service="dynamodb", code="InternalServerError")
    with faults.active(outage, batched):
        _, response = queue.deliver()
    # THEN the task started, the message is retried (never dead-lettered), the claim says RETRY
    assert failed_ids(response) == [message]
    [task] = running(clients)
    assert run_records(clients) == []
    assert [c["status"] for c in claims(clients)] == ["RETRY"]
    # WHEN it is redelivered with the table back
    recorder.reset()
    _, again = queue.deliver()
    # THEN no second task starts, and the run is recorded
    assert again["batchItemFailures"] == []
    assert recorder.count("RunTask") == 0
    assert_ran_once_and_recorded(queue, clients)
    assert running(clients)[0]["taskArn"] == task["taskArn"]


@dataclass
class ShortContext:
    """A Lambda context with ``millis`` left: the invocation's claim expires that soon."""

    millis: int

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


def test_a_claim_left_starting_by_a_dead_invocation_expires_with_it_and_the_retry_finds_its_task(
    queue: Queue, clients: Clients, faults: Faults, recorder: CallRecorder
) -> None:
    # GIVEN an invocation with 4 s left (room for a loaded machine to redeliver within it) whose RunTask works, then the whole table goes down:
    # neither the record, nor DONE, nor even RETRY can be written (the claim stays STARTING)
    message = queue.send({"job": "render"})
    event = queue.pump.receive()
    outage = faults.fail("*", service="dynamodb", code="InternalServerError", when=lambda p: "Key" not in p)
    outage_updates = faults.fail(
        "UpdateItem", service="dynamodb", code="ServiceUnavailable", when=lambda p: ":status" in str(p)
    )
    with faults.active(outage, outage_updates):
        response = handle_queue_event(event, runtime.current(), ShortContext(millis=4000))
    assert failed_ids(response) == [message]
    [task] = running(clients)
    [claim] = claims(clients)
    assert claim["status"] == "STARTING"
    assert claim["in_progress_until"] <= time.time() + 5  # the invocation's time, not 900 s
    # WHEN it is redelivered while that invocation could still be running: busy, retried
    _, busy = queue.deliver()
    assert failed_ids(busy) == [message]
    # AND after the dead invocation's time is up
    time.sleep(max(0.0, float(claim["in_progress_until"]) - time.time()) + 0.2)
    recorder.reset()
    _, again = queue.deliver()
    # THEN the retry takes the claim, finds the task in ECS, starts nothing, records the run
    assert again["batchItemFailures"] == []
    assert recorder.count("RunTask") == 0
    assert_ran_once_and_recorded(queue, clients)
    assert running(clients)[0]["taskArn"] == task["taskArn"]


def test_a_done_claim_never_expires_into_a_second_run(
    queue: Queue, clients: Clients, recorder: CallRecorder
) -> None:
    # GIVEN a message that ran, its claim DONE and claimed long ago (older than any timeout)
    queue.send({"job": "render"})
    event = queue.pump.receive()
    invoke(RUN, event)
    [claim] = claims(clients)
    clients.dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": claim["pk"]}, "sk": {"S": claim["sk"]}},
        UpdateExpression="SET claimed_at = :old",
        ExpressionAttributeValues={":old": {"N": str(int(time.time()) - 86400)}},
    )
    recorder.reset()
    # WHEN SQS delivers it again a day later
    response = invoke(RUN, event)
    # THEN it is a duplicate: nothing starts
    assert response["batchItemFailures"] == []
    assert recorder.count("RunTask") == 0
    assert len(running(clients)) == 1


# --- ECS faults -------------------------------------------------------------------------------


def test_a_run_task_throttled_beyond_retries_stays_queued_then_runs_once(
    queue: Queue, clients: Clients, faults: Faults, recorder: CallRecorder
) -> None:
    message = queue.send({"job": "render"})
    throttle = faults.fail("RunTask", code="ThrottlingException")
    with faults.active(throttle):
        _, response = queue.deliver()
    assert failed_ids(response) == [message]
    assert throttle.fired == 3  # sent again after a pause, then left to SQS
    assert running(clients) == []
    assert queue.dead_letters() == []
    assert [c["status"] for c in claims(clients)] == ["RETRY"]
    _, again = queue.deliver()
    assert again["batchItemFailures"] == []
    assert_ran_once_and_recorded(queue, clients)


def test_a_short_run_task_throttle_is_absorbed_in_the_same_invocation(
    queue: Queue, clients: Clients, faults: Faults
) -> None:
    queue.send({"job": "render"})
    faults.fail("RunTask", code="ThrottlingException", times=1)
    _, response = queue.deliver()
    assert response["batchItemFailures"] == []
    assert_ran_once_and_recorded(queue, clients)


@pytest.mark.parametrize(
    "operation", ["RunTask", "DescribeTaskDefinition", "ListTasks", "UpdateItem", "BatchWriteItem"]
)
def test_a_network_error_on_any_call_keeps_the_message_queued(
    queue: Queue, clients: Clients, faults: Faults, operation: str
) -> None:
    message = queue.send({"job": "render"})
    network = faults.fail(operation, "network")
    # the batch's records go in one transaction first; a run is written alone when it fails
    batched = faults.fail("TransactWriteItems", "network", when=lambda _: operation == "BatchWriteItem")
    with faults.active(network, batched):
        _, response = queue.deliver()
    assert network.fired >= 1
    assert failed_ids(response) == [message]
    assert queue.dead_letters() == []
    _, again = queue.deliver()
    assert again["batchItemFailures"] == []
    assert_ran_once_and_recorded(queue, clients)


def test_a_throttled_describe_task_definition_is_transient_not_permanent(
    queue: Queue, clients: Clients, faults: Faults
) -> None:
    message = queue.send({"job": "render"})
    with faults.active(faults.fail("DescribeTaskDefinition", code="ThrottlingException")):
        _, response = queue.deliver()
    assert failed_ids(response) == [message]
    assert queue.dead_letters() == []


def test_a_lost_run_task_reply_starts_exactly_one_task(
    queue: Queue, clients: Clients, faults: Faults, recorder: CallRecorder
) -> None:
    # GIVEN RunTask is applied by ECS but its reply is lost (a 500 where botocore would resend)
    queue.send({"job": "render"})
    lost = faults.fail("RunTask", "lost-reply", times=1)
    # WHEN the message is delivered
    _, response = queue.deliver()
    # THEN the lost attempt's task is found by the run's tag and adopted: one task, recorded
    assert lost.fired == 1
    assert response["batchItemFailures"] == []
    assert recorder.count("RunTask") == 1
    assert_ran_once_and_recorded(queue, clients)


def test_run_task_replies_lost_on_every_call_still_start_exactly_one_task(
    queue: Queue, clients: Clients, faults: Faults
) -> None:
    # GIVEN every RunTask of the batch is applied and its reply lost (a long network trouble)
    queue.send({"job": "render"})
    faults.fail("RunTask", "lost-reply")
    _, response = queue.deliver()
    # THEN the first attempt's task is found and adopted; no second send, one task
    assert response["batchItemFailures"] == []
    assert_ran_once_and_recorded(queue, clients)


# --- one failure stays one failure ------------------------------------------------------------


def test_an_exception_in_one_message_is_isolated_logged_and_retried(
    queue: Queue,
    clients: Clients,
    faults: Faults,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN three messages, RunTask of one of them raises an exception nobody expected
    ok = [queue.send({"job": "render", "overrides": {"command": ["render", str(i)]}}) for i in range(2)]
    bad = queue.send({"job": "render", "overrides": {"command": ["render", "bad"]}})

    def is_bad(params: Mapping[str, Any]) -> bool:
        return "bad" in json.dumps(params.get("overrides", {}))

    bug = faults.fail("RunTask", "exception", exception=KeyError("a bug"), when=is_bad)
    capfd.readouterr()
    with faults.active(bug):
        _, response = queue.deliver()
    # THEN only that message is retried; the other two ran
    assert failed_ids(response) == [bad]
    assert len(running(clients)) == 2
    assert queue.dead_letters() == []
    # AND the exception was logged with its traceback and counted
    [logged] = [r for r in caplog.records if r.getMessage().startswith("unexpected error handling a message")]
    assert logged.exc_info is not None
    assert isinstance(logged.exc_info[1], KeyError)
    assert "QueueMessageErrors" in capfd.readouterr().out
    # AND the retried message runs once the bug is gone
    _, again = queue.deliver()
    assert again["batchItemFailures"] == []
    assert len(running(clients)) == 3
    del ok


def test_a_body_nested_10000_deep_is_dead_lettered_alone_with_a_reason(
    queue: Queue, clients: Clients
) -> None:
    ok = [queue.send({"job": "render"}) for _ in range(2)]
    deep = "[" * 10_000 + "]" * 10_000
    deep_in_overrides = '{"job": "render", "overrides": {"command": ' + "[" * 10_000 + "]" * 10_000 + "}}"
    queue.send(deep)
    queue.send(deep_in_overrides)
    _, response = queue.deliver()
    assert response["batchItemFailures"] == []
    assert len(running(clients)) == 2
    got = reasons(queue)
    assert set(got) == {deep, deep_in_overrides}
    assert all("nests JSON" in r and "at most 32" in r for r in got.values())
    del ok


def test_a_throttled_dead_letter_send_keeps_the_invalid_message_queued(
    queue: Queue, clients: Clients, faults: Faults
) -> None:
    bad = queue.send({"job": "nope"})
    with faults.active(faults.fail("SendMessage", code="ThrottlingException")):
        _, response = queue.deliver()
    assert failed_ids(response) == [bad]
    assert queue.dead_letters() == []
    _, again = queue.deliver()
    assert again["batchItemFailures"] == []
    assert "unknown job 'nope'" in reasons(queue)[json.dumps({"job": "nope"})]


def test_an_override_for_a_container_the_task_definition_lacks_is_dead_lettered(
    queue: Queue, clients: Clients, recorder: CallRecorder
) -> None:
    good = queue.send({"job": "render", "overrides": {"container": "app", "command": ["go"]}})
    queue.send({"job": "render", "overrides": {"container": "sidecar", "command": ["go"]}})
    _, response = queue.deliver()
    assert response["batchItemFailures"] == []
    [reason] = reasons(queue).values()
    assert "container 'sidecar' is not a container of render (containers: app)" in reason
    [params] = recorder.params("RunTask")
    assert params["overrides"]["containerOverrides"][0]["name"] == "app"
    del good


# --- two invocations race ---------------------------------------------------------------------


@pytest.fixture
def atomic_conditional_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies a conditional write atomically; moto's in-process backend checks the
    condition and writes in two steps, so two threads can both pass it. Serialize moto's writes
    as DynamoDB does (moto's behaviour, not ours, is changed here)."""
    from moto.dynamodb.models import DynamoDBBackend  # noqa: PLC0415

    lock = threading.Lock()
    for name in ("update_item", "put_item"):
        original = getattr(DynamoDBBackend, name)

        def atomic(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, atomic)


def on_run_task(clients: Clients, hook: Any) -> None:
    """Call ``hook`` as each RunTask is about to be sent, in the caller's thread: a botocore hook
    on the client RunTask goes through (the faults' own hooks run under a lock, which would
    serialize the two invocations instead of racing them)."""
    clients.single_attempt("ecs").meta.events.register("before-call.ecs.RunTask", hook)


@pytest.mark.usefixtures("atomic_conditional_writes")
def test_two_invocations_racing_on_one_message_start_exactly_one_task(
    queue: Queue, clients: Clients, recorder: CallRecorder
) -> None:
    # GIVEN one message delivered to two invocations at once (SQS at-least-once), released
    # together by a barrier, with a RunTask slow enough that both are inside the run together
    queue.send({"job": "render"})
    event = queue.pump.receive()
    load_handler(RUN)  # warm: both invocations start at once
    gate = threading.Barrier(2)

    def slow(**_: Any) -> None:
        time.sleep(0.5)  # answers nothing: the call goes on, only later

    on_run_task(clients, slow)
    responses: list[dict[str, Any]] = []

    def invocation() -> None:
        gate.wait()
        responses.append(invoke(RUN, event))

    threads = [threading.Thread(target=invocation) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN exactly one task started; the other invocation was told to retry (busy claim) or, if
    # the machine delayed it past the first one's end, found the request done
    assert recorder.count("RunTask") == 1
    assert len(running(clients)) == 1
    assert sorted(len(r["batchItemFailures"]) for r in responses) in ([0, 1], [0, 0])
    _, again = queue.deliver()
    assert again["batchItemFailures"] == []
    assert_ran_once_and_recorded(queue, clients)


@pytest.mark.usefixtures("atomic_conditional_writes")
def test_a_second_invocation_arriving_while_the_first_is_inside_run_task_starts_nothing(
    queue: Queue, clients: Clients, recorder: CallRecorder
) -> None:
    # GIVEN the first invocation is inside RunTask (held there until the second one is done)
    message = queue.send({"job": "render"})
    event = queue.pump.receive()
    inside, second_done = threading.Event(), threading.Event()

    def hold(**_: Any) -> None:
        inside.set()
        second_done.wait(timeout=30)  # answers nothing: the call goes on once released

    on_run_task(clients, hold)
    first: list[dict[str, Any]] = []
    thread = threading.Thread(target=lambda: first.append(invoke(RUN, event)))
    thread.start()
    assert inside.wait(timeout=30)
    # WHEN a second invocation processes the same message in another thread meanwhile
    try:
        second = invoke(RUN, event)
    finally:
        second_done.set()
        thread.join()
    # THEN the second is told to retry (the claim is busy) and exactly one task started
    assert failed_ids(second) == [message]
    assert first[0]["batchItemFailures"] == []
    assert recorder.count("RunTask") == 1
    _, again = queue.deliver()  # SQS delivers the retried one again: a duplicate, deleted
    assert again["batchItemFailures"] == []
    assert_ran_once_and_recorded(queue, clients)


# --- the last delivery ------------------------------------------------------------------------


def test_a_message_failing_transiently_until_its_last_delivery_goes_to_the_dlq_with_its_reason(
    queue: Queue, clients: Clients, faults: Faults
) -> None:
    # GIVEN RunTask throttled on every delivery (the queue's maxReceiveCount is 3)
    message = queue.send({"job": "render"})
    faults.fail("RunTask", code="ThrottlingException")
    # WHEN it is delivered three times
    assert [failed_ids(queue.deliver()[1]) for _ in range(2)] == [[message], [message]]
    _, last = queue.deliver()
    # THEN on the last delivery ecspilot moves it to the DLQ itself, saying why and that it was
    # transient (SQS's redrive would have moved it with no reason)
    assert last["batchItemFailures"] == []
    [dead] = queue.dead_letters()
    attributes = dead["MessageAttributes"]
    assert attributes["ecspilot_kind"]["StringValue"] == "transient"
    assert attributes["ecspilot_reason"]["StringValue"].startswith("gave up after 3 deliveries")
    assert "ThrottlingException" in attributes["ecspilot_reason"]["StringValue"]
    assert running(clients) == []


def run_record_write(params: Mapping[str, Any]) -> bool:
    """The write of a recovered task's run record (``jobs.records.record_recovered``)."""
    return str(params.get("Key", {}).get("pk", {}).get("S", "")).startswith("JOB#") and (
        params.get("ConditionExpression") == "attribute_not_exists(pk)"
    )


def test_a_started_run_still_unrecorded_on_its_last_delivery_is_requeued_not_dead_lettered(
    queue: Queue, clients: Clients, faults: Faults, recorder: CallRecorder
) -> None:
    # GIVEN a message whose task starts but whose run record cannot be written, three times
    queue.send({"job": "render", "overrides": {"command": ["render", "7"]}})
    batch = faults.fail("BatchWriteItem", service="dynamodb", code="InternalServerError")
    batched = faults.fail("TransactWriteItems", service="dynamodb", code="InternalServerError")
    single = faults.fail("PutItem", service="dynamodb", code="InternalServerError")  # the retries' writes
    recovered = faults.fail(  # a run record only where missing
        "UpdateItem", service="dynamodb", code="InternalServerError", when=run_record_write
    )
    with faults.active(batch, batched, single, recovered):
        for _ in range(3):
            queue.deliver()
    # THEN it was never dead-lettered: a copy keyed as the original waits in the queue
    assert queue.dead_letters() == []
    [task] = running(clients)
    assert queue.waiting() == 1
    # WHEN the copy is delivered with the table back
    recorder.reset()
    _, response = queue.deliver()
    # THEN it completes the same run: no second task, the run recorded, the claim DONE
    assert response["batchItemFailures"] == []
    assert recorder.count("RunTask") == 0
    assert_ran_once_and_recorded(queue, clients)
    assert running(clients)[0]["taskArn"] == task["taskArn"]


def test_a_message_whose_earlier_attempt_started_its_task_and_lost_its_claim_is_requeued_not_dead_lettered(
    queue: Queue, clients: Clients, faults: Faults
) -> None:
    # GIVEN the first attempt starts the task, then the table refuses every write after the claim,
    # so the claim stays STARTING (held until that invocation's time is up) and later deliveries
    # are told "busy" without knowing the task started
    queue.send({"job": "render"})
    faults.fail(
        "UpdateItem", service="dynamodb", code="InternalServerError", when=lambda p: ":status" in str(p)
    )
    faults.fail("BatchWriteItem", service="dynamodb", code="InternalServerError")
    faults.fail("TransactWriteItems", service="dynamodb", code="InternalServerError")
    for _ in range(3):
        queue.deliver()
    # THEN on the last delivery ECS is asked (the run's tag): the task started, so the message is
    # requeued under its own request key instead of being dead-lettered
    assert queue.dead_letters() == []
    assert len(running(clients)) == 1
    assert queue.waiting() == 1


def test_a_claim_is_never_done_before_its_run_is_recorded(
    queue: Queue, clients: Clients, faults: Faults, recorder: CallRecorder
) -> None:
    # GIVEN an invocation (1 s left) whose run record cannot be written and whose claim cannot
    # be released (RETRY fails), though marking it DONE would work
    message = queue.send({"job": "render"})
    event = queue.pump.receive()

    def releasing(params: Mapping[str, Any]) -> bool:
        return params.get("ExpressionAttributeValues", {}).get(":status", {}).get("S") == "RETRY"

    record = faults.fail("BatchWriteItem", service="dynamodb", code="InternalServerError")
    batched = faults.fail("TransactWriteItems", service="dynamodb", code="InternalServerError")
    release = faults.fail("UpdateItem", service="dynamodb", code="InternalServerError", when=releasing)
    with faults.active(record, batched, release):
        response = handle_queue_event(event, runtime.current(), ShortContext(millis=1000))
    # THEN the claim is not DONE (a DONE claim would make every retry a duplicate: never recorded)
    assert failed_ids(response) == [message]
    assert [c["status"] for c in claims(clients)] == ["STARTING"]
    # AND once that invocation's time is up, the retry records the run without a second task
    time.sleep(2.1)
    recorder.reset()
    _, again = queue.deliver()
    assert again["batchItemFailures"] == []
    assert recorder.count("RunTask") == 0
    assert_ran_once_and_recorded(queue, clients)


def test_a_started_run_requeued_too_often_is_dead_lettered_with_its_reason_not_looped_forever(
    queue: Queue, clients: Clients, faults: Faults
) -> None:
    # GIVEN a copy already requeued 10 times, and a table that still refuses its run record
    queue.clients.sqs.send_message(
        QueueUrl=queue.url,
        MessageBody=json.dumps({"job": "render", "idempotency_key": "m-1"}),
        MessageAttributes={"ecspilot_requeues": {"DataType": "Number", "StringValue": "10"}},
    )
    faults.fail("BatchWriteItem", service="dynamodb", code="InternalServerError")
    faults.fail("TransactWriteItems", service="dynamodb", code="InternalServerError")
    faults.fail("PutItem", service="dynamodb", code="InternalServerError")
    faults.fail("UpdateItem", service="dynamodb", code="InternalServerError", when=run_record_write)
    for _ in range(3):
        queue.deliver()
    # THEN on its last delivery it goes to the DLQ, saying its task started (redrive is safe)
    [reason] = reasons(queue).values()
    assert reason.startswith("its 1 task(s) started; requeued 10 times, gave up after 3 deliveries")
    assert len(running(clients)) == 1
    assert queue.waiting() == 0


def test_a_batch_records_its_runs_in_one_transaction_and_a_failed_one_falls_back_per_run(
    queue: Queue, clients: Clients, faults: Faults, recorder: CallRecorder
) -> None:
    # GIVEN two messages in one batch (the job's max_running is 3)
    for n in range(2):
        queue.send({"job": "render", "overrides": {"command": ["render", str(n)]}})
    # WHEN they are delivered
    recorder.reset()
    _, response = queue.deliver()
    # THEN the runs and their DONE claims are written in one TransactWriteItems, nothing per message
    assert response["batchItemFailures"] == []
    assert recorder.count("TransactWriteItems") == 1
    assert recorder.count("BatchWriteItem") == 0
    assert recorder.count("UpdateItem") == 2  # the claims only
    assert sorted(c["status"] for c in claims(clients)) == ["DONE"] * 2
    assert len(run_records(clients)) == 2
    # WHEN the transaction of the next batch is cancelled (a write conflict, a throttle)
    for n in range(2, 3):
        queue.send({"job": "render", "overrides": {"command": ["render", str(n)]}})
    cancelled = faults.fail("TransactWriteItems", service="dynamodb", code="TransactionCanceledException")
    with faults.active(cancelled):
        _, fallback = queue.deliver()
    # THEN each run is recorded on its own, and no message is retried
    assert cancelled.fired >= 1
    assert fallback["batchItemFailures"] == []
    assert sorted(c["status"] for c in claims(clients)) == ["DONE"] * 3
    assert len(run_records(clients)) == 3
