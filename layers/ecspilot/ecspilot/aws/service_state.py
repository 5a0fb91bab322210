"""The newest image each service container was given: racing pushes never leave the older one.

Two deploy_on_push invocations for two tags of one repository can race on the same services:
both describe a service on an older image, both register a revision, both call UpdateService,
and whichever call lands last wins at ECS. A stale guard that reads ECR and then acts cannot
order them. The state table can, with one item per service (``pk = SERVICE#<cluster>#<service>``,
``sk = STATE``) holding, per container, the newest image claimed for it and the revision that
carries it:

1. **claim** (before UpdateService): write the container's image with a condition: only when
   the container has no claim yet or its claim was pushed no later than this image
   (``imagePushedAt``; on a tie the later writer wins). A deployer whose claim fails is stale:
   a newer image has been given to that container; it stops without calling UpdateService.
2. **act**: UpdateService with its revision.
3. **verify** (after UpdateService): read the item again (strongly consistent). When a newer
   image claimed the container meanwhile, apply that claim's revision (UpdateService) and read
   again, until the item names what was applied last.

Why the last UpdateService carries the newest image: every claim is written before its own
UpdateService. Let deployer D make the last UpdateService, with revision R, and read the item
after it. A newer claim N written before that read would make D apply N's revision: a later
UpdateService than the last. N written after the read means N's own UpdateService is later
still. Either way a contradiction: nothing newer than R was claimed by then.

The same item remembers the digests that FAILED or were ROLLED_BACK on the service
(``held#<digest>``, written by the tracker before it closes the record), so the deployer knows
what it must not deploy again from the one BatchGetItem it makes anyway. **A hold is part of the
claim**: the claim's condition also requires that its digest is not held on the service, so a
hold written at any moment fails every claim of that digest made after it; and the verify step
reads the holds with the claims, so a claim made just before the hold, whose UpdateService lands
after the circuit breaker's rollback, is undone (the service goes back to the revision it ran
before, which each claim names as ``from``). No interleaving of a redelivered push and the
tracker's hold leaves the held digest running with every invocation ended ok.

Claims of many services go in TransactWriteItems of up to 100 items (one call for a push to
50 services); a cancelled transaction says which items failed their condition, those services
are stale, and the rest is written again. Reads are BatchGetItem, 100 keys per call.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.dynamo import serialize
from ecspilot.aws.history import TRANSACT_LIMIT, History, service_pk
from ecspilot.domain.semver import CLAIM_BASE
from ecspilot.errors import AwsError, error_code
from ecspilot.records import dataclass

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

STATE_SK = "STATE"
ATTEMPTS = 6

ServiceKey = tuple[str, str]  # (cluster, service)


@dataclass(frozen=True)
class Claim:
    """The image one deployer gives one container of one service, and the revision carrying it."""

    cluster: str
    service: str
    container: str
    digest: str
    pushed_at: float  # seconds since the epoch (ECR's imagePushedAt)
    task_definition: str
    previous: str = ""  # the revision the service ran when it was claimed (what undoing restores)

    @property
    def service_key(self) -> ServiceKey:
        return (self.cluster, self.service)


def state_key(cluster: str, service: str) -> dict[str, str]:
    return {"pk": service_pk(cluster, service), "sk": STATE_SK}


def attribute(container: str) -> str:
    return f"image#{container}"


HELD_PREFIX = "held#"


def held_records(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The held digests of a service's STATE item, shaped as the deployment records they come
    from (``image_digest``, ``status``, ``started_at``), newest first (pure)."""
    out = [
        {
            "image_digest": name.removeprefix(HELD_PREFIX),
            **{k: v for k, v in value.items() if k != "image_digest"},
        }
        for name, value in state.items()
        if name.startswith(HELD_PREFIX) and isinstance(value, Mapping)
    ]
    return sorted(out, key=lambda r: str(r.get("started_at", "")), reverse=True)


def held_digest(state: Mapping[str, Any], digest: str) -> Mapping[str, Any] | None:
    """The hold of ``digest`` in a service's STATE item (its status, when), or None (pure)."""
    held = state.get(f"{HELD_PREFIX}{digest}") if digest else None
    return held if isinstance(held, Mapping) else None


def current_claims(containers: Sequence[str], state: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The claim each of ``containers`` holds in a service's STATE item (absent ones left out)."""
    out = {}
    for container in containers:
        value = state.get(attribute(container))
        if isinstance(value, Mapping):
            out[container] = value
    return out


def newer_claims(applied: Sequence[Claim], state: Mapping[str, Any]) -> list[Claim]:
    """The claims in ``state`` (a service's STATE item) that differ from what was ``applied`` to
    the same containers: what a concurrent, newer deployment gave them (pure)."""
    out = []
    for mine in applied:
        held = state.get(attribute(mine.container))
        if not isinstance(held, Mapping) or held.get("digest") == mine.digest:
            continue
        out.append(
            Claim(
                mine.cluster,
                mine.service,
                mine.container,
                str(held.get("digest", "")),
                float(held.get("pushed_at", 0)),
                str(held.get("task_definition", "")),
                str(held.get("from", "")),
            )
        )
    return out


class ServiceState:
    """Claims and reads the STATE items of services (see the module docstring)."""

    def __init__(self, history: History) -> None:
        self.history = history

    @property
    def enabled(self) -> bool:
        return self.history.connection() is not None

    def claim(self, claims: Sequence[Claim]) -> set[ServiceKey]:
        """Claim every container of every service in ``claims``; return the services that lost
        (a newer image holds one of their containers). A service's claims are all-or-nothing."""
        connection = self.history.connection()
        if connection is None or not claims:
            return set()
        client, table = connection
        by_service: dict[ServiceKey, list[Claim]] = {}
        for c in claims:
            by_service.setdefault(c.service_key, []).append(c)
        pending = list(by_service)
        lost: set[ServiceKey] = set()
        for start in range(0, len(pending), TRANSACT_LIMIT):
            chunk = pending[start : start + TRANSACT_LIMIT]
            lost |= self._claim_chunk(client, table, {k: by_service[k] for k in chunk})
        return lost

    def _claim_chunk(
        self, client: DynamoDBClient, table: str, chunk: dict[ServiceKey, list[Claim]]
    ) -> set[ServiceKey]:
        lost: set[ServiceKey] = set()
        for attempt in range(ATTEMPTS):
            keys = [k for k in chunk if k not in lost]
            if not keys:
                return lost
            try:
                actions: list[Any] = [_claim_action(table, chunk[k]) for k in keys]
                client.transact_write_items(TransactItems=actions)
                return lost
            except ClientError as exc:
                reasons = [r.get("Code", "") for r in exc.response.get("CancellationReasons", [])]
                if error_code(exc) != "TransactionCanceledException" or len(reasons) != len(keys):
                    raise AwsError(f"claiming the services' images failed: {exc}", table=table) from exc
                failed = {k for k, r in zip(keys, reasons, strict=True) if r == "ConditionalCheckFailed"}
                lost |= failed
                retry = [r for r in reasons if r not in ("None", "", "ConditionalCheckFailed")]
                if retry and any(r not in ("TransactionConflict", "ThrottlingError") for r in retry):
                    raise AwsError(f"claiming the services' images failed: {exc}", table=table) from exc
                if retry:  # a concurrent write to one of the items: back off, then again
                    time.sleep(min(0.05 * 2**attempt, 1.0) * (0.5 + random.random()))
            except BotoCoreError as exc:
                raise AwsError(f"claiming the services' images failed: {exc}", table=table) from exc
        raise AwsError("claiming the services' images kept conflicting", table=table)

    def hold(self, cluster: str, service: str, digest: str, status: str, started_at: str) -> None:
        """Remember that ``digest`` FAILED or was ROLLED_BACK on the service (idempotent). From
        this write on, every claim of ``digest`` on the service fails (:func:`_claim_action`)."""
        connection = self.history.connection()
        if connection is None or not digest:
            return
        client, table = connection
        try:
            client.update_item(
                TableName=table,
                Key=serialize(state_key(cluster, service)),
                UpdateExpression="SET #h = :h, #type = :type",
                ExpressionAttributeNames={"#h": f"{HELD_PREFIX}{digest}", "#type": "type"},
                ExpressionAttributeValues=serialize(
                    {":h": {"status": status, "started_at": started_at}, ":type": "service-state"}
                ),
            )
        except (ClientError, BotoCoreError) as exc:
            raise AwsError(f"holding {digest[:19]} failed: {exc}", table=table, service=service) from exc

    def read(self, services: Iterable[ServiceKey]) -> dict[ServiceKey, dict[str, Any]]:
        """The STATE items of ``services`` (strongly consistent); absent ones are left out."""
        items = self.history.get_many(state_key(c, s) for c, s in services)
        out: dict[ServiceKey, dict[str, Any]] = {}
        for (pk, _), item in items.items():
            cluster, service = pk.removeprefix("SERVICE#").split("#", 1)
            out[(cluster, service)] = item
        return out


def _claim_action(table: str, claims: Sequence[Claim]) -> dict[str, Any]:
    """One conditional Update of a service's STATE item, covering all its claimed containers."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    sets: list[str] = []
    conditions: list[str] = []
    for i, c in enumerate(claims):
        names[f"#c{i}"] = attribute(c.container)
        values[f":c{i}"] = {
            "digest": c.digest,
            "pushed_at": Decimal(str(c.pushed_at)),
            "task_definition": c.task_definition,
            "from": c.previous,
        }
        values[f":p{i}"] = Decimal(str(c.pushed_at))
        sets.append(f"#c{i} = :c{i}")
        if c.pushed_at < CLAIM_BASE:
            # a push-time claim never loses to a version rank (issue 27) a container kept from
            # when it ordered by version: the order changed back to the push time
            values[":base"] = Decimal(str(CLAIM_BASE))
            conditions.append(
                f"(attribute_not_exists(#c{i}) OR #c{i}.pushed_at <= :p{i} OR #c{i}.pushed_at >= :base)"
            )
        else:
            conditions.append(f"(attribute_not_exists(#c{i}) OR #c{i}.pushed_at <= :p{i})")
    # a held digest is never claimed again: the tracker's hold fails every later claim of it
    for i, digest in enumerate(sorted({c.digest for c in claims})):
        names[f"#h{i}"] = f"{HELD_PREFIX}{digest}"
        conditions.append(f"attribute_not_exists(#h{i})")
    first = claims[0]
    return {
        "Update": {
            "TableName": table,
            "Key": serialize(state_key(first.cluster, first.service)),
            "UpdateExpression": "SET " + ", ".join([*sets, "#type = :type"]),
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": {**names, "#type": "type"},
            "ExpressionAttributeValues": serialize({**values, ":type": "service-state"}),
        }
    }
