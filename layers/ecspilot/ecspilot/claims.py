"""Request claims: a scheduled firing or a queue message starts its tasks once.

A run that must not start twice claims its request in the state table with a
conditional write before RunTask, and completes the claim after. RunTask's
``clientToken`` (derived from the same key) deduplicates at ECS for a short
while; the claim holds for the table's retention.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.config import JobConfig
from ecspilot.errors import JobError, job_call_error
from ecspilot.history import job_pk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CLAIM_STALE_SECONDS = 900  # a claim older than this (several Lambda timeouts) was abandoned


class RequestClaim:
    """Claims a request (a scheduled firing, a queue message) in the state table, so that a
    retried request never starts a second set of tasks. RunTask's ``clientToken`` does the same
    at ECS for a short while; this guard holds for the table's retention.

    Item: ``pk = JOB#<job>``, ``sk = REQUEST#<key>``; ``status`` STARTING while a run starts it,
    DONE once its tasks started, RETRY after a failure (a retry may claim it again, and starts
    only the tasks still missing: ``task_arns`` lists those already started).
    """

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

    def claim(self) -> tuple[Literal["claimed", "done", "busy"], list[str]]:
        """Claim the request; return the verdict and the task ARNs earlier attempts started."""
        if not self.client or not self.table:
            return "claimed", []
        now = int(time.time())
        try:
            resp = self.client.update_item(
                TableName=self.table,
                Key=self.key,
                UpdateExpression="SET #s = :starting, claimed_at = :now, #t = :type, job = :job",
                ConditionExpression="attribute_not_exists(pk) OR #s = :retry OR claimed_at < :stale",
                ExpressionAttributeNames={"#s": "status", "#t": "type"},
                ExpressionAttributeValues={
                    ":starting": {"S": "STARTING"},
                    ":retry": {"S": "RETRY"},
                    ":now": {"N": str(now)},
                    ":stale": {"N": str(now - CLAIM_STALE_SECONDS)},
                    ":type": {"S": "request"},
                    ":job": {"S": self.job.name},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise self._error("claiming the request", exc) from exc
            item = self._get()
            status = item.get("status", {}).get("S", "")
            return ("done" if status == "DONE" else "busy"), _arns(item)
        except BotoCoreError as exc:
            raise self._error("claiming the request", exc) from exc
        return "claimed", _arns(resp.get("Attributes", {}))

    def _get(self) -> dict[str, Any]:
        if not self.client or not self.table:
            return {}
        try:
            resp = self.client.get_item(TableName=self.table, Key=self.key, ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise self._error("reading the request claim", exc) from exc
        return dict(resp.get("Item", {}))

    def finish(self, status: Literal["DONE", "RETRY"], task_arns: Sequence[str]) -> None:
        """Mark the claim DONE (or RETRY), adding the task ARNs this attempt started."""
        if not self.client or not self.table:
            return
        try:
            self.client.update_item(
                TableName=self.table,
                Key=self.key,
                UpdateExpression="SET #s = :status, task_arns = list_append(if_not_exists(task_arns, :empty), "
                ":arns), expires_at = :expires",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":status": {"S": status},
                    ":arns": {"L": [{"S": a} for a in task_arns]},
                    ":empty": {"L": []},
                    ":expires": {"N": str(int(time.time()) + self.retention_days * 86400)},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error("completing the request claim", exc) from exc


def _arns(item: Mapping[str, Any]) -> list[str]:
    return [str(v.get("S", "")) for v in item.get("task_arns", {}).get("L", [])]
