"""What a moved record reports beyond its log line: the invocation's metric dimensions, and an
SNS notification (a failed publish is logged and counted, never raised)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from aws_lambda_powertools.warnings import PowertoolsUserWarning
from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.clients import Clients
from ecspilot.errors import error_code
from ecspilot.obs import count, logger, metrics


def set_dimensions(dimensions: Mapping[str, str]) -> None:
    """Set the invocation's metric dimensions (one event per invocation, so one set).

    Powertools clears them when it flushes; with metrics disabled (the demo) it does not, and
    warns when a value is replaced, which is what we mean here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PowertoolsUserWarning)
        for name, value in dimensions.items():
            metrics.add_dimension(name=name, value=value)


class Notifier:
    """Publishes to the notification topic, when one is configured (the SNS client is made only
    when there is something to send)."""

    def __init__(self, clients: Clients, topic_arn: str | None) -> None:
        self.clients = clients
        self.topic_arn = topic_arn

    def notify(self, subject: str, body: str, attributes: Mapping[str, str]) -> bool:
        """Publish; True when sent. A failed publish is logged and counted, not raised: the
        record has already moved, so a retry of the event would not send it again."""
        if not self.topic_arn:
            return False
        try:
            self.clients.sns.publish(
                TopicArn=self.topic_arn,
                Subject=subject,
                Message=body,
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
