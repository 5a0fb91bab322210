"""Queue messages, the pure part: each message's outcome, what makes two deliveries the same
request, the overrides a message asks for, and the attributes ecspilot sets on the messages it
moves. No AWS here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import field
from typing import Any, Literal, TypeVar

from ecspilot.queue.request import QueueRequest
from ecspilot.records import dataclass

Outcome = Literal["started", "duplicate", "dead-lettered", "retry", "requeued", "would-run"]
REASON_ATTRIBUTE = "ecspilot_reason"
REQUEUES_ATTRIBUTE = "ecspilot_requeues"
# A started run whose recording keeps failing is requeued this many times (each after
# QueueMaxReceiveCount deliveries), then dead-lettered with its reason: bounded, never silent.
MAX_REQUEUES = 10
OUTCOME_METRICS = {
    "started": "QueueMessagesStarted",
    "duplicate": "QueueMessagesDuplicate",
    "retry": "QueueMessagesRetried",
}
# What a follower (a message with the same request key as an earlier one in its batch) becomes.
DONE_OUTCOMES = ("started", "duplicate", "would-run")

T = TypeVar("T")


@dataclass
class MessageOutcome:
    """What became of one message of a batch (``retry`` until something better is known)."""

    message_id: str
    outcome: Outcome = "retry"
    job: str = ""
    reason: str = ""
    task_arns: list[str] = field(default_factory=list)
    request_key: str = ""


def request_key(request: QueueRequest, message_id: str) -> str:
    """What makes two deliveries the same request: the body's idempotency key, else the message id."""
    return f"queue:{request.job.name}:{request.idempotency_key or message_id}"


def requeues(record: Mapping[str, Any]) -> int:
    """How many times this message was requeued (its ``ecspilot_requeues`` attribute; Lambda
    spells the value ``stringValue``, boto3 ``StringValue``)."""
    attribute = dict(dict(record.get("messageAttributes") or {}).get(REQUEUES_ATTRIBUTE) or {})
    value = str(attribute.get("stringValue", attribute.get("StringValue", "0")))
    return int(value) if value.isdigit() else 0


def receives(record: Mapping[str, Any]) -> int:
    """How many times SQS delivered this message (``ApproximateReceiveCount``)."""
    return int(dict(record.get("attributes") or {}).get("ApproximateReceiveCount", "1"))


def first_of_each_request(
    items: Sequence[tuple[T, MessageOutcome]],
) -> tuple[list[tuple[T, MessageOutcome]], list[tuple[MessageOutcome, MessageOutcome]]]:
    """Messages of one batch with the same request key: the first runs, the others follow it.
    Returns the items to run and the (follower, first) pairs."""
    firsts: dict[str, MessageOutcome] = {}
    unique: list[tuple[T, MessageOutcome]] = []
    followers: list[tuple[MessageOutcome, MessageOutcome]] = []
    for item, outcome in items:
        if outcome.request_key in firsts:
            followers.append((outcome, firsts[outcome.request_key]))
        else:
            firsts[outcome.request_key] = outcome
            unique.append((item, outcome))
    return unique, followers


def follow(outcome: MessageOutcome, first: MessageOutcome) -> None:
    """A follower ends as its first: done when the first is done, else retried with it."""
    outcome.outcome = "duplicate" if first.outcome in DONE_OUTCOMES else "retry"
    outcome.reason = f"same request as message {first.message_id} ({first.outcome})"


def message_overrides(request: QueueRequest, task_definition: Mapping[str, Any]) -> dict[str, Any] | None:
    """The run's overrides (the config's ``overrides`` shape) from a message: on the container it
    names, else the job's first overridden container, else the task definition's first."""
    if not request.has_overrides:
        return None
    container = request.container or next(iter(request.job.overrides.containers), None)
    if container is None:
        container = str(task_definition["containerDefinitions"][0]["name"])
    values: dict[str, Any] = {}
    if request.command is not None:
        values["command"] = list(request.command)
    if request.environment:
        values["environment"] = dict(request.environment)
    for key in ("cpu", "memory"):
        if getattr(request, key) is not None:
            values[key] = getattr(request, key)
    return {"containers": {container: values}}
