"""ECS service deployments in ecspilot's terms, pure (table-tested, no AWS).

ECS records every deployment of a service as a *service deployment* (ListServiceDeployments,
DescribeServiceDeployments) with a ``status`` and, for the built-in BLUE_GREEN, LINEAR and CANARY
strategies, a ``lifecycleStage``. For those strategies the service deployment, not the
``ECS Deployment State Change`` event, is the source of truth for a deployment record:

=========================  =============  ===================================================
ECS ``status``             record status  why
=========================  =============  ===================================================
``PENDING``                IN_PROGRESS    not started yet
``IN_PROGRESS``            IN_PROGRESS    shifting traffic, or baking (``BAKE_TIME``): the old
                                          revision still runs and ECS may still roll back
``STOP_REQUESTED``         IN_PROGRESS    a stop was asked for; its outcome is not known yet
``ROLLBACK_REQUESTED``     IN_PROGRESS    a rollback was asked for (``ecspilot rollback``,
``ROLLBACK_IN_PROGRESS``                  an alarm): not over until ECS says how it ended
``SUCCESSFUL``             COMPLETED      the bake time passed and the old revision is gone
``STOPPED``                FAILED         stopped (``ABORT``) before it completed: the image
                                          never became the service's, so it is held
``ROLLBACK_SUCCESSFUL``    ROLLED_BACK    ECS went back to the source revision
``ROLLBACK_FAILED``        FAILED         it failed, and so did going back: a person must look
=========================  =============  ===================================================

A deployment is COMPLETED only once ECS says ``SUCCESSFUL``: a ``SERVICE_DEPLOYMENT_COMPLETED``
event that arrives while the service deployment is still in a stage before the end (``BAKE_TIME``,
``CLEAN_UP``, ...) leaves the record IN_PROGRESS, so promotion never takes a baking deployment.

The stage text ``ecspilot status`` and ``history`` show (:func:`stage_text`) is computed from what
the record stores; see the function for what the API tells and what is assumed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

RecordStatus = Literal["IN_PROGRESS", "COMPLETED", "FAILED", "ROLLED_BACK"]

#: strategies whose service deployments ecspilot tracks to their end
TRACKED_STRATEGIES = ("BLUE_GREEN", "LINEAR", "CANARY")
#: ECS statuses of a service deployment that can still be stopped or rolled back
ACTIVE_STATUSES = ("PENDING", "IN_PROGRESS")
#: ECS statuses of a service deployment already being stopped or rolled back
STOPPING_STATUSES = ("STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS")

ECS_STATUS: dict[str, RecordStatus] = {
    "PENDING": "IN_PROGRESS",
    "IN_PROGRESS": "IN_PROGRESS",
    "STOP_REQUESTED": "IN_PROGRESS",
    "ROLLBACK_REQUESTED": "IN_PROGRESS",
    "ROLLBACK_IN_PROGRESS": "IN_PROGRESS",
    "SUCCESSFUL": "COMPLETED",
    "STOPPED": "FAILED",
    "ROLLBACK_SUCCESSFUL": "ROLLED_BACK",
    "ROLLBACK_FAILED": "FAILED",
}

STAGE_WORDS = {
    "RECONCILE_SERVICE": "reconciling revisions",
    "PRE_SCALE_UP": "before scale-up",
    "SCALE_UP": "scaling up the new revision",
    "POST_SCALE_UP": "scaled up",
    "TEST_TRAFFIC_SHIFT": "test traffic shift",
    "POST_TEST_TRAFFIC_SHIFT": "test traffic shifted",
    "PRODUCTION_TRAFFIC_SHIFT": "production traffic shift",
    "POST_PRODUCTION_TRAFFIC_SHIFT": "production traffic shifted",
    "BAKE_TIME": "baking",
    "CLEAN_UP": "cleaning up the old revision",
}
STATUS_WORDS = {
    "PENDING": "pending",
    "STOP_REQUESTED": "stop requested",
    "ROLLBACK_REQUESTED": "rollback requested",
    "ROLLBACK_IN_PROGRESS": "rolling back",
}


def is_tracked(strategy: str | None) -> bool:
    """Whether deployments of a service with this ``deploymentConfiguration.strategy`` are tracked
    through their service deployment (ROLLING, the default, is tracked from its events)."""
    return (strategy or "ROLLING") in TRACKED_STRATEGIES


def record_status(ecs_status: str) -> RecordStatus:
    """The record status of an ECS service deployment status (see the module's table); an
    unknown (newer) status is IN_PROGRESS: never close a record on something not understood."""
    return ECS_STATUS.get(ecs_status, "IN_PROGRESS")


def reconciled_status(event_status: RecordStatus, ecs_status: str | None) -> RecordStatus:
    """The status a tracked deployment's record takes: the service deployment's when it was read
    (the source of truth, even when the event says otherwise), else the event's."""
    if not ecs_status:
        return event_status
    return record_status(ecs_status)


def linear_step(step_percent: float, weight: float) -> tuple[int, int]:
    """``(step, steps)`` of a LINEAR deployment that sends ``weight`` percent of production traffic
    to the new revision, moving ``step_percent`` at a time: 20 % steps at 50 % is step 3 of 5.

    Assumption (the API has no step counter): ``requestedProductionTrafficWeight`` of the target
    revision is the weight ECS asked for in the current step, a multiple of the step percent
    (the last step is whatever remains to 100)."""
    if step_percent <= 0:
        return (0, 0)
    steps = math.ceil(100 / step_percent - 1e-9)
    step = math.ceil(max(weight, 0.0) / step_percent - 1e-9)
    return (min(max(step, 1), steps), steps)


def minutes_between(start: str | None, now: datetime) -> int | None:
    """Whole minutes from an ISO time to ``now``, or None when unknown."""
    if not start:
        return None
    try:
        at = datetime.fromisoformat(start.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0, int((now - at).total_seconds() // 60))


def _number(value: Any) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def stage_text(record: Mapping[str, Any], now: datetime) -> str:
    """What a running blue/green, linear or canary deployment is doing, from its record:
    ``baking, 12 of 30 min``, ``linear step 3 of 5 (60%)``, ``canary 10%``, ``test traffic
    shift``, ``rolling back``. Empty for a record that is not IN_PROGRESS or has no stage.

    The bake's start is when the record first saw the ``BAKE_TIME`` stage (the service
    deployment's ``updatedAt`` then): the API gives no start time per stage.
    """
    if record.get("status") != "IN_PROGRESS":
        return ""
    ecs_status = str(record.get("ecs_status") or "")
    if ecs_status in STATUS_WORDS and ecs_status != "PENDING":
        return STATUS_WORDS[ecs_status]
    stage = str(record.get("lifecycle_stage") or "")
    if not stage:
        return STATUS_WORDS.get(ecs_status, "")
    strategy = str(record.get("strategy") or "")
    weight = _number(record.get("production_weight"))
    if stage == "BAKE_TIME":
        bake = _number(record.get("bake_minutes"))
        elapsed = minutes_between(str(record.get("stage_started_at") or ""), now)
        if bake is not None and elapsed is not None:
            return f"baking, {min(elapsed, int(bake))} of {int(bake)} min"
        return "baking"
    if stage == "PRODUCTION_TRAFFIC_SHIFT" and weight is not None:
        step_percent = _number(record.get("step_percent"))
        if strategy == "LINEAR" and step_percent:
            step, steps = linear_step(step_percent, weight)
            return f"linear step {step} of {steps} ({weight:g}%)"
        if strategy == "CANARY":
            canary = _number(record.get("canary_percent"))
            if canary is not None and weight <= canary:
                return f"canary {weight:g}%"
            return f"canary done, shifting the rest ({weight:g}%)"
        return f"production traffic shift ({weight:g}%)"
    return STAGE_WORDS.get(stage, stage.lower().replace("_", " "))
