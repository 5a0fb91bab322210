"""Freezes in the state table (issue 25): CLI freezes, the incident freeze, deferred changes.

=================================  =========================================================
item                               key
=================================  =========================================================
a CLI freeze                       pk = ``FREEZE``, sk = ``FREEZE#<id>``: services, reason,
                                   by (the caller's ARN, from STS), at (when), end (if any)
the incident freeze                pk = ``FREEZE``, sk = ``INCIDENT``: ``active``, started_at,
                                   ended_at, and one ``alarm#<name>`` map per alarm
                                   ``{state, at}`` (its newest state change)
a deferred change                  pk = ``SERVICE#<cluster>#<service>``, sk =
                                   ``DEFERRED#<digest or revision>``: reason, until, at
=================================  =========================================================

Every function reads the freezes with **one** strongly consistent Query of pk ``FREEZE`` per
invocation (:meth:`FreezeStore.read`), so a CLI freeze takes effect in the next invocation of
every function. The incident item moves only by conditional writes (:mod:`ecspilot.stops`), so
however alarms flap, exactly one writer starts the freeze and exactly one ends it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.dynamo import deserialize, serialize
from ecspilot.aws.history import History, service_pk
from ecspilot.domain.config import IncidentsConfig
from ecspilot.domain.stops import Freeze, stamp
from ecspilot.errors import AwsError, error_code

PK = "FREEZE"
INCIDENT_SK = "INCIDENT"
INCIDENT_FREEZE = "incident"  # the incident freeze's name (its id in chat notifications)
ALARM_PREFIX = "alarm#"
KEEP_ENDED = timedelta(days=7)  # an ended CLI freeze stays readable (``ecspilot freezes``) a week


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def alarm_states(item: Mapping[str, Any]) -> dict[str, str]:
    """Each alarm's newest state as the incident item knows it."""
    return {
        k[len(ALARM_PREFIX) :]: str(v.get("state", ""))
        for k, v in item.items()
        if k.startswith(ALARM_PREFIX) and isinstance(v, Mapping)
    }


def incident_reason(alarms: Sequence[str]) -> str:
    """``incident: prod-5xx in ALARM`` (every alarm in ALARM, in config order)."""
    return f"incident: {', '.join(alarms) or 'an alarm'} in ALARM"


class FreezeStore:
    """Reads and writes the freezes of the state table (nothing without a table)."""

    def __init__(self, history: History) -> None:
        self.history = history

    def _conn(self) -> tuple[Any, str]:
        conn = self.history.connection()
        if conn is None:
            raise AwsError("no state table configured (ECSPILOT_TABLE): freezes live there")
        return conn

    def items(self) -> list[dict[str, Any]]:
        """Every item of pk ``FREEZE``: the one read per invocation (strongly consistent)."""
        if not self.history.enabled:
            return []
        client, table = self._conn()
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": PK}},
            "ConsistentRead": True,
        }
        try:
            while True:
                resp = client.query(**kwargs)
                items += [deserialize(i) for i in resp.get("Items", [])]
                if "LastEvaluatedKey" not in resp:
                    return items
                kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as exc:
            raise AwsError(f"reading the freezes failed: {exc}", table=table) from exc

    def read(self, incidents: IncidentsConfig | None) -> list[Freeze]:
        """The stored freezes (CLI ones, and the incident's when it is on) as :class:`Freeze`."""
        return freezes_of(self.items(), incidents)

    def add(
        self,
        services: Sequence[str],
        reason: str,
        by: str,
        now: datetime,
        until: datetime | None,
    ) -> Freeze:
        """Store a CLI freeze (audited: who, when, why); returns it."""
        client, table = self._conn()
        ident = f"{now.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
        item: dict[str, Any] = {
            "pk": PK,
            "sk": f"FREEZE#{ident}",
            "type": "freeze",
            "name": ident,
            "services": list(services),
            "reason": reason,
            "by": by,
            "at": stamp(now),  # no start: in force at once, whatever the clocks of the functions say
        }
        if until is not None:
            item["end"] = stamp(until)
            item["expires_at"] = int((until + KEEP_ENDED).timestamp())  # DynamoDB's TTL tidies it
        try:
            client.put_item(TableName=table, Item=serialize(item))
        except (ClientError, BotoCoreError) as exc:
            raise AwsError(f"storing the freeze failed: {exc}", table=table) from exc
        return cli_freeze(item)

    def lift(self, services: Sequence[str] | None, now: datetime) -> tuple[list[Freeze], list[Freeze]]:
        """End the CLI freezes of ``services`` (None: every one). A freeze of several services
        loses those only. Returns (lifted, still active on those services). Config and incident
        freezes are not lifted here (the config, the alarms own them)."""
        client, table = self._conn()
        lifted, kept = [], []
        for item in self.items():
            if item.get("type") != "freeze":
                continue
            freeze = cli_freeze(item)
            if not freeze.active(now):
                continue
            names = list(freeze.services)
            rest = [] if services is None else [s for s in names if s not in services]
            if services is not None and rest == names:
                if any(freeze.covers(s) for s in services):
                    kept.append(freeze)  # a glob ("*") covers them: only --all or its own names lift it
                continue
            try:
                if rest:
                    client.update_item(
                        TableName=table,
                        Key=serialize({"pk": PK, "sk": item["sk"]}),
                        UpdateExpression="SET #s = :s",
                        ExpressionAttributeNames={"#s": "services"},
                        ExpressionAttributeValues=serialize({":s": rest}),
                    )
                else:
                    client.update_item(
                        TableName=table,
                        Key=serialize({"pk": PK, "sk": item["sk"]}),
                        UpdateExpression="SET #e = :e, #x = :x",
                        ExpressionAttributeNames={"#e": "end", "#x": "expires_at"},
                        ExpressionAttributeValues=serialize(
                            {":e": stamp(now), ":x": int((now + KEEP_ENDED).timestamp())}
                        ),
                    )
            except (ClientError, BotoCoreError) as exc:
                raise AwsError(f"lifting freeze {freeze.name} failed: {exc}", table=table) from exc
            lifted.append(freeze)
        return lifted, kept

    def lift_one(self, name: str, now: datetime, by: str) -> Freeze | None:
        """End the CLI freeze ``name`` on every service it holds (the chat's Unfreeze), audited
        with ``by``; None when no such freeze is active any more (lifted, ended). One
        conditional write: of two lifts at once (a press and ``ecspilot unfreeze``) one ends it."""
        client, table = self._conn()
        item = next((i for i in self.items() if i.get("type") == "freeze" and i.get("name") == name), None)
        if item is None or not cli_freeze(item).active(now):
            return None
        try:
            client.update_item(
                TableName=table,
                Key=serialize({"pk": PK, "sk": item["sk"]}),
                UpdateExpression="SET #e = :e, #x = :x, #b = :b",
                ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(#e) OR #e > :e)",
                ExpressionAttributeNames={"#e": "end", "#x": "expires_at", "#b": "lifted_by"},
                ExpressionAttributeValues=serialize(
                    {":e": stamp(now), ":x": int((now + KEEP_ENDED).timestamp()), ":b": by}
                ),
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise AwsError(f"lifting freeze {name} failed: {exc}", table=table) from exc
            # lifted since the read, or by this very write (its reply lost, botocore sent it
            # again): the item says which
            now_item = next((i for i in self.items() if i.get("sk") == item["sk"]), {})
            if now_item.get("lifted_by") != by or now_item.get("end") != stamp(now):
                return None
        except BotoCoreError as exc:
            raise AwsError(f"lifting freeze {name} failed: {exc}", table=table) from exc
        return cli_freeze(item)

    def record_deferral(
        self,
        cluster: str,
        service: str,
        what: str,
        reason: str,
        until: datetime | None,
        now: datetime,
        detail: Mapping[str, str],
    ) -> bool:
        """Record that ``what`` (a digest, a revision) was deferred on a service; True the first
        time (the caller notifies then: one notification per service and digest). The record
        expires a day after the stop ends, so a later freeze tells again."""
        if not self.history.enabled:
            return True
        client, table = self._conn()
        ends = (until or now + timedelta(days=self.history.retention_days)) + timedelta(days=1)
        item = {
            "pk": service_pk(cluster, service),
            "sk": f"DEFERRED#{what}",
            "type": "deferred",
            "cluster": cluster,
            "service": service,
            "what": what,
            "reason": reason,
            "until": stamp(until) if until else None,
            "at": stamp(now),
            "expires_at": int(ends.timestamp()),
            **dict(detail),
        }
        try:
            client.put_item(
                TableName=table,
                Item=serialize(item),
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues=serialize({":now": int(now.timestamp())}),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise AwsError(f"recording the deferral failed: {exc}", table=table) from exc
        except BotoCoreError as exc:
            raise AwsError(f"recording the deferral failed: {exc}", table=table) from exc
        return True


def cli_freeze(item: Mapping[str, Any]) -> Freeze:
    return Freeze(
        name=str(item.get("name", "")),
        kind="cli",
        services=tuple(str(s) for s in item.get("services") or ["*"]),
        start=parse_time(item.get("start")),
        end=parse_time(item.get("end")),
        reason=str(item.get("reason", "")),
        by=str(item.get("by", "")),
        at=str(item.get("at", "")),
    )


def freezes_of(items: Sequence[Mapping[str, Any]], incidents: IncidentsConfig | None) -> list[Freeze]:
    """The freezes the items of pk ``FREEZE`` hold (pure)."""
    out = [cli_freeze(i) for i in items if i.get("type") == "freeze"]
    incident = next((i for i in items if i.get("sk") == INCIDENT_SK), None)
    if incidents is not None and incident is not None and incident.get("active") is True:
        states = alarm_states(incident)
        firing = [a for a in incidents.alarms if states.get(a) == "ALARM"]
        ending = parse_time(incident.get("ending_at")) if not firing else None
        reason = incident_reason(firing) if not ending else f"incident: alarms OK, lifts at {stamp(ending)}"
        out.append(
            Freeze(
                INCIDENT_FREEZE,
                "incident",
                tuple(incidents.services),
                end=ending,
                reason=reason,
                at=str(incident.get("started_at", "")),
            )
        )
    return out


__all__ = ["FreezeStore", "alarm_states", "cli_freeze", "freezes_of", "incident_reason"]
