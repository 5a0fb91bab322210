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
last deployment of a service       as "latest deployments", ``Limit`` 1 (``ecspilot status``)
last run of a job                  as "runs of a job", ``Limit`` 1 (``ecspilot status``)
=================================  =========================================================

Records expire ``retention_days`` after they are written.

Status moves only forward (the tracker's conditional writes, :meth:`History.transition`):
a deployment goes IN_PROGRESS -> COMPLETED | FAILED | ROLLED_BACK, and FAILED -> ROLLED_BACK
(the circuit breaker's rollback event may come before or after its FAILED event); a run goes
PENDING | RUNNING -> SUCCEEDED | FAILED | STOPPED. Terminal states are final, so duplicate and
out-of-order events change nothing.
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

    # --- the tracker's access patterns (all Query, never Scan) ---------------------------------

    def _query(self, **kwargs: Any) -> list[dict[str, Any]]:
        if not self.enabled:
            return []
        client, table = self._target()
        try:
            resp = client.query(TableName=table, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise AwsError(f"reading history failed: {exc}", table=table) from exc
        return [deserialize(i) for i in resp.get("Items", [])]

    def deployment_by_id(self, deployment_id: str) -> list[dict[str, Any]]:
        """The deployment record(s) of one ECS deployment id (gsi1), newest first.

        ECS deployment ids are unique, so this is one record in practice; a list keeps
        the caller honest about the index being eventually consistent.
        """
        items = self._query(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"DEPLOYMENT#{deployment_id}"}},
        )
        return sorted(items, key=lambda i: str(i.get("sk", "")), reverse=True)

    def runs(self, job: str, limit: int = 20) -> list[dict[str, Any]]:
        """Runs of a job (one record per task), newest first."""
        return self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
            ExpressionAttributeValues={":pk": {"S": job_pk(job)}, ":sk": {"S": "RUN#"}},
            ScanIndexForward=False,
            Limit=limit,
        )

    def run_by_task(self, task_arn: str) -> list[dict[str, Any]]:
        """The run record of one ECS task (gsi1)."""
        return self._query(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"TASK#{task_arn}"}},
        )

    def put_new(self, item: Mapping[str, Any]) -> bool:
        """Write ``item`` only if no item has its key yet; False when one already does."""
        if not self.enabled:
            return False
        client, table = self._target()
        try:
            client.put_item(
                TableName=table,
                Item=serialize({**item, "expires_at": self.expires_at()}),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise AwsError(f"writing history failed: {exc}", table=table) from exc
        except BotoCoreError as exc:
            raise AwsError(f"writing history failed: {exc}", table=table) from exc
        return True

    def transition(
        self,
        key: Mapping[str, str],
        status: str,
        allowed_from: Sequence[str],
        fields: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Set ``status`` (and ``fields``) on the item at ``key`` only while its status is one
        of ``allowed_from``: one conditional UpdateItem, so concurrent, duplicate and late
        events can never move a record backwards.

        Returns the item as it was before the update, or None when the condition failed
        (the record had already moved on, or does not exist).
        """
        if not self.enabled or not allowed_from:
            return None
        client, table = self._target()
        values = {k: v for k, v in (fields or {}).items() if v is not None}
        names = {"#status": "status", **{f"#f{i}": k for i, k in enumerate(values)}}
        sets = ["#status = :status"] + [f"#f{i} = :f{i}" for i in range(len(values))]
        attr_values = {
            ":status": status,
            **{f":f{i}": v for i, v in enumerate(values.values())},
            **{f":from{i}": s for i, s in enumerate(allowed_from)},
        }
        condition = f"#status IN ({', '.join(f':from{i}' for i in range(len(allowed_from)))})"
        try:
            resp = client.update_item(
                TableName=table,
                Key=serialize(key),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=serialize(attr_values),
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise AwsError(f"updating history failed: {exc}", table=table, status=status) from exc
        except BotoCoreError as exc:
            raise AwsError(f"updating history failed: {exc}", table=table, status=status) from exc
        return deserialize(resp.get("Attributes", {}))
