"""The promotion's items in the state table (one per target, plus its history).

=====================================  ===================================================
item                                   holds
=====================================  ===================================================
pk ``PROMOTION#<target>``, sk          ``approval#<source deployment id>`` (``ecspilot
``STATE``                              approve``: names the release, a newer one needs a
                                       new approval), ``notice#<deployment id>#<reason>``
                                       (the blocked notification was sent: once per release
                                       and reason), ``pinned`` (a forced promotion by hand),
                                       ``promoted`` (the source deployment last promoted),
                                       ``lease`` (who applies a release now: racing runs apply
                                       it once)
pk ``PROMOTION#<target>``, sk          one per release and outcome (``promoted``,
``RUN#<completed at>#<deployment>#<o>``  ``blocked``): the source deployment, the digest, the
                                       gate results, the target's deployment id
=====================================  ===================================================

The STATE items of every target are read in one BatchGetItem per reconcile (with the targets'
service STATE items, whose ``held#<digest>`` are the holds); a write happens only when something
changed (an approval, a first notice, a promotion started).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.dynamo import conditional_update, deserialize, serialize
from ecspilot.aws.history import History
from ecspilot.errors import PromotionError

STATE_SK = "STATE"
LEASE_SECONDS = 300  # a crashed promoter's lease lapses after this; a failed one gives it back


def promotion_key(target: str) -> dict[str, str]:
    return {"pk": f"PROMOTION#{target}", "sk": STATE_SK}


def notice_attribute(deployment_id: str, reason: str) -> str:
    return f"notice#{deployment_id}#{hashlib.sha256(reason.encode()).hexdigest()[:16]}"


def approval_attribute(deployment_id: str) -> str:
    return f"approval#{deployment_id}"


class PromotionRecords:
    """Reads and writes the promotion items (see the module docstring)."""

    def __init__(self, history: History) -> None:
        self.history = history

    def read(self, keys: Iterable[Mapping[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Many items in one BatchGetItem (strongly consistent), by ``(pk, sk)``."""
        return self.history.get_many(keys)

    def _update(
        self, key: Mapping[str, str], expression: str, names: dict[str, str], values: Any, **kw: Any
    ) -> bool:
        connection = self.history.connection()
        if connection is None:
            raise PromotionError("no state table configured (ECSPILOT_TABLE): promotions need one")
        client, table = connection
        written = conditional_update(
            client,
            table,
            key,
            expression,
            names,
            values,
            kw.get("ConditionExpression"),
            error=PromotionError,
            what="writing the promotion state",
        )
        return written is not None

    def approve(self, target: str, deployment_id: str, by: str, at: str) -> None:
        """Record an approval of the release ``deployment_id`` for ``target`` (idempotent)."""
        self._update(
            promotion_key(target),
            "SET #a = :a, #type = :type",
            {"#a": approval_attribute(deployment_id), "#type": "type"},
            {":a": {"by": by, "at": at}, ":type": "promotion-state"},
        )

    def pin(self, target: str, digest: str, at: str, by: str) -> None:
        """Remember a forced promotion: reconcile keeps it until the source completes a newer release."""
        self._update(
            promotion_key(target),
            "SET #p = :p, #type = :type",
            {"#p": "pinned", "#type": "type"},
            {":p": {"digest": digest, "at": at, "by": by}, ":type": "promotion-state"},
        )

    def notice_once(self, target: str, deployment_id: str, reason: str, at: str) -> bool:
        """Remember that the blocked notice of this release and reason was sent; False when it
        had been already (a conditional write: two racing reconciles send it once)."""
        return self._update(
            promotion_key(target),
            "SET #n = :n, #type = :type",
            {"#n": notice_attribute(deployment_id, reason), "#type": "type"},
            {":n": at, ":type": "promotion-state"},
            ConditionExpression="attribute_not_exists(#n)",
        )

    def add(self, entry: Mapping[str, Any]) -> None:
        """One history item of a promotion (PutItem; the same release and outcome overwrite it)."""
        connection = self.history.connection()
        if connection is None:
            return
        client, table = connection
        tail = str(entry.get("source_deployment_id", "")).rsplit("/", 1)[-1]
        item = {
            "pk": f"PROMOTION#{entry['target']}",
            "sk": f"RUN#{entry.get('completed_at', '')}#{tail}#{entry.get('outcome', '')}",
            "type": "promotion",
            "expires_at": self.history.expires_at(),
            **entry,
        }
        try:
            client.put_item(TableName=table, Item=serialize(item))
        except (ClientError, BotoCoreError) as exc:
            raise PromotionError(f"writing the promotion record failed: {exc}", table=table) from exc

    def promoted(self, target: str, entry: Mapping[str, Any]) -> None:
        """The promotion's record, then ``promoted`` on the STATE item naming the release (read
        with the STATE items: a retry that finds it missing writes both again)."""
        self.add(entry)
        self._update(
            promotion_key(target),
            "SET #p = :p, #type = :type",
            {"#p": "promoted", "#type": "type"},
            {":p": str(entry.get("source_deployment_id", "")), ":type": "promotion-state"},
        )

    def lease(self, target: str, release: str, now: float, seconds: int = LEASE_SECONDS) -> bool:
        """Take the right to apply ``release`` to ``target`` for ``seconds`` (a conditional
        write): two invocations racing to promote the same release (the tracker, a timer,
        reconcile, the CLI) register and update once. False when another holds it."""
        return self._update(
            promotion_key(target),
            "SET #l = :l, #type = :type",
            {"#l": "lease", "#type": "type", "#r": "release", "#u": "until"},
            {
                ":l": {"release": release, "until": int(now) + seconds},
                ":r": release,
                ":now": int(now),
                ":type": "promotion-state",
            },
            ConditionExpression="attribute_not_exists(#l) OR #l.#r <> :r OR #l.#u < :now",
        )

    def release_lease(self, target: str, release: str) -> None:
        """Give the lease back after a failed attempt, so the retry need not wait for its expiry."""
        self._update(
            promotion_key(target),
            "REMOVE #l",
            {"#l": "lease", "#r": "release"},
            {":r": release},
            ConditionExpression="#l.#r = :r",
        )

    def runs(self, target: str, limit: int = 20) -> list[dict[str, Any]]:
        """The target's promotion records, newest release first (Query)."""
        connection = self.history.connection()
        if connection is None:
            return []
        client, table = connection
        try:
            resp = client.query(
                TableName=table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
                ExpressionAttributeValues={":pk": {"S": f"PROMOTION#{target}"}, ":sk": {"S": "RUN#"}},
                ScanIndexForward=False,
                Limit=limit,
            )
        except (ClientError, BotoCoreError) as exc:
            raise PromotionError(f"reading the promotion records failed: {exc}", table=table) from exc
        return [deserialize(i) for i in resp.get("Items", [])]
