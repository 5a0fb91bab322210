"""Pushes that outlive one invocation: what cannot finish now continues through an SQS queue.

Before the deploy step, the plan's time is estimated at the paced rates (:func:`plan_seconds`,
pure): the services that fit the invocation's remaining time (less a margin) are deployed now,
the rest is sent as one :class:`ContinuationItem` to the continuation queue, which the same
function consumes. During the run the limiter refuses any call whose token would come after the
deadline (:class:`~ecspilot.errors.BudgetExhaustedError`): those services join the continuation
too. Nothing sleeps or times out mid-way.

A continuation runs the same deploy core on the same push, restricted to its services, so it is
idempotent and keeps the stale guard: a service already on the digest is ``unchanged`` (a
redelivered item changes nothing; the identical revision is reused, never registered twice), and
a service a newer push claimed meanwhile is ``stale`` (the per-service claim in the state table).
Every record of one push carries the push's ``rollout_id`` (its first event's id): one logical
rollout across invocations.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.limiter import Rate
from ecspilot.domain.images import DIGEST_RE, ImagePush
from ecspilot.errors import AwsError, InvalidMessageError
from ecspilot.obs import count, logger
from ecspilot.records import dataclass

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

KIND = "ecspilot.deploy-continuation"
REGISTER, UPDATE = "RegisterTaskDefinition", "UpdateService"


# --- the estimate (pure) ----------------------------------------------------------------------


def plan_seconds(
    registrations: int, updates: int, rates: Mapping[str, Rate], available: Mapping[str, float]
) -> float:
    """The paced time of ``registrations`` and ``updates`` from buckets holding ``available``
    tokens now: the runbook pipelines them (each service is updated once its revision exists),
    so the slower of the two sets the time."""
    reg, upd = rates.get(REGISTER), rates.get(UPDATE)
    register_time = reg.seconds_for(registrations, available.get(REGISTER, reg.burst)) if reg else 0.0
    update_time = upd.seconds_for(updates, available.get(UPDATE, upd.burst)) if upd else 0.0
    return max(register_time, update_time)


def fitting(
    groups: Sequence[Any],
    budget: float,
    rates: Mapping[str, Rate],
    available: Mapping[str, float],
) -> int:
    """How many of the services (one group key each, grouped in order) fit ``budget`` seconds:
    the longest prefix whose distinct registrations and updates take no longer. At least one
    when there is any budget, so every invocation makes progress."""

    def cost(n: int) -> float:
        return plan_seconds(len(set(groups[:n])), n, rates, available)

    if budget <= 0 or not groups:
        return 0
    low, high = 1, len(groups)  # cost is monotonic in n: binary search the last n within budget
    while low < high:
        mid = (low + high + 1) // 2
        if cost(mid) <= budget:
            low = mid
        else:
            high = mid - 1
    return low


@dataclass
class Budget:
    """The invocation's time: ``remaining`` seconds (the Lambda context's) less ``margin``."""

    remaining: Callable[[], float]
    margin: float = 20.0

    def seconds(self) -> float:
        return self.remaining() - self.margin

    @classmethod
    def of_context(cls, context: Any, margin: float) -> Budget | None:
        """From a Lambda context (None without one: no budget, nothing continues)."""
        get = getattr(context, "get_remaining_time_in_millis", None)
        if get is None:
            return None
        return cls(lambda: float(get()) / 1000.0, margin)


# --- the work item ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ContinuationItem:
    """The rest of one push's rollout: its services (config names) still to deploy."""

    push: ImagePush
    services: tuple[str, ...]
    rollout_id: str
    part: int = 1

    def body(self) -> str:
        p = self.push
        return json.dumps(
            {
                "kind": KIND,
                "rollout_id": self.rollout_id,
                "part": self.part,
                "services": list(self.services),
                "push": {
                    "account": p.account,
                    "region": p.region,
                    "repository": p.repository,
                    "tag": p.tag,
                    "digest": p.digest,
                    "event_id": p.event_id,
                    "time": p.time.isoformat() if p.time else None,
                },
            },
            sort_keys=True,
        )

    @classmethod
    def parse(cls, body: str) -> ContinuationItem:
        try:
            raw = json.loads(body)
        except ValueError as exc:
            raise InvalidMessageError(f"not a deploy continuation: {exc}") from exc
        if not isinstance(raw, dict) or raw.get("kind") != KIND:
            raise InvalidMessageError(f"not a {KIND} message")
        try:
            p, rollout_id = _checked(raw)
            push = ImagePush(
                account=str(p["account"]),
                region=str(p["region"]),
                repository=str(p["repository"]),
                tag=str(p["tag"]),
                digest=str(p["digest"]),
                event_id=str(p.get("event_id") or ""),
                time=datetime.fromisoformat(p["time"]) if p.get("time") else None,
            )
            services = tuple(str(s) for s in raw["services"])
            return cls(push, services, rollout_id, int(raw.get("part", 1)))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidMessageError(f"not a deploy continuation: {exc}") from exc

    def rest(self, services: Sequence[str]) -> ContinuationItem:
        """The next part: ``services`` of the same rollout."""
        return ContinuationItem(self.push, tuple(services), self.rollout_id, self.part + 1)


def _checked(raw: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The message's push and rollout id, once their shapes are right (issue 24: a digest is
    ``sha256:`` and 64 lowercase hex characters, never a tag); raises ValueError or TypeError."""
    p = raw["push"]
    if not isinstance(p, dict) or not isinstance(raw["services"], list):
        raise TypeError("push must be an object and services a list")
    if not DIGEST_RE.fullmatch(str(p["digest"])):
        raise ValueError("the digest is not sha256: and 64 lowercase hex characters")
    rollout_id = str(raw["rollout_id"])
    if not 0 < len(rollout_id) <= 256 or not rollout_id.isprintable():
        raise ValueError("rollout_id must be 1 to 256 printable characters")
    return p, rollout_id


def first_part(push: ImagePush, services: Sequence[str]) -> ContinuationItem:
    """The continuation of a push's first invocation (the push's event id is the rollout id)."""
    rollout_id = push.event_id or f"{push.repository}@{push.digest}#{int(time.time())}"
    return ContinuationItem(push, tuple(services), rollout_id, part=2)


@dataclass(frozen=True)
class Continuation:
    """How an invocation continues: the queue, its time budget, and the item it runs (None: a push)."""

    queue_url: str
    budget: Budget | None
    item: ContinuationItem | None = None


def enqueue(sqs: SQSClient, queue_url: str, item: ContinuationItem) -> str:
    """Send ``item`` to the continuation queue; raises :class:`AwsError` (the invocation then
    fails, and its retry starts over: idempotent)."""
    try:
        resp = sqs.send_message(QueueUrl=queue_url, MessageBody=item.body())
    except (ClientError, BotoCoreError) as exc:
        raise AwsError(f"could not send the deploy continuation: {exc}", rollout_id=item.rollout_id) from exc
    logger.info(
        "rollout continues in another invocation",
        extra={"rollout_id": item.rollout_id, "part": item.part, "services": len(item.services)},
    )
    count("DeployContinuations")
    return str(resp.get("MessageId", ""))
