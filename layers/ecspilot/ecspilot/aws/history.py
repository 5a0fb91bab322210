"""The state table: deployment records, job runs, and what each service was last given.

One DynamoDB table, keys ``pk`` (S) and ``sk`` (S), one global secondary index
``gsi1`` (``gsi1pk``, ``gsi1sk``), TTL attribute ``expires_at``.

Access patterns (all served by GetItem or Query, never Scan):

=================================  =========================================================
pattern                            key condition
=================================  =========================================================
one deployment by ECS id           pk = ``DEPLOYMENT#<ecs deployment id>``, sk = ``DEPLOYMENT``
                                   (GetItem, strongly consistent)
latest deployments of a service    gsi1: gsi1pk = ``SERVICE#<cluster>#<service>``, gsi1sk begins
                                   ``DEPLOY#`` (``DEPLOY#<started_at>``), newest first
runs of a job                      pk = ``JOB#<job>``, sk begins ``RUN#``, newest first
one run by task ARN                gsi1: gsi1pk = ``TASK#<task arn>``
the newest image of a service      pk = ``SERVICE#<cluster>#<service>``, sk = ``STATE``
                                   (:mod:`ecspilot.aws.service_state`)
last deployment of a service       as "latest deployments", ``Limit`` 1 (``ecspilot status``)
last run of a job                  as "runs of a job", ``Limit`` 1 (``ecspilot status``)
=================================  =========================================================

A deployment has exactly one item, keyed by its ECS deployment id, whoever writes first: the
push deployer upserts what it started (fields it knows, status IN_PROGRESS only if the item has
none yet), the tracker upserts the status ECS reported (creating an ``external`` record when
the deployer has not written yet). Whatever the order of the two writes, they meet on one item
and its status only moves forward.

Records expire ``retention_days`` after they are written.

A BLUE_GREEN, LINEAR or CANARY deployment also carries what its ECS service deployment said
(:data:`SERVICE_DEPLOYMENT_FIELDS`), written by the tracker only (``aws.deployment_fields``).

Status moves only forward (the tracker's conditional writes, :meth:`History.transition`):
a deployment goes IN_PROGRESS -> COMPLETED | FAILED | ROLLED_BACK, and FAILED -> ROLLED_BACK
(the circuit breaker's rollback event may come before or after its FAILED event); a run goes
PENDING | RUNNING -> SUCCEEDED | FAILED | STOPPED. Terminal states are final, so duplicate and
out-of-order events change nothing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.dynamo import deserialize, serialize, set_expression
from ecspilot.errors import AwsError, error_code
from ecspilot.obs import logger
from ecspilot.records import dataclass

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH_WRITE_LIMIT = 25
BATCH_GET_LIMIT = 100
TRANSACT_LIMIT = 100  # TransactWriteItems' limit of actions per call
TRANSACT_ATTEMPTS = 5


#: the tracker's fields from the ECS service deployment (``aws.deployment_fields``)
SERVICE_DEPLOYMENT_FIELDS = ("service_deployment_arn", "ecs_status", "lifecycle_stage", "stage_started_at")


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
    rollout_id: str = ""  # one push's rollout across invocations (its first event's id)
    image_pushed_at: str = ""  # ECR's imagePushedAt (insights' lead time); "" when not known

    def key(self) -> dict[str, str]:
        return deployment_key(self.deployment_id or f"{self.cluster}/{self.service}@{self.started_at}")

    def to_item(self) -> dict[str, Any]:
        fields = {k: v for k, v in asdict(self).items() if k != "image_pushed_at" or v}
        return {
            **self.key(),
            "type": "deployment",
            **fields,
            "gsi1pk": service_pk(self.cluster, self.service),
            "gsi1sk": f"DEPLOY#{self.started_at}",
        }


def deployment_key(deployment_id: str) -> dict[str, str]:
    """The key of a deployment's one item: its ECS deployment id."""
    return {"pk": f"DEPLOYMENT#{deployment_id}", "sk": "DEPLOYMENT"}


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
        """Upsert what the deployer started, 100 per TransactWriteItems: each record's fields are
        set, its status only when the item has none yet (the tracker may have closed it already)."""
        if not self.enabled or not records:
            return 0
        client, table = self._target()
        expires = self.expires_at()
        actions = []
        latest = {record.key()["pk"]: record for record in records}  # one action per item
        for record in latest.values():
            item = {k: v for k, v in record.to_item().items() if k not in ("pk", "sk", "status")}
            fields = {**item, "expires_at": expires}
            update = set_expression(fields)
            actions.append(
                {
                    "Update": {
                        "TableName": table,
                        "Key": serialize(record.key()),
                        "UpdateExpression": f"{update.expression}, #status = if_not_exists(#status, :status)",
                        "ExpressionAttributeNames": {**update.names, "#status": "status"},
                        "ExpressionAttributeValues": serialize({**update.values, ":status": record.status}),
                    }
                }
            )
        for start in range(0, len(actions), TRANSACT_LIMIT):
            self._transact(client, actions[start : start + TRANSACT_LIMIT])
        return len(actions)

    def _transact(self, client: DynamoDBClient, actions: Sequence[Any]) -> None:
        """TransactWriteItems, retried while it is cancelled by a conflicting write (the tracker
        updating one of the items at the same moment): botocore does not retry those."""
        for attempt in range(TRANSACT_ATTEMPTS):
            try:
                client.transact_write_items(TransactItems=list(actions))
                return
            except ClientError as exc:
                reasons = [r.get("Code", "") for r in exc.response.get("CancellationReasons", [])]
                conflict = error_code(exc) == "TransactionCanceledException" and any(
                    r in ("TransactionConflict", "ThrottlingError") for r in reasons
                )
                if not conflict or attempt == TRANSACT_ATTEMPTS - 1:
                    raise AwsError(f"writing history failed: {exc}", table=self.table_name) from exc
            except BotoCoreError as exc:
                raise AwsError(f"writing history failed: {exc}", table=self.table_name) from exc
            time.sleep(min(0.05 * 2**attempt, 1.0) * (0.5 + random.random()))

    def deployments(self, cluster: str, service: str, limit: int = 20) -> list[dict[str, Any]]:
        """Latest deployments of a service, newest first (gsi1)."""
        return self._query(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :pk AND begins_with(gsi1sk, :sk)",
            ExpressionAttributeValues={":pk": {"S": service_pk(cluster, service)}, ":sk": {"S": "DEPLOY#"}},
            ScanIndexForward=False,
            Limit=limit,
        )

    def deployment(self, deployment_id: str) -> dict[str, Any] | None:
        """The record of one ECS deployment (GetItem, strongly consistent), or None."""
        if not self.enabled:
            return None
        client, table = self._target()
        try:
            resp = client.get_item(
                TableName=table, Key=serialize(deployment_key(deployment_id)), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise AwsError(f"reading history failed: {exc}", table=table) from exc
        item = resp.get("Item")
        return deserialize(item) if item else None

    def get_many(self, keys: Iterable[Mapping[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """The items at ``keys`` that exist, by ``(pk, sk)`` (BatchGetItem, 100 keys per call,
        strongly consistent)."""
        wanted = sorted({(k["pk"], k["sk"]) for k in keys})
        if not self.enabled or not wanted:
            return {}
        client, table = self._target()
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            batch: list[Any] = [
                serialize({"pk": pk, "sk": sk}) for pk, sk in wanted[start : start + BATCH_GET_LIMIT]
            ]
            for attempt in range(6):
                try:
                    resp = client.batch_get_item(
                        RequestItems={table: {"Keys": batch, "ConsistentRead": True}}
                    )
                except (ClientError, BotoCoreError) as exc:
                    raise AwsError(f"reading history failed: {exc}", table=table) from exc
                for raw in resp.get("Responses", {}).get(table, []):
                    item = deserialize(raw)
                    found[(str(item["pk"]), str(item["sk"]))] = item
                unprocessed: Mapping[str, Any] = resp.get("UnprocessedKeys", {}).get(table) or {}
                batch = list(unprocessed.get("Keys", []))
                if not batch:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            if batch:
                raise AwsError(f"{len(batch)} history read(s) left unprocessed", table=table)
        return found

    def connection(self) -> tuple[DynamoDBClient, str] | None:
        """The state table's client and name, or None when history is off."""
        return self._target() if self.enabled else None

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

    def transition(
        self,
        key: Mapping[str, str],
        status: str,
        allowed_from: Sequence[str],
        fields: Mapping[str, Any] | None = None,
        create: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Set ``status`` (and ``fields``) on the item at ``key`` only while its status is one
        of ``allowed_from``: one conditional UpdateItem, so concurrent, duplicate and late
        events can never move a record backwards.

        With ``create`` (the item's other attributes), a missing item is created in the same
        call (``create`` only fills attributes the item does not have yet), so a writer that
        comes second meets the first on the one item.

        Returns the item as it was before the update (``{}`` when it was created), or None
        when the condition failed (the record had already moved on, or does not exist).
        """
        if not self.enabled or not (allowed_from or create):
            return None
        client, table = self._target()
        values = {k: v for k, v in (fields or {}).items() if v is not None}
        extra = {
            k: v for k, v in (create or {}).items() if v is not None and k not in values and k not in key
        }
        if create is not None:
            extra.setdefault("expires_at", self.expires_at())
        update = set_expression(values, extra)
        conditions = ["attribute_not_exists(pk)"] if create is not None else []
        if allowed_from:
            conditions.append(f"#status IN ({', '.join(f':from{i}' for i in range(len(allowed_from)))})")
            update.sets.append("#status = :status")
        else:  # only create: the status is set when the item is new, never moved
            update.sets.append("#status = if_not_exists(#status, :status)")
        attr_values = {
            **update.values,
            ":status": status,
            **{f":from{i}": s for i, s in enumerate(allowed_from)},
        }
        try:
            resp = client.update_item(
                TableName=table,
                Key=serialize(key),
                UpdateExpression=update.expression,
                ConditionExpression=" OR ".join(conditions),
                ExpressionAttributeNames={**update.names, "#status": "status"},
                ExpressionAttributeValues=serialize(attr_values),
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise AwsError(f"updating history failed: {exc}", table=table, status=status) from exc
        except BotoCoreError as exc:
            raise AwsError(f"updating history failed: {exc}", table=table, status=status) from exc
        return deserialize(resp.get("Attributes", {}))
