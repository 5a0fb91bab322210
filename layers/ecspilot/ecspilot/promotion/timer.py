"""The promptness timer: a one-time EventBridge Scheduler schedule at the end of a bake.

On the source's COMPLETED event the tracker sets, for each target it promotes to, a schedule
``at(<completion + bake_minutes>)`` in ecspilot's schedule group, targeting the reconcile
function with ``{"trigger": "promotion", "service": TARGET}``; Scheduler deletes it after it
fires (``ActionAfterCompletion: DELETE``). Its name comes from the target and the source
deployment (:func:`decisions.schedule_name`), so a redelivered COMPLETED event finds it there
(``ConflictException``) and creates no second one. The 15-minute reconcile remains the safety net.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.errors import PromotionError, error_code
from ecspilot.obs import logger
from ecspilot.records import dataclass


@dataclass(frozen=True)
class TimerTarget:
    """Where the timers point: the reconcile function, the role Scheduler assumes, the group."""

    function_arn: str
    role_arn: str
    group: str = "ecspilot"


def at_expression(when: datetime) -> str:
    """Scheduler's one-time expression, in UTC to the second."""
    return f"at({when.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')})"


def set_timer(scheduler: Any, where: TimerTarget, name: str, when: datetime, target: str) -> bool:
    """Create the one-time schedule; False when it exists already (a redelivered event)."""
    try:
        scheduler.create_schedule(
            Name=name,
            GroupName=where.group,
            ScheduleExpression=at_expression(when),
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            Target={
                "Arn": where.function_arn,
                "RoleArn": where.role_arn,
                "Input": json.dumps({"trigger": "promotion", "service": target}),
            },
            Description=f"ecspilot: promote {target} when its source's bake ends",
        )
    except ClientError as exc:
        if error_code(exc) == "ConflictException":
            logger.info("promotion timer already set", extra={"schedule": name, "target": target})
            return False
        raise PromotionError(f"CreateSchedule {name} failed: {exc}", schedule=name) from exc
    except BotoCoreError as exc:
        raise PromotionError(f"CreateSchedule {name} failed: {exc}", schedule=name) from exc
    logger.info("promotion timer set", extra={"schedule": name, "target": target, "at": at_expression(when)})
    return True
