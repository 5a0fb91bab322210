"""Pure parts of a queue batch: request keys, requeue counts, duplicates within a batch, and the
overrides a message asks for. Table-tested, no AWS."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecspilot.domain.config import parse_config
from ecspilot.queue.outcomes import (
    MessageOutcome,
    first_of_each_request,
    follow,
    message_overrides,
    receives,
    request_key,
    requeues,
)
from ecspilot.queue.request import QueueRequest, parse_request

TASK_DEFINITION = {"containerDefinitions": [{"name": "app"}, {"name": "sidecar"}]}


def request(body: dict[str, Any], **job: Any) -> QueueRequest:
    config = parse_config(
        {
            "version": 1,
            "jobs": [
                {
                    "name": "render",
                    "cluster": "farm",
                    "task_definition": "render",
                    "queue": {"allow": ["command", "environment", "cpu", "memory"]},
                    **job,
                }
            ],
        }
    )
    return parse_request(json.dumps({"job": "render", **body}), config)


@pytest.mark.parametrize(
    ("body", "message_id", "expected"),
    [
        ({}, "m-1", "queue:render:m-1"),
        ({"idempotency_key": "nightly-42"}, "m-1", "queue:render:nightly-42"),
        ({"idempotency_key": "nightly-42"}, "m-2", "queue:render:nightly-42"),
    ],
)
def test_a_request_key_is_the_idempotency_key_else_the_message_id(
    body: dict[str, Any], message_id: str, expected: str
) -> None:
    assert request_key(request(body), message_id) == expected


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({}, 0),
        ({"messageAttributes": {"ecspilot_requeues": {"stringValue": "3"}}}, 3),  # as Lambda spells it
        ({"messageAttributes": {"ecspilot_requeues": {"StringValue": "4"}}}, 4),  # as boto3 does
        ({"messageAttributes": {"ecspilot_requeues": {"stringValue": "x"}}}, 0),
        ({"messageAttributes": None}, 0),
    ],
)
def test_the_requeue_count_is_read_from_the_message_attribute(record: dict[str, Any], expected: int) -> None:
    assert requeues(record) == expected


@pytest.mark.parametrize(
    ("record", "expected"), [({}, 1), ({"attributes": {"ApproximateReceiveCount": "5"}}, 5)]
)
def test_the_receive_count_defaults_to_one(record: dict[str, Any], expected: int) -> None:
    assert receives(record) == expected


def test_the_first_message_of_a_request_runs_and_the_others_follow_it() -> None:
    a, b, c = (MessageOutcome(m, request_key=k) for m, k in [("m1", "k1"), ("m2", "k2"), ("m3", "k1")])
    unique, followers = first_of_each_request([("r1", a), ("r2", b), ("r3", c)])
    assert unique == [("r1", a), ("r2", b)]
    assert followers == [(c, a)]


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        ("started", "duplicate"),
        ("duplicate", "duplicate"),
        ("would-run", "duplicate"),
        ("retry", "retry"),
        ("dead-lettered", "retry"),
        ("requeued", "retry"),
    ],
)
def test_a_follower_ends_done_only_when_its_first_is_done(first: Any, expected: str) -> None:
    follower = MessageOutcome("m2")
    follow(follower, MessageOutcome("m1", outcome=first))
    assert follower.outcome == expected
    assert follower.reason == f"same request as message m1 ({first})"


@pytest.mark.parametrize(
    ("body", "job", "expected"),
    [
        ({}, {}, None),
        ({"overrides": {"command": ["go"]}}, {}, {"containers": {"app": {"command": ["go"]}}}),
        (
            {"overrides": {"command": ["go"]}},
            {"overrides": {"containers": {"sidecar": {"command": ["x"]}}}},
            {"containers": {"sidecar": {"command": ["go"]}}},
        ),
        (
            {"overrides": {"container": "sidecar", "environment": {"A": "1"}, "cpu": 256}},
            {"queue": {"allow": ["environment", "cpu", "container"], "max_cpu": 512}},
            {"containers": {"sidecar": {"environment": {"A": "1"}, "cpu": 256}}},
        ),
    ],
    ids=["no overrides", "task definition's first", "job's overridden container", "named container"],
)
def test_a_messages_overrides_land_on_the_right_container(
    body: dict[str, Any], job: dict[str, Any], expected: dict[str, Any] | None
) -> None:
    assert message_overrides(request(body, **job), TASK_DEFINITION) == expected
