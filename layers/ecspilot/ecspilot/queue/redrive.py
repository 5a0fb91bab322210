"""The jobs queue's redrive policy: where SQS moves a message, after how many receives.

Read once per process from the source queue (``GetQueueUrl``, ``GetQueueAttributes``): the
queue flow dead-letters permanent messages there itself (with the reason), and needs the
receive limit to act on a message's last delivery before SQS's redrive does (without a reason).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ecspilot.errors import EcspilotError
from ecspilot.records import dataclass

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True)
class Redrive:
    """The source queue's redrive policy: where SQS moves a message, after how many receives."""

    dlq_url: str
    max_receive_count: int | None
    queue_url: str = ""


_redrive_cache: dict[str, Redrive] = {}  # per source queue ARN, for the life of the process


def redrive_policy(sqs: SQSClient, source_arn: str) -> Redrive:
    """The source queue's redrive policy (read once per process)."""
    if source_arn in _redrive_cache:
        return _redrive_cache[source_arn]
    _, _, _, _, account, name = source_arn.split(":", 5)
    url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
    policy = json.loads(attrs.get("RedrivePolicy", "{}"))
    target = str(policy.get("deadLetterTargetArn", ""))
    dlq_url = ""
    if target:
        _, _, _, _, dlq_account, dlq_name = target.split(":", 5)
        dlq_url = str(sqs.get_queue_url(QueueName=dlq_name, QueueOwnerAWSAccountId=dlq_account)["QueueUrl"])
    count = policy.get("maxReceiveCount")
    redrive = Redrive(dlq_url, int(count) if count is not None else None, str(url))
    _redrive_cache[source_arn] = redrive
    return redrive


def dlq_url_from_source(sqs: SQSClient, source_arn: str) -> str:
    """The dead-letter queue of the source queue, from its redrive policy."""
    url = redrive_policy(sqs, source_arn).dlq_url
    if not url:
        name = source_arn.rsplit(":", 1)[-1]
        raise EcspilotError(f"queue {name} has no redrive policy and ECSPILOT_JOBS_DLQ_URL is not set")
    return url
