"""The fault fixture itself: each mode fails the way it says, and only where it says."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from ecspilot.aws.clients import Clients
from tests.faults import Faults


def _queue(clients: Clients) -> str:
    return clients.sqs.create_queue(QueueName="faults-test")["QueueUrl"]


def test_an_error_rule_fails_the_call_without_applying_it(clients: Clients, faults: Faults) -> None:
    url = _queue(clients)
    rule = faults.fail("SendMessage", code="ThrottlingException", times=1)
    with pytest.raises(ClientError) as info:
        clients.sqs.send_message(QueueUrl=url, MessageBody="x")
    assert info.value.response["Error"]["Code"] == "ThrottlingException"
    assert rule.fired == 1
    clients.sqs.send_message(QueueUrl=url, MessageBody="y")  # times=1: the fault passed
    bodies = [
        m["Body"] for m in clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    ]
    assert bodies == ["y"]


def test_a_network_rule_raises_a_connection_error(clients: Clients, faults: Faults) -> None:
    faults.fail("ListQueues", "network")
    with pytest.raises(EndpointConnectionError):
        clients.sqs.list_queues()


def test_a_lost_reply_is_applied_and_retried_by_botocore(clients: Clients, faults: Faults) -> None:
    url = _queue(clients)
    rule = faults.fail("SendMessage", "lost-reply", times=1)
    clients.sqs.send_message(QueueUrl=url, MessageBody="once")
    assert rule.fired == 1
    got = clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == ["once", "once"]  # applied, lost, sent again


def test_rules_match_service_and_parameters(clients: Clients, faults: Faults) -> None:
    _queue(clients)
    faults.fail("*", service="dynamodb", code="InternalServerError")
    faults.fail("GetQueueUrl", when=lambda p: p.get("QueueName") == "other")
    assert clients.sqs.get_queue_url(QueueName="faults-test")["QueueUrl"]
    with pytest.raises(ClientError):
        clients.sqs.get_queue_url(QueueName="other")
    with pytest.raises(ClientError) as info:
        clients.dynamodb.list_tables()
    assert info.value.response["Error"]["Code"] == "InternalServerError"


def test_a_rate_rule_is_repeatable_for_a_seed(clients: Clients, faults: Faults) -> None:
    url = _queue(clients)

    def run(seed: int) -> list[bool]:
        faults.clear()
        faults.fail("GetQueueAttributes", rate=0.3, seed=seed)
        out = []
        for _ in range(40):
            try:
                clients.sqs.get_queue_attributes(QueueUrl=url)
                out.append(True)
            except ClientError:
                out.append(False)
        return out

    first = run(7)
    assert first == run(7)
    assert 0 < first.count(False) < 40


def test_a_throttle_is_not_applied_and_botocore_retries_it(clients: Clients, faults: Faults) -> None:
    url = _queue(clients)
    rule = faults.fail("SendMessage", "throttle", times=2)
    clients.sqs.send_message(QueueUrl=url, MessageBody="once")
    assert rule.fired == 2
    got = clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == ["once"]  # two throttles, one delivery


def test_a_bucket_rule_throttles_what_finds_no_token_without_applying_it(
    clients: Clients, faults: Faults
) -> None:
    # GIVEN ECS-like throttling on SendMessage: 2 tokens, refilled far too slowly to matter
    url = _queue(clients)
    rule = faults.fail("SendMessage", "bucket", burst=2, per_second=0.001)
    once = clients.single_attempt("sqs")  # no botocore retry: each throttle is seen
    # WHEN three messages are sent at once
    once.send_message(QueueUrl=url, MessageBody="a")
    once.send_message(QueueUrl=url, MessageBody="b")
    with pytest.raises(ClientError) as info:
        once.send_message(QueueUrl=url, MessageBody="c")
    # THEN the third was throttled and never reached moto
    assert info.value.response["Error"]["Code"] == "ThrottlingException"
    assert rule.fired == 1
    got = clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in got) == ["a", "b"]
