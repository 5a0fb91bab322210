"""The queue's last fault windows (issue 23): a message whose task look-up fails is requeued
(its claim and key kept), never dead-lettered, and its run gets its record; invalid Unicode
anywhere in a body is refused with a reason; no-double-run rests on ecspilot's claim plus
RunTask's ``clientToken`` (the same token on every attempt of a request).
"""

from __future__ import annotations

import json

import pytest

from ecspilot.aws.clients import Clients
from ecspilot.domain.config import parse_config
from ecspilot.errors import InvalidMessageError
from ecspilot.queue.request import parse_request
from ecspilot_dev.local import CallRecorder
from tests.conftest import TABLE
from tests.faults import Faults
from tests.functional.test_queue_faults import assert_ran_once_and_recorded, claims, run_records
from tests.functional.test_run_queued_jobs import Queue, failed_ids, queue, render_job, running

__all__ = ["queue"]


@pytest.fixture(autouse=True)
def _frozen(frozen_tasks: None) -> None:
    """Tasks stay RUNNING once started."""


def test_a_task_lookup_failing_on_the_last_delivery_requeues_the_message_never_dead_letters_it(
    queue: Queue, clients: Clients, faults: Faults
) -> None:
    # GIVEN the first attempt starts the task, then every write after the claim fails (the claim
    # stays STARTING: later deliveries are "busy"), and on the last delivery ECS's task look-up
    # (ListTasks by the run's tag) fails beyond retries too
    queue.send({"job": "render"})
    faults.fail(
        "UpdateItem", service="dynamodb", code="InternalServerError", when=lambda p: ":status" in str(p)
    )
    # (the batch's records and DONE claims go in one TransactWriteItems, then one write per run)
    faults.fail("TransactWriteItems", service="dynamodb", code="InternalServerError")
    faults.fail("BatchWriteItem", service="dynamodb", code="InternalServerError")
    queue.deliver()
    faults.fail("ListTasks", code="ThrottlingException")
    for _ in range(2):
        queue.deliver()
    faults.clear()
    # THEN it is not dead-lettered: ECS could not say whether it started, so it is requeued
    assert queue.dead_letters() == []
    assert len(running(clients)) == 1
    assert queue.waiting() == 1


def test_a_retry_whose_task_lookup_fails_releases_the_claim_and_the_next_delivery_records_the_run(
    queue: Queue, clients: Clients, faults: Faults, recorder: CallRecorder
) -> None:
    # GIVEN a first attempt that started the task but could not record it (claim RETRY)
    message = queue.send({"job": "render"})
    # (neither the batch's TransactWriteItems nor the per-run fallback's BatchWriteItem is written)
    batched = faults.fail("TransactWriteItems", service="dynamodb", code="InternalServerError")
    outage = faults.fail("BatchWriteItem", service="dynamodb", code="InternalServerError")
    with faults.active(batched, outage):
        assert failed_ids(queue.deliver()[1]) == [message]
    [task] = running(clients)
    # WHEN the retry takes the claim again and its task look-up fails beyond retries
    # (its STOPPED half: the batch's count of running tasks, RUNNING only, still works)
    lookup = faults.fail(
        "ListTasks", code="ThrottlingException", when=lambda p: p.get("desiredStatus") == "STOPPED"
    )
    with faults.active(lookup):
        assert failed_ids(queue.deliver()[1]) == [message]
    # THEN the claim was released at once (RETRY, its task kept), not held until the invocation's
    # time is up: the next delivery finds the task, starts nothing and records the run
    [claim] = claims(clients)
    assert (claim["status"], claim["task_arns"]) == ("RETRY", [task["taskArn"]])
    recorder.reset()
    _, response = queue.deliver()
    assert response["batchItemFailures"] == []
    assert recorder.count("RunTask") == 0
    assert_ran_once_and_recorded(queue, clients)


@pytest.mark.parametrize(
    "body",
    [
        '{"job": "render", "overrides": {"command": ["render", "\\udc80"]}}',
        '{"job": "render", "overrides": {"environment": {"LEVEL": "\\ud800x"}}}',
        '{"job": "render", "idempotency_key": "a", "\\udfff": 1}',
        '{"job": "rend\\udc80er"}',
    ],
)
def test_invalid_unicode_anywhere_in_a_body_is_dead_lettered_with_a_reason_and_never_run(
    queue: Queue, clients: Clients, body: str
) -> None:
    queue.send(body)
    _, response = queue.deliver()
    assert response["batchItemFailures"] == []
    assert running(clients) == []
    [dead] = queue.dead_letters()
    reason = dead["MessageAttributes"]["ecspilot_reason"]["StringValue"]
    assert "invalid Unicode" in reason


def test_a_valid_non_ascii_body_is_still_accepted() -> None:
    config = parse_config(
        {
            "version": 1,
            "jobs": [render_job(max_running=3) | {"queue": {"allow": ["command", "environment"]}}],
        }
    )
    request = parse_request(json.dumps({"job": "render", "overrides": {"command": ["é", "\u2603"]}}), config)
    assert list(request.command or ()) == ["é", "\u2603"]
    with pytest.raises(InvalidMessageError, match="invalid Unicode"):
        parse_request('{"job": "render", "overrides": {"command": ["\\udc80"]}}', config)


def test_no_double_run_rests_on_the_claim_and_on_one_client_token_per_request(
    queue: Queue, clients: Clients, recorder: CallRecorder
) -> None:
    # GIVEN a message run once
    message = queue.send({"job": "render", "idempotency_key": "nightly-7"})
    queue.deliver()
    [first] = recorder.params("RunTask")
    assert first["clientToken"]
    # WHEN a second message with the same key arrives: the claim (DONE) starts nothing
    recorder.reset()
    queue.send({"job": "render", "idempotency_key": "nightly-7"})
    _, response = queue.deliver()
    assert response["batchItemFailures"] == []
    assert recorder.count("RunTask") == 0
    # AND when the claim itself is gone (the table lost it), the next attempt's RunTask carries
    # the same clientToken: ECS answers it with the first call's tasks instead of starting more
    clients.dynamodb.delete_item(
        TableName=TABLE, Key={"pk": {"S": "JOB#render"}, "sk": {"S": "REQUEST#queue:render:nightly-7"}}
    )
    recorder.reset()
    queue.send({"job": "render", "idempotency_key": "nightly-7"})
    queue.deliver()
    [second] = recorder.params("RunTask")
    assert second["clientToken"] == first["clientToken"]
    assert message
    assert run_records(clients)
