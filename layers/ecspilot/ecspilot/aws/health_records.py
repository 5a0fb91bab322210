"""The state table's service health records: one item per stopped service task, and one small
crash-loop item per service.

=================================  =========================================================
item                               key
=================================  =========================================================
a stopped task of a service        pk = ``SERVICE#<cluster>#<service>``,
                                   sk = ``STOP#<stoppedAt>#<task id>`` (expires after
                                   :data:`STOP_RETENTION_DAYS`)
the service's crash-loop state     pk = ``SERVICE#<cluster>#<service>``, sk = ``CRASHLOOP``
=================================  =========================================================

Each stop is its own item, written once (a conditional PutItem: a redelivered event finds it
and writes nothing), so nothing grows: the stops of a window are one Query on the service's
partition, sorted by time. The crash-loop item is replaced whole with a condition on the
version read, so of two invocations deciding at once only one moves it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.dynamo import deserialize, serialize
from ecspilot.aws.history import History, service_pk
from ecspilot.errors import HealthRecordError, error_code
from ecspilot.records import dataclass

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

STOP_PREFIX = "STOP#"
LOOP_SK = "CRASHLOOP"
STOP_RETENTION_DAYS = 3  # long enough for the windows, `status`, and a failed deployment's quote
MAX_PAGES = 20  # a window's stops: 20 pages of 1 MB is far beyond any service's replacements


@dataclass(frozen=True)
class StopRecord:
    """One stopped task of a service, as the tracker recorded it from ECS's event."""

    cluster: str
    service: str
    task_arn: str
    stopped_at: str  # ISO 8601, UTC, milliseconds: sorts by time
    kind: str  # tracking.health_decisions.StopKind
    replacement: bool
    reason: str  # what the stop is grouped by in a crash loop's message
    stop_code: str = ""
    stopped_reason: str = ""
    deployment_id: str = ""  # the ECS deployment that started the task (startedBy ecs-svc/...)
    task_definition: str = ""
    started_at: str = ""
    exit_codes: dict[str, int] = field(default_factory=dict)
    container_reasons: dict[str, str] = field(default_factory=dict)
    image_digests: dict[str, str] = field(default_factory=dict)
    event_id: str = ""

    @property
    def task_id(self) -> str:
        return self.task_arn.rsplit("/", 1)[-1]

    def key(self) -> dict[str, str]:
        return {
            "pk": service_pk(self.cluster, self.service),
            "sk": f"{STOP_PREFIX}{self.stopped_at}#{self.task_id}",
        }

    def to_item(self) -> dict[str, Any]:
        item = {**self.key(), "type": "stop", **asdict(self)}
        return {k: v for k, v in item.items() if v not in ("", {}, None)}


@dataclass(frozen=True)
class LoopItem:
    """The crash-loop state of a service as stored; ``version`` orders the conditional writes."""

    looping: bool
    changed_at: str  # stoppedAt of the replacement that moved the state
    version: int
    started_at: str = ""  # the first replacement of the current (or last) loop's window
    count: int = 0
    reason: str = ""

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> LoopItem:
        return cls(
            looping=bool(item.get("looping")),
            changed_at=str(item.get("changed_at", "")),
            version=int(item.get("version", 0)),
            started_at=str(item.get("started_at", "")),
            count=int(item.get("count", 0)),
            reason=str(item.get("reason", "")),
        )


class HealthRecords:
    """Reads and writes the service health items of the state table (through ``History``'s
    client and table; nothing is written when history is off)."""

    def __init__(self, history: History) -> None:
        self.history = history

    def _target(self) -> tuple[DynamoDBClient, str]:
        target = self.history.connection()
        if target is None:
            raise HealthRecordError("no state table configured (ECSPILOT_TABLE)")
        return target

    def put_stop(self, record: StopRecord) -> bool:
        """Record a stop; False when it was recorded already (a redelivered event).

        A failed write raises :class:`~ecspilot.errors.HealthRecordError`: the event's invocation fails and is retried,
        so a stop is never lost."""
        client, table = self._target()
        expires = int(time.time()) + STOP_RETENTION_DAYS * 86400
        try:
            client.put_item(
                TableName=table,
                Item=serialize({**record.to_item(), "expires_at": expires}),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise HealthRecordError(
                f"recording the stopped task failed: {exc}", cluster=record.cluster, service=record.service
            ) from exc
        except BotoCoreError as exc:
            raise HealthRecordError(
                f"recording the stopped task failed: {exc}", cluster=record.cluster, service=record.service
            ) from exc
        return True

    def stops(self, cluster: str, service: str, since: str, until: str | None = None) -> list[dict[str, Any]]:
        """The service's recorded stops with ``since <= stoppedAt <= until``, oldest first
        (one strongly consistent Query, paginated)."""
        client, table = self._target()
        upper = f"{STOP_PREFIX}{until}#~" if until else f"{STOP_PREFIX}~"
        kwargs: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": serialize(
                {":pk": service_pk(cluster, service), ":lo": f"{STOP_PREFIX}{since}", ":hi": upper}
            ),
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            try:
                resp = client.query(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise HealthRecordError(
                    f"reading the stopped tasks failed: {exc}", cluster=cluster, service=service
                ) from exc
            items += [deserialize(i) for i in resp.get("Items", [])]
            last = resp.get("LastEvaluatedKey")
            if not last:
                break
            kwargs["ExclusiveStartKey"] = last
        return items

    def loop_state(self, cluster: str, service: str) -> LoopItem | None:
        """The service's crash-loop item (strongly consistent), or None when there is none."""
        client, table = self._target()
        try:
            resp = client.get_item(
                TableName=table,
                Key=serialize({"pk": service_pk(cluster, service), "sk": LOOP_SK}),
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise HealthRecordError(
                f"reading the crash-loop state failed: {exc}", cluster=cluster, service=service
            ) from exc
        item = resp.get("Item")
        return LoopItem.from_item(deserialize(item)) if item else None

    def replace_loop_state(self, cluster: str, service: str, state: LoopItem, expected: int | None) -> bool:
        """Write ``state`` only when the stored item is still at version ``expected`` (None: when
        there is none yet); False when another writer moved it first."""
        client, table = self._target()
        condition = "attribute_not_exists(pk)" if expected is None else "#version = :expected"
        extra: dict[str, Any] = {}
        if expected is not None:
            extra = {
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": serialize({":expected": expected}),
            }
        item = {
            "pk": service_pk(cluster, service),
            "sk": LOOP_SK,
            "type": "crash-loop",
            **asdict(state),
            "expires_at": self.history.expires_at(),
        }
        try:
            client.put_item(TableName=table, Item=serialize(item), ConditionExpression=condition, **extra)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise HealthRecordError(
                f"writing the crash-loop state failed: {exc}", cluster=cluster, service=service
            ) from exc
        except BotoCoreError as exc:
            raise HealthRecordError(
                f"writing the crash-loop state failed: {exc}", cluster=cluster, service=service
            ) from exc
        return True
