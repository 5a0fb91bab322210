"""What chat and email receive: a notification topic with an https subscription (what Amazon Q
Developer in chat applications subscribes) and an email one, on moto's SNS.

moto delivers the https subscription's message by POSTing SNS's notification document to its
endpoint: the POST is caught here (moto's own ``responses`` mock, so nothing leaves the machine)
and its ``Message`` is exactly what the chat gets. moto records the published message of each
publish (``sent_notifications``) but does not send email: the email body is what SNS documents for
a ``MessageStructure: json`` publish, the ``email`` member, else ``default``. The custom
notification is validated against ``docs/schemas/chat-notification.schema.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jsonschema
from moto.core.models import responses_mock
from moto.sns.models import sns_backends

from ecspilot_dev.local import REPO_ROOT
from ecspilot_dev.sandbox import ACCOUNT, REGION

SCHEMA = REPO_ROOT / "docs" / "schemas" / "chat-notification.schema.json"
CHAT_ENDPOINT = "https://chat.ecspilot.test/sns"


@cache
def schema() -> dict[str, Any]:
    return dict(json.loads(SCHEMA.read_text(encoding="utf-8")))


def validate_card(card: Any) -> None:
    """Fail unless ``card`` is a custom notification AWS documents."""
    jsonschema.validate(card, schema(), cls=jsonschema.Draft202012Validator)


@dataclass
class Received:
    subject: str
    card: dict[str, Any]  # what the chat got (the https member), parsed
    email: str  # what an email subscriber got

    @property
    def context(self) -> dict[str, str]:
        return dict(self.card["metadata"]["additionalContext"])


@dataclass
class ChatTopic:
    """A topic with an https (chat) and an email subscription; what each received."""

    clients: Any
    arn: str = ""
    posts: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        sns = self.clients.sns
        self.arn = self.arn or sns.create_topic(Name="ecspilot-notify")["TopicArn"]
        responses_mock.add_callback("POST", CHAT_ENDPOINT, callback=self._posted)
        sns.subscribe(TopicArn=self.arn, Protocol="https", Endpoint=CHAT_ENDPOINT)
        sns.subscribe(TopicArn=self.arn, Protocol="email", Endpoint="oncall@example.com")

    def _posted(self, request: Any) -> tuple[int, dict[str, str], str]:
        document = json.loads(request.body)
        if document.get("Type") == "Notification":
            self.posts.append(document)
        return 200, {}, ""

    def received(self) -> list[Received]:
        """Every notification so far, each as chat and email got it; the chat's validated."""
        sent = sns_backends[ACCOUNT][REGION].topics[self.arn].sent_notifications
        assert len(sent) == len(self.posts), (len(sent), len(self.posts))
        out = []
        for (_, message, subject, _, _), post in zip(sent, self.posts, strict=True):
            structured = json.loads(message)  # MessageStructure json: one member per protocol
            assert set(structured) == {"default", "https"}, structured.keys()
            email = structured.get("email") or structured["default"]
            card = json.loads(post["Message"])
            validate_card(card)
            assert post["Subject"] == subject
            out.append(Received(str(subject), card, email))
        return out
