"""Request claims: a scheduled firing or a queue message starts its tasks once, and is recorded.

A run that must not start twice claims its request in the state table with a conditional write
before RunTask, and completes the claim once its run records are written. RunTask's
``clientToken`` (derived from the same key) deduplicates at ECS for a short while; the claim
holds for the table's retention.

Why not Powertools' idempotency utility (evaluated for issue 9)? It is the same idea (a DynamoDB
record, INPROGRESS until the function returns, an in-progress expiry taken from the Lambda
context), and we keep that expiry semantic here. But it treats a call as all or nothing: when the
function raises, it *deletes* the record, so a retry runs the whole function again. A job run is
not all or nothing: RunTask may start 3 of 5 tasks (capacity), or start them all and then fail to
write the run records or to complete the claim. A retry must then start only the missing tasks
and still record the run, which needs the task ARNs of earlier attempts to survive a failed
attempt; Powertools keeps nothing of a failed call (its record holds only the final return value).
It would also cost its import (about 175 ms of cold start, measured) for one conditional
write. So ``RequestClaim`` stays, with Powertools' in-progress rule: a claim left STARTING by a
crashed or timed-out invocation expires when that invocation's time is up
(``in_progress_until`` = now + the Lambda context's remaining time), not after a fixed delay.

Item: ``pk = JOB#<job>``, ``sk = REQUEST#<key>``; ``status`` STARTING while an invocation holds
it (until ``in_progress_until``), DONE once its tasks started *and* their run records were
written, RETRY after a failure (a retry claims it again and starts only the tasks still missing:
``task_arns`` lists those already started). ``started_at`` is set by the first attempt and kept,
so every attempt writes the run records under the same keys.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.history import job_pk
from ecspilot.domain.config import JobConfig
from ecspilot.errors import JobError, error_code, job_call_error
from ecspilot.records import dataclass

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# The longest a Lambda invocation can run: a claim taken without a context (the CLI, a test)
# holds this long, and so does a claim written before ``in_progress_until`` existed.
MAX_IN_PROGRESS_SECONDS = 900

Verdict = Literal["claimed", "done", "busy"]


class HasRemainingTime(Protocol):
    """What a claim needs of the Lambda context (``LambdaContext`` has it)."""

    def get_remaining_time_in_millis(self) -> int: ...


def in_progress_until(context: HasRemainingTime | None, now: float | None = None) -> int:
    """When a claim taken now stops protecting a crashed invocation: the end of the invocation
    (its context's remaining time, as Powertools' idempotency does), else the longest Lambda run."""
    now = time.time() if now is None else now
    if context is None:
        return int(now) + MAX_IN_PROGRESS_SECONDS
    return math.ceil(now + max(0, context.get_remaining_time_in_millis()) / 1000)


@dataclass(frozen=True)
class ClaimState:
    """What claiming a request found: the verdict, the task ARNs earlier attempts wrote down,
    when the first attempt started, and whether an earlier attempt held the claim (it may have
    started tasks it never wrote down)."""

    verdict: Verdict
    task_arns: list[str] = field(default_factory=list)
    started_at: str = ""
    reclaimed: bool = False
    holder_until: int = 0


class RequestClaim:
    """Claims a request (a scheduled firing, a queue message) in the state table; see the module
    docstring. Without a client or table it claims nothing (every verdict is ``claimed``)."""

    def __init__(
        self,
        client: DynamoDBClient | None,
        table: str | None,
        job: JobConfig,
        key: str,
        retention_days: int = 90,
    ) -> None:
        self.client = client
        self.table = table
        self.job = job
        self.retention_days = retention_days
        self.key = {"pk": {"S": job_pk(job.name)}, "sk": {"S": f"REQUEST#{key}"}}

    def _error(self, action: str, exc: ClientError | BotoCoreError) -> JobError:
        return job_call_error(action, exc, job=self.job.name, cluster=self.job.cluster)

    @property
    def enabled(self) -> bool:
        return bool(self.client and self.table)

    def claim(self, until: int, started_at: str) -> ClaimState:
        """Claim the request until ``until`` (epoch seconds); ``started_at`` is kept if an
        earlier attempt set one. Raises a :class:`JobError` (retryable when the table's trouble
        may pass) when the table cannot answer."""
        if not self.client or not self.table:
            return ClaimState("claimed", started_at=started_at)
        now = int(time.time())
        try:
            resp = self.client.update_item(
                TableName=self.table,
                Key=self.key,
                UpdateExpression="SET #s = :starting, claimed_at = :now, in_progress_until = :until, "
                "#t = :type, job = :job, started_at = if_not_exists(started_at, :started_at)",
                ConditionExpression="attribute_not_exists(pk) OR #s = :retry OR (#s = :starting AND "
                "(in_progress_until <= :now OR (attribute_not_exists(in_progress_until) AND claimed_at < :stale)))",
                ExpressionAttributeNames={"#s": "status", "#t": "type"},
                ExpressionAttributeValues={
                    ":starting": {"S": "STARTING"},
                    ":retry": {"S": "RETRY"},
                    ":now": {"N": str(now)},
                    ":until": {"N": str(until)},
                    ":stale": {"N": str(now - MAX_IN_PROGRESS_SECONDS)},
                    ":type": {"S": "request"},
                    ":job": {"S": self.job.name},
                    ":started_at": {"S": started_at},
                },
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise self._error("claiming the request", exc) from exc
            item = self._get()
            status = item.get("status", {}).get("S", "")
            return ClaimState(
                "done" if status == "DONE" else "busy",
                _arns(item),
                item.get("started_at", {}).get("S", started_at),
                holder_until=int(item.get("in_progress_until", {}).get("N", "0")),
            )
        except BotoCoreError as exc:
            raise self._error("claiming the request", exc) from exc
        old = resp.get("Attributes", {})
        return ClaimState(
            "claimed", _arns(old), old.get("started_at", {}).get("S", started_at), reclaimed=bool(old)
        )

    def _get(self) -> dict[str, Any]:
        if not self.client or not self.table:
            return {}
        try:
            resp = self.client.get_item(TableName=self.table, Key=self.key, ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise self._error("reading the request claim", exc) from exc
        return dict(resp.get("Item", {}))

    def finish_update(self, status: Literal["DONE", "RETRY"], task_arns: Sequence[str]) -> dict[str, Any]:
        """The UpdateItem that marks the claim ``status`` (also an ``Update`` of a transaction)."""
        return {
            "TableName": self.table,
            "Key": self.key,
            "UpdateExpression": "SET #s = :status, task_arns = :arns, expires_at = :expires "
            "REMOVE in_progress_until",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {
                ":status": {"S": status},
                ":arns": {"L": [{"S": a} for a in dict.fromkeys(task_arns)]},
                ":expires": {"N": str(int(time.time()) + self.retention_days * 86400)},
            },
        }

    def finish(self, status: Literal["DONE", "RETRY"], task_arns: Sequence[str]) -> None:
        """Mark the claim DONE (or RETRY) with every task ARN the request started so far."""
        if not self.client or not self.table:
            return
        try:
            self.client.update_item(**self.finish_update(status, task_arns))
        except (ClientError, BotoCoreError) as exc:
            raise self._error("completing the request claim", exc) from exc


def _arns(item: Mapping[str, Any]) -> list[str]:
    return [str(v.get("S", "")) for v in item.get("task_arns", {}).get("L", [])]
