"""Chat answers in the state table: what a button answers is claimed once, and the item is the
audit record of who answered it.

Item: ``pk = CHAT#<service>``, ``sk = ANSWER#<hook, release, digest or freeze id>``; status:

==========  ==================================================================================
ANSWERING   one press holds it (until ``until``, epoch seconds) and answers through the CLI's core
ANSWERED    final: ``action``, ``answer`` (the line the chat showed), ``by``, ``origin`` (chat),
            ``answered_at``
OPEN        the press that held it was refused or failed: the next press may take it
==========  ==================================================================================

**Why it answers once.** The claim is one conditional UpdateItem (no item, or OPEN, or an
ANSWERING whose holder's time is up), so of a double click, two people pressing Approve and
Reject together, or Lambda's redelivery, one writer wins and the others read the item and say
"already answered". A lost reply of the winning write is retried by botocore and then fails its
condition: the claim carries a random ``token``, and a writer that finds its own token holding
the item knows it won. What it answers has its own guard underneath (a hook moves WAITING ->
ANSWERING once; a promotion has its lease), so even a claim expired under a slow answer cannot
answer twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.dynamo import conditional_update, deserialize, serialize, set_expression
from ecspilot.aws.history import History, utc_now
from ecspilot.errors import ChatAnswerStoreError
from ecspilot.records import dataclass

HOLD_SECONDS = 90  # longer than the answer path's 60 s timeout: a holder that died lets go after it


def answer_key(service: str, subject: str) -> dict[str, str]:
    return {"pk": f"CHAT#{service}", "sk": f"ANSWER#{subject}"}


@dataclass(frozen=True)
class Claim:
    """A press that won the claim (``token`` proves it), or lost it to ``held`` (the item)."""

    key: dict[str, str]
    token: str
    won: bool
    held: dict[str, Any]


class ChatAnswers:
    """Claims and records chat answers (see the module docstring)."""

    def __init__(self, history: History, clock: Callable[[], float] = time.time) -> None:
        self.history = history
        self.clock = clock

    def claim(self, service: str, subject: str, action: str, by: str) -> Claim:
        """Take the answer of ``subject`` for this press, or say who holds it."""
        key = answer_key(service, subject)
        token = uuid.uuid4().hex
        now = int(self.clock())
        client, table = self.history._target()
        values = {
            "status": "ANSWERING",
            "until": now + HOLD_SECONDS,
            "token": token,
            "action": action,
            "by": by,
            "origin": "chat",
            "type": "chat-answer",
            "expires_at": self.history.expires_at(),
        }
        update = set_expression(values)
        condition = "attribute_not_exists(pk) OR #s = :open OR (#s = :answering AND #u < :now)"
        old = conditional_update(
            client,
            table,
            key,
            update.expression,
            {**update.names, "#s": "status", "#u": "until"},
            {**update.values, ":open": "OPEN", ":answering": "ANSWERING", ":now": now},
            condition,
            error=ChatAnswerStoreError,
            what="claiming the chat answer",
        )
        if old is not None:
            return Claim(key, token, True, {})
        held = self.get(key)
        return Claim(key, token, held.get("token") == token and held.get("status") == "ANSWERING", held)

    def get(self, key: dict[str, str]) -> dict[str, Any]:
        client, table = self.history._target()
        try:
            resp = client.get_item(TableName=table, Key=serialize(key), ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise ChatAnswerStoreError(f"reading the chat answer failed: {exc}", table=table) from exc
        return deserialize(resp.get("Item", {}))

    def finish(self, claim: Claim, answered: bool, answer: str) -> None:
        """ANSWERED with the line shown (final), or OPEN again (refused, failed): only while
        this press still holds it."""
        client, table = self.history._target()
        values = {"status": "ANSWERED" if answered else "OPEN", "answer": answer, "answered_at": utc_now()}
        update = set_expression(values)
        conditional_update(
            client,
            table,
            claim.key,
            update.expression,
            {**update.names, "#t": "token"},
            {**update.values, ":token": claim.token},
            "#t = :token",
            error=ChatAnswerStoreError,
            what="recording the chat answer",
        )
