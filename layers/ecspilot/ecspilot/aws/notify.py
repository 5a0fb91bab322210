"""Notifications: one SNS publish to the notification topic, when one is configured. A failed
publish is logged and counted (``NotificationErrors``), never raised: what it reports has already
happened, and a retry of the event would not send it again. Used by every flow that tells people
something (deploy refusals, tracker moves, crash loops, pause hooks, blocked promotions).

Each publish uses ``MessageStructure: json`` (:func:`ecspilot.domain.chat.sns_message`): email
and SMS get ``default``, the plain text; Amazon Q Developer in chat applications (an https
subscription) gets ``https``, a custom notification whose metadata carries what its buttons need."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.clients import Clients
from ecspilot.domain.chat import sns_message
from ecspilot.errors import error_code
from ecspilot.obs import count, logger


class Notifier:
    """Publishes to the notification topic, when one is configured (the SNS client is made only
    when there is something to send)."""

    def __init__(self, clients: Clients, topic_arn: str | None) -> None:
        self.clients = clients
        self.topic_arn = topic_arn

    def notify(
        self,
        subject: str,
        body: str,
        attributes: Mapping[str, str],
        chat: Mapping[str, str] | None = None,
        next_steps: Sequence[str] = (),
    ) -> bool:
        """Publish; True when sent. ``body`` is the plain text (``default``); the chat's custom
        notification is built from it, the ``attributes`` (kind, status, service) and ``chat``
        (more of its ``additionalContext``: digest, hook, release, deployment), with
        ``next_steps``. A failed publish is logged and counted, not raised: the record has
        already moved, so a retry of the event would not send it again."""
        if not self.topic_arn:
            return False
        context = {k: v for k, v in {**attributes, **(chat or {})}.items() if v}
        try:
            self.clients.sns.publish(
                TopicArn=self.topic_arn,
                Subject=subject,
                MessageStructure="json",
                Message=sns_message(subject, body, context, next_steps),
                MessageAttributes={
                    k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v
                },
            )
        except (ClientError, BotoCoreError) as exc:
            logger.error(
                "notification not sent",
                extra={"error": str(exc), "error_code": error_code(exc), "subject": subject},
            )
            count("NotificationErrors")
            return False
        logger.info("notification sent", extra={"subject": subject})
        return True
