"""The signature gate's re-check (issue 27): one-time EventBridge Scheduler schedules that
invoke reconcile with ``{"trigger": "signature", "services": [...], push...}`` about 60 and
150 seconds after an image was deferred (its signature IN_PROGRESS), in ecspilot's schedule
group, deleted by Scheduler after they fire. Their names come from the digest and the services,
so a redelivered push finds them (``ConflictException``) and sets none again. When reconcile
runs one, the same deploy core decides: deployed once COMPLETE, refused when FAILED, still
deferred otherwise (then the 15-minute catch-up offers it again).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.domain.images import DIGEST_RE, ImagePush
from ecspilot.errors import AwsError, EventError, error_code
from ecspilot.obs import logger
from ecspilot.promotion.timer import TimerTarget, at_expression

AFTER_SECONDS = (60, 150)


def timer_input(push: ImagePush, services: list[str]) -> dict[str, Any]:
    return {
        "trigger": "signature",
        "services": sorted(services),
        "repository": push.repository,
        "tag": push.tag,
        "digest": push.digest,
        "registry_id": push.account,
        "region": push.region,
    }


def push_of(event: Mapping[str, Any]) -> ImagePush:
    """The push a timer's input names (:class:`EventError` when it is not one)."""
    digest = str(event.get("digest", ""))
    if not DIGEST_RE.fullmatch(digest) or not event.get("repository") or not event.get("tag"):
        raise EventError("a signature timer's input names no image (repository, tag, sha256 digest)")
    return ImagePush(
        account=str(event.get("registry_id", "")),
        region=str(event.get("region", "")),
        repository=str(event["repository"]),
        tag=str(event["tag"]),
        digest=digest,
        event_id=f"signature-{digest[7:19]}",
    )


class SignatureTimer:
    """``PushDeployer.signature_timer``: sets the re-check schedules (see the module docstring)."""

    def __init__(self, scheduler: Any, where: TimerTarget, now: Any = None) -> None:
        self.scheduler = scheduler
        self.where = where
        self.now = now or (lambda: datetime.now(UTC))

    def __call__(self, push: ImagePush, services: list[str]) -> None:
        seed = hashlib.sha256(f"{push.digest} {sorted(services)}".encode()).hexdigest()[:24]
        body = json.dumps(timer_input(push, services))
        for i, seconds in enumerate(AFTER_SECONDS):
            name = f"ecspilot-signature-{seed}-{i}"
            when = self.now() + timedelta(seconds=seconds)
            try:
                self.scheduler.create_schedule(
                    Name=name,
                    GroupName=self.where.group,
                    ScheduleExpression=at_expression(when),
                    ScheduleExpressionTimezone="UTC",
                    FlexibleTimeWindow={"Mode": "OFF"},
                    ActionAfterCompletion="DELETE",
                    Target={"Arn": self.where.function_arn, "RoleArn": self.where.role_arn, "Input": body},
                    Description=f"ecspilot: re-check the signature of {push.repository}:{push.tag}"[:512],
                )
            except ClientError as exc:
                if error_code(exc) == "ConflictException":
                    continue
                raise AwsError(f"CreateSchedule {name} failed: {exc}", schedule=name) from exc
            except BotoCoreError as exc:
                raise AwsError(f"CreateSchedule {name} failed: {exc}", schedule=name) from exc
            logger.info("signature re-check timer set", extra={"schedule": name, "at": at_expression(when)})
