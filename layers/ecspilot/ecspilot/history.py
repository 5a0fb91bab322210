"""The state table: deployment records and job runs.

One DynamoDB table, keys ``pk`` (S) and ``sk`` (S), one global secondary index
``gsi1`` (``gsi1pk``, ``gsi1sk``), TTL attribute ``expires_at``.

Access patterns (all served by Query, never Scan):

=================================  =========================================================
pattern                            key condition
=================================  =========================================================
latest deployments of a service    pk = ``SERVICE#<cluster>#<service>``, sk begins ``DEPLOY#``,
                                   newest first
one deployment by ECS id           gsi1: gsi1pk = ``DEPLOYMENT#<ecs deployment id>``
runs of a job                      pk = ``JOB#<job>``, sk begins ``RUN#``, newest first
one run by task ARN                gsi1: gsi1pk = ``TASK#<task arn>``
=================================  =========================================================

Records expire ``retention_days`` after they are written.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.errors import AwsError
from ecspilot.obs import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
BATCH_WRITE_LIMIT = 25


def utc_now() -> str:
    """Now, in UTC, as an ISO 8601 string that sorts by time."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def service_pk(cluster: str, service: str) -> str:
    return f"SERVICE#{cluster}#{service}"


@dataclass(frozen=True)
class DeploymentRecord:
    """A deployment ecspilot started (status IN_PROGRESS until the tracker closes it)."""

    cluster: str
    service: str
    from_task_definition: str
    to_task_definition: str
    image_digest: str
    image_tag: str
    repository: str
    deployment_id: str
    started_at: str
    trigger: str = "push"
    event_id: str = ""
    status: str = "IN_PROGRESS"

    def key(self) -> dict[str, str]:
        return {
            "pk": service_pk(self.cluster, self.service),
            "sk": f"DEPLOY#{self.started_at}#{self.deployment_id}",
        }

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {**self.key(), "type": "deployment", **asdict(self)}
        if self.deployment_id:
            item["gsi1pk"] = f"DEPLOYMENT#{self.deployment_id}"
            item["gsi1sk"] = "DEPLOYMENT"
        return item


def job_pk(job: str) -> str:
    return f"JOB#{job}"


@dataclass(frozen=True)
class RunRecord:
    """One ECS task a job run started (a run of count N writes N records sharing ``run_id``).

    Keyed per task so the tracker can close each from its ``ECS Task State Change``
    event via gsi1 (``TASK#<task arn>``).
    """

    job: str
    run_id: str
    task_arn: str
    cluster: str
    task_definition: str
    trigger: str  # schedule | manual | queue
    started_at: str
    status: str = "PENDING"
    message_id: str = ""
    scheduled_time: str = ""

    def key(self) -> dict[str, str]:
        return {"pk": job_pk(self.job), "sk": f"RUN#{self.started_at}#{self.task_arn.rsplit('/', 1)[-1]}"}

    def to_item(self) -> dict[str, Any]:
        return {
            **self.key(),
            "type": "run",
            **asdict(self),
            "gsi1pk": f"TASK#{self.task_arn}",
            "gsi1sk": "RUN",
        }


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict as a DynamoDB attribute map (None values dropped)."""
    return {k: _SERIALIZER.serialize(v) for k, v in item.items() if v is not None}


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB attribute map as a plain dict."""
    return {k: _DESERIALIZER.deserialize(v) for k, v in item.items()}


class History:
    """Writes and reads the state table. With no table name it records nothing."""

    _warned = False

    def __init__(
        self, client: DynamoDBClient | None, table_name: str | None, retention_days: int = 90
    ) -> None:
        self._client = client
        self.table_name = table_name
        self.retention_days = retention_days

    @property
    def enabled(self) -> bool:
        if not self.table_name and not History._warned:
            History._warned = True
            logger.warning("ECSPILOT_TABLE is not set: history is not recorded")
        return bool(self.table_name and self._client)

    def _target(self) -> tuple[DynamoDBClient, str]:
        if self._client is None or not self.table_name:
            raise AwsError("no state table configured (ECSPILOT_TABLE)")
        return self._client, self.table_name

    def expires_at(self) -> int:
        return int(time.time()) + self.retention_days * 86400

    def put_items(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Write items in batches of 25, retrying unprocessed ones; return how many were written."""
        if not self.enabled:
            return 0
        client, table = self._target()
        expires = self.expires_at()
        requests = [{"PutRequest": {"Item": serialize({**i, "expires_at": expires})}} for i in items]
        written = 0
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            pending: Sequence[Any] = requests[start : start + BATCH_WRITE_LIMIT]
            for attempt in range(6):
                try:
                    resp = client.batch_write_item(RequestItems={table: pending})
                except (ClientError, BotoCoreError) as exc:
                    raise AwsError(f"writing history failed: {exc}", table=self.table_name) from exc
                unprocessed = resp.get("UnprocessedItems", {}).get(table, [])
                written += len(pending) - len(unprocessed)
                pending = unprocessed
                if not pending:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            if pending:
                raise AwsError(f"{len(pending)} history record(s) left unprocessed", table=self.table_name)
        return written

    def record_deployments(self, records: Sequence[DeploymentRecord]) -> int:
        """Write deployment records in batches."""
        return self.put_items(r.to_item() for r in records)

    def deployments(self, cluster: str, service: str, limit: int = 20) -> list[dict[str, Any]]:
        """Latest deployments of a service, newest first."""
        if not self.enabled:
            return []
        client, table = self._target()
        resp = client.query(
            TableName=table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
            ExpressionAttributeValues={":pk": {"S": service_pk(cluster, service)}, ":sk": {"S": "DEPLOY#"}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [deserialize(i) for i in resp.get("Items", [])]
