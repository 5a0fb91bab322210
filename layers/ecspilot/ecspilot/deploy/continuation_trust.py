"""What a deploy continuation must prove before it moves anything (issue 24).

A continuation message (:class:`~ecspilot.deploy.continuation.ContinuationItem`) asks
``deploy_on_push`` to roll a digest to services. Its body is never trusted on its own:

1. **the source**: the SQS record must come from the continuation queue (``eventSourceARN`` equals
   the configured queue's ARN); a direct invoke carrying ``Records`` from anywhere else, or
   without a queue configured, is ignored as a whole (:func:`source_refusal`);
2. **the image**: a ``sha256:`` digest of 64 lowercase hex characters, an ECR repository name
   and tag, in ecspilot's own registry (the function's account and region), so the pinned image
   is ``OWN.dkr.ecr.REGION.amazonaws.com/REPO@sha256:...`` and nothing else (:func:`item_refusal`,
   pure; :meth:`ContinuationItem.parse` already refuses a malformed digest);
3. **the rollout**: the first invocation writes a rollout record (``ROLLOUT#<id>``) before it
   sends the first part; a part is taken only when that record exists and names the same
   account, region, repository and digest, and the part's services are among the record's
   (:func:`rollout_refusal`, pure). A continuation of a rollout that never started, or one
   widened to other services (a member account's included), is refused;
4. **the push time**: read from ECR (``DescribeImages``) for the record's digest, never from the
   body, so a forged future ``time`` cannot claim services ahead of a real push; an image gone
   from ECR is refused (:func:`ecr_pushed_at`).

A refused part moves nothing: it is logged, counted (``DeployContinuationsRefused``), named with
its reason in the answer's ``refused``, and reported in ``batchItemFailures`` so it ends in the
continuation dead-letter queue, whose alarm tells the operator. A failed read (the rollout
record, ECR) is an :class:`~ecspilot.errors.AwsError`: the part is retried by SQS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.dynamo import conditional_update
from ecspilot.aws.ecs_reads import aware
from ecspilot.aws.history import History
from ecspilot.domain.images import DIGEST_RE, ImagePush, valid_repository, valid_tag
from ecspilot.errors import AwsError, error_code

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient

    from ecspilot.deploy.continuation import ContinuationItem

ROLLOUT_SK = "ROLLOUT"
_QUEUE_URL = re.compile(
    r"https://(?:sqs\.(?P<r1>[a-z0-9-]+)|(?P<r2>[a-z0-9-]+)\.queue)\.amazonaws\.com(?P<cn>\.cn)?"
    r"/(?P<account>[0-9]{12})/(?P<name>[A-Za-z0-9_-]{1,80}(?:\.fifo)?)"
)


def queue_arn_of(queue_url: str) -> str | None:
    """The ARN of the SQS queue at ``queue_url`` (both URL forms SQS answers with), or None."""
    m = _QUEUE_URL.fullmatch(queue_url)
    if not m:
        return None
    partition = "aws-cn" if m["cn"] else "aws"
    return f"arn:{partition}:sqs:{m['r1'] or m['r2']}:{m['account']}:{m['name']}"


def source_refusal(records: Any, queue_arn: str | None) -> str | None:
    """Why an event's ``Records`` are not continuation-queue records, or None when every one is."""
    if not queue_arn:
        return "no continuation queue is configured (ECSPILOT_CONTINUATION_QUEUE_ARN)"
    if not isinstance(records, list) or not records:
        return "Records is not a non-empty list"
    for record in records:
        if not isinstance(record, dict):
            return "a record is not an object"
        source = record.get("eventSourceARN")
        if record.get("eventSource") != "aws:sqs" or source != queue_arn:
            return f"records not from the continuation queue (eventSourceARN {str(source)[:200]!r})"
    return None


def item_refusal(push: ImagePush, own: tuple[str | None, str | None]) -> str | None:
    """Why a continuation's image is not one ecspilot may pin (pure), or None."""
    account, region = own
    if not account or not region:
        return "ecspilot's own account and region are unknown (set ECSPILOT_ACCOUNT_ID and AWS_REGION)"
    if (push.account, push.region) != (account, region):
        return "the image is not in ecspilot's registry (account and region of the function)"
    if not DIGEST_RE.fullmatch(push.digest):
        return "the digest is not sha256: and 64 lowercase hex characters"
    if not valid_repository(push.repository):
        return "the repository is not an ECR repository name"
    if not valid_tag(push.tag):
        return "the tag is not an ECR image tag"
    return None


def rollout_key(rollout_id: str) -> dict[str, str]:
    return {"pk": f"ROLLOUT#{rollout_id}", "sk": ROLLOUT_SK}


def rollout_item(item: ContinuationItem) -> dict[str, Any]:
    """The record the first invocation writes for its rollout (what later parts are checked against)."""
    p = item.push
    return {
        "type": "rollout",
        "rollout_id": item.rollout_id,
        "account": p.account,
        "region": p.region,
        "repository": p.repository,
        "tag": p.tag,
        "digest": p.digest,
        "services": sorted(item.services),
    }


def rollout_refusal(item: ContinuationItem, record: Mapping[str, Any] | None) -> str | None:
    """Why ``item`` is not a part of the rollout ``record`` describes (pure), or None."""
    if not record:
        return f"no rollout {item.rollout_id[:200]!r} was started by ecspilot"
    p = item.push
    for name, value in (
        ("account", p.account),
        ("region", p.region),
        ("repository", p.repository),
        ("digest", p.digest),
    ):
        if str(record.get(name, "")) != value:
            return f"the continuation's {name} is not its rollout's"
    started = {str(s) for s in record.get("services") or []}
    extra = sorted(set(item.services) - started)
    if extra:
        return f"service(s) {', '.join(extra)[:300]} are not part of the rollout"
    return None


def write_rollout(history: History, item: ContinuationItem) -> None:
    """Record the rollout before its first continuation is sent (UpdateItem; raises AwsError)."""
    connection = history.connection()
    if connection is None:
        return
    client, table = connection
    fields = {**rollout_item(item), "expires_at": history.expires_at()}
    names = {f"#f{i}": k for i, k in enumerate(fields)}
    values = {f":f{i}": v for i, v in enumerate(fields.values())}
    expression = "SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
    conditional_update(
        client, table, rollout_key(item.rollout_id), expression, names, values, what="recording the rollout"
    )


def read_rollout(history: History, rollout_id: str) -> dict[str, Any] | None:
    """The rollout record (BatchGetItem, strongly consistent), None when there is none or no
    table (then nothing can be proven: the caller refuses)."""
    key = rollout_key(rollout_id)
    return history.get_many([key]).get((key["pk"], key["sk"]))


def ecr_pushed_at(ecr: ECRClient, push: ImagePush) -> datetime | None:
    """ECR's ``imagePushedAt`` of the digest in ecspilot's registry; None when ECR has no such image."""
    try:
        resp = ecr.describe_images(
            registryId=push.account, repositoryName=push.repository, imageIds=[{"imageDigest": push.digest}]
        )
    except ClientError as exc:
        if error_code(exc) in ("ImageNotFoundException", "RepositoryNotFoundException"):
            return None
        raise AwsError(f"DescribeImages failed: {exc}", repository=push.repository) from exc
    except BotoCoreError as exc:
        raise AwsError(f"DescribeImages failed: {exc}", repository=push.repository) from exc
    details = resp.get("imageDetails", [])
    return aware(details[0].get("imagePushedAt")) if details else None
