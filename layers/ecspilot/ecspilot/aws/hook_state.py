"""Paused hooks in the state table: one item per hook, found by its service.

Item: ``pk = SERVICE#<cluster>#<service>``, ``sk = HOOK#<hook id>``, ``type = hook``; status:

==============  ===========================================================================
EVALUATING      an invocation holds the hook (until ``until``, epoch seconds) and evaluates it
WAITING         the gates could not decide, or ask for approval: ``approve`` / ``reject`` answer
ANSWERING       ``approve`` / ``reject`` holds it (until ``until``) and calls ContinueServiceDeployment
RETRY           answering failed (the invocation failed too): the next attempt may take it
CONTINUE        answered CONTINUE (final)
ROLLBACK        answered ROLLBACK (final)
TIMED_OUT       ECS timed the hook out and its timeout action is unknown (final)
ANSWERED        ECS had already taken an answer when ecspilot looked (a reply lost after it was
                applied, a holder that died after answering): not answered again (final)
==============  ===========================================================================

CONTINUE / ROLLBACK are also reached by following ECS (``decided_by``: ``outside ecspilot`` for a
hook answered from the console, ``timeout`` for its timeout action): see
:mod:`ecspilot.tracking.ecs_hooks`. Every move is one conditional UpdateItem, so a redelivered event, a retry, and two people
approving at once answer a hook once: the writer that loses the condition does nothing. A holder
that died (a Lambda timeout) lets go when ``until`` passes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.dynamo import conditional_update, deserialize, serialize, set_expression
from ecspilot.aws.history import History, service_pk, utc_now
from ecspilot.errors import HookError

FINAL = ("CONTINUE", "ROLLBACK", "TIMED_OUT", "ANSWERED")
HOLD_SECONDS = (
    45  # longer than the tracker's 30 s timeout, shorter than Lambda's first async retry (about 1 min)
)


def hook_key(cluster: str, service: str, hook_id: str) -> dict[str, str]:
    return {"pk": service_pk(cluster, service), "sk": f"HOOK#{hook_id}"}


def _names(condition: str) -> dict[str, str]:
    """The attribute names a condition uses (DynamoDB refuses unused ones)."""
    return {f"#{n}": n for n in ("status", "until") if f"#{n}" in condition}


class HookRecords:
    """The paused hooks of services (see the module docstring)."""

    def __init__(self, history: History, clock: Any = time.time) -> None:
        self.history = history
        self.clock = clock

    def _update(
        self,
        key: Mapping[str, str],
        values: Mapping[str, Any],
        condition: str,
        condition_values: Mapping[str, Any],
        create: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """One conditional UpdateItem; the item as it was (``{}`` when new), or None when the
        condition failed."""
        client, table = self.history._target()
        update = set_expression(values, create)
        return conditional_update(
            client,
            table,
            key,
            update.expression,
            {**update.names, **_names(condition)},
            {**update.values, **condition_values},
            condition,
            error=HookError,
            what="writing the hook's record",
        )

    def get(self, key: Mapping[str, str]) -> dict[str, Any]:
        client, table = self.history._target()
        try:
            resp = client.get_item(TableName=table, Key=serialize(key), ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise HookError(f"reading the hook's record failed: {exc}", table=table) from exc
        item = resp.get("Item")
        return deserialize(item) if item else {}

    def claim(self, key: Mapping[str, str], fields: Mapping[str, Any]) -> dict[str, Any] | None:
        """Hold a hook to evaluate it: a new hook, one whose last answer failed (RETRY), or one
        whose holder let go. Returns the item as it was (``{}`` when new), None when another
        invocation holds it or it was already decided (WAITING or answered)."""
        now = int(self.clock())
        return self._update(
            key,
            {"status": "EVALUATING", "until": now + HOLD_SECONDS, "updated_at": utc_now()},
            "attribute_not_exists(pk) OR #status = :retry OR "
            "(#status IN (:evaluating, :answering) AND #until < :now)",
            {":retry": "RETRY", ":evaluating": "EVALUATING", ":answering": "ANSWERING", ":now": now},
            create={
                **fields,
                "type": "hook",
                "created_at": utc_now(),
                "expires_at": self.history.expires_at(),
            },
        )

    def move(
        self,
        key: Mapping[str, str],
        status: str,
        allowed_from: Sequence[str],
        fields: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Set ``status`` (and ``fields``) while the status is one of ``allowed_from``; the item as
        it was, or None when it had moved on."""
        values = {**(fields or {}), "status": status, "updated_at": utc_now()}
        if status in ("EVALUATING", "ANSWERING"):
            values["until"] = int(self.clock()) + HOLD_SECONDS
        names = {f":s{i}": s for i, s in enumerate(allowed_from)}
        return self._update(key, values, f"#status IN ({', '.join(names)})", names)

    def take(self, key: Mapping[str, str], fields: Mapping[str, Any]) -> dict[str, Any] | None:
        """Hold a hook ECS shows AWAITING_ACTION for ``approve`` / ``reject`` (ANSWERING): one
        without a record (its event was lost), WAITING, RETRY, or one whose holder let go. The
        item as it was (``{}`` when new), or None when it is held or already answered."""
        now = int(self.clock())
        return self._update(
            key,
            {"status": "ANSWERING", "until": now + HOLD_SECONDS, "updated_at": utc_now()},
            "attribute_not_exists(pk) OR #status IN (:waiting, :retry) OR "
            "(#status IN (:evaluating, :answering) AND #until < :now)",
            {
                ":waiting": "WAITING",
                ":retry": "RETRY",
                ":evaluating": "EVALUATING",
                ":answering": "ANSWERING",
                ":now": now,
            },
            create={
                **fields,
                "type": "hook",
                "created_at": utc_now(),
                "expires_at": self.history.expires_at(),
            },
        )

    def of_service(self, cluster: str, service: str) -> list[dict[str, Any]]:
        """Every hook record of the service, oldest first."""
        items = self.history._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
            ExpressionAttributeValues={":pk": {"S": service_pk(cluster, service)}, ":sk": {"S": "HOOK#"}},
        )
        return sorted(items, key=lambda i: str(i.get("created_at", "")))

    def waiting(self, cluster: str, service: str) -> list[dict[str, Any]]:
        """The service's hooks that wait for ``approve`` / ``reject`` (WAITING), oldest first."""
        return [i for i in self.of_service(cluster, service) if i.get("status") == "WAITING"]
