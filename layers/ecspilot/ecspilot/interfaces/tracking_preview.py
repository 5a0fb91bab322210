"""What ``track_deployments`` would do with an ECS event, read-only (``ecspilot plan --event``).

The tracker's own decisions (:mod:`ecspilot.tracking.decisions`) on the records it would read
(GetItem, Query, DescribeTaskDefinition): no record is written, no metric or notification sent.
"""

from __future__ import annotations

from typing import Any

from ecspilot.aws.ecs_reads import TaskDefinitions
from ecspilot.domain.envelope import parse_event
from ecspilot.domain.events import EcsDeploymentStateChangeEvent, EcsTaskStateChangeEvent
from ecspilot.interfaces.origins import promotion_origins, untrusted_reason
from ecspilot.interfaces.runtime import Runtime
from ecspilot.tracking.decisions import (
    DEPLOYMENT_MOVES,
    OPEN_RUN,
    deployment_status,
    parse_service_arn,
    rollback_target,
    run_outcome,
)
from ecspilot.tracking.essential import essential_containers


def _move(record: str, before: str | None, after: str, allowed: tuple[str, ...]) -> dict[str, str]:
    if before == after:
        change = "unchanged"
    elif before is None or before in allowed:
        change = "would-move"
    else:
        change = "unchanged"  # records only move forward: a terminal state is final
    return {"record": record, "from": before or "(new)", "to": after, "change": change}


def preview(event: Any, rt: Runtime) -> dict[str, Any]:
    """The moves the tracker would make, or ``{"ignored": reason}``."""
    if event.get("detail-type") == "ECS Task State Change":
        task_event = parse_event(EcsTaskStateChangeEvent, event, "ECS Task State Change")
        return _task(task_event, rt)
    parsed = parse_event(EcsDeploymentStateChangeEvent, event, "ECS Deployment State Change")
    untrusted = untrusted_reason(  # the tracker takes the configured accounts' events too (issue 13)
        rt.settings, parsed.account, parsed.region, parsed.detail_type, promotion_origins(rt.config)
    )
    if untrusted:
        return {"ignored": untrusted}
    status = deployment_status(parsed.detail.event_name)
    if status is None:
        return {"ignored": f"event {parsed.detail.event_name} is not tracked"}
    cluster, service = parse_service_arn(parsed.service_arn)
    deployment_id = parsed.detail.deployment_id
    record = rt.history.deployment(deployment_id)
    before = str(record["status"]) if record else None
    moves = [_move(deployment_id, before, status, DEPLOYMENT_MOVES[status])]
    target = rollback_target(parsed.detail.reason) if status == "IN_PROGRESS" else None
    if target:
        rolled = rt.history.deployment(target)
        moves.append(
            _move(
                target,
                str(rolled["status"]) if rolled else None,
                "ROLLED_BACK",
                DEPLOYMENT_MOVES["ROLLED_BACK"],
            )
        )
    return {
        "summary": f"{parsed.detail.event_name} for {cluster}/{service} (deployment {deployment_id})",
        "moves": moves,
    }


def _task(parsed: EcsTaskStateChangeEvent, rt: Runtime) -> dict[str, Any]:
    untrusted = untrusted_reason(rt.settings, parsed.account, parsed.region, parsed.detail_type)
    if untrusted:
        return {"ignored": untrusted}
    task = parsed.detail
    if task.last_status != "STOPPED":
        return {"ignored": f"task is {task.last_status}, not STOPPED"}
    records = rt.history.run_by_task(task.task_arn)
    if not records:
        return {"ignored": "no run record for this task"}
    record = records[0]
    essential = essential_containers(
        TaskDefinitions(rt.clients.ecs), task.task_definition_arn or str(record.get("task_definition"))
    )
    status, reason = run_outcome(task.containers, task.stop_code, task.stopped_reason, essential)
    before = str(record.get("status"))
    move = _move(f"run of {record.get('job')} ({task.task_arn.rsplit('/', 1)[-1]})", before, status, OPEN_RUN)
    return {"summary": f"task stopped: {reason}", "moves": [move]}
