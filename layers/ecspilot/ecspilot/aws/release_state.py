"""A service's decisions about one image in the state table (issue 27): the versions awaiting
approval, approved or rejected, and the images the signature gate deferred or refused.

Item: ``pk = SERVICE#<cluster>#<service>``, ``sk = RELEASE#<digest>``, ``type = release``; status:

=========  =================================================================================
AWAITING   ``awaiting approval`` (a jump beyond ``allow``, a prerelease, an equal-version conflict)
APPROVED   ``ecspilot approve SERVICE --digest``: this digest (not a later one) may be deployed
REJECTED   ``ecspilot reject SERVICE --digest``: refused, never offered again by itself
DEFERRED   the signature gate saw IN_PROGRESS: catch-up asks again
REFUSED    the signature gate saw FAILED or no status for the listed profiles
=========  =================================================================================

:meth:`ReleaseRecords.note` is one conditional UpdateItem that writes only a *new* status
(never over APPROVED or REJECTED): the invocation whose write lands notifies, so a redelivered
push, a retry and every catch-up tick notify a decision once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.dynamo import conditional_update, deserialize, serialize, set_expression
from ecspilot.aws.history import History, service_pk, utc_now
from ecspilot.errors import AwsError

FINAL = ("APPROVED", "REJECTED")


def release_key(cluster: str, service: str, digest: str) -> dict[str, str]:
    return {"pk": service_pk(cluster, service), "sk": f"RELEASE#{digest}"}


class ReleaseRecords:
    """See the module docstring. With no state table nothing is recorded and every decision is
    news (notified each time it is made)."""

    def __init__(self, history: History) -> None:
        self.history = history

    def note(self, cluster: str, service: str, digest: str, status: str, fields: Mapping[str, Any]) -> bool:
        """Record ``status`` unless the item already has it or a final one; True when written
        (the caller notifies)."""
        if not self.history.enabled:
            return True
        client, table = self.history._target()
        now = utc_now()
        update = set_expression(
            {**fields, "status": status, "updated_at": now},
            {
                "type": "release",
                "created_at": now,
                "image_digest": digest,
                "expires_at": self.history.expires_at(),
            },
        )
        got = conditional_update(
            client,
            table,
            release_key(cluster, service, digest),
            update.expression,
            {**update.names, "#status": "status"},
            {**update.values, ":s": status, ":fin0": FINAL[0], ":fin1": FINAL[1]},
            "attribute_not_exists(pk) OR NOT (#status IN (:s, :fin0, :fin1))",
            error=AwsError,
            what="recording the release decision",
        )
        return got is not None

    def get(self, cluster: str, service: str, digest: str) -> dict[str, Any]:
        """The item (strongly consistent), ``{}`` when none."""
        client, table = self.history._target()
        try:
            resp = client.get_item(
                TableName=table, Key=serialize(release_key(cluster, service, digest)), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise AwsError(f"reading the release record failed: {exc}", table=table) from exc
        item = resp.get("Item")
        return deserialize(item) if item else {}

    def answer(
        self, cluster: str, service: str, digest: str, status: str, allowed_from: Sequence[str], who: str
    ) -> dict[str, Any] | None:
        """Move the item to ``status`` (APPROVED, REJECTED) from one of ``allowed_from``: the item
        as it was, or None when it was not there in one of them (answered first by someone else)."""
        client, table = self.history._target()
        update = set_expression({"status": status, "updated_at": utc_now(), "decided_by": who})
        names = {f":a{i}": s for i, s in enumerate(allowed_from)}
        return conditional_update(
            client,
            table,
            release_key(cluster, service, digest),
            update.expression,
            {**update.names, "#status": "status"},
            {**update.values, **names},
            f"#status IN ({', '.join(names)})",
            error=AwsError,
            what="answering the release",
        )

    def of_service(self, cluster: str, service: str) -> list[dict[str, Any]]:
        """Every release item of a service, oldest first."""
        items = self.history._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
            ExpressionAttributeValues={":pk": {"S": service_pk(cluster, service)}, ":sk": {"S": "RELEASE#"}},
        )
        return sorted(items, key=lambda i: str(i.get("created_at", "")))
