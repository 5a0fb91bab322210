"""What ``track_deployments`` would do with an ECS event, read-only (``ecspilot plan --event``).

The tracker's own decisions (:mod:`ecspilot.tracking.decisions`) on the records it would read
(GetItem, Query, DescribeTaskDefinition): no record is written, no metric or notification sent.
"""

from __future__ import annotations

from typing import Any

from ecspilot.aws.ecs_reads import TaskDefinitions
from ecspilot.aws.hook_state import HookRecords, hook_key
from ecspilot.domain.envelope import parse_event
from ecspilot.domain.events import EcsDeploymentStateChangeEvent, EcsTaskStateChangeEvent
from ecspilot.domain.hook_events import AWAITING_ACTION, EcsHookStateChangeEvent
from ecspilot.domain.service_deployments import reconciled_status
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
from ecspilot.tracking.health import configured_service
from ecspilot.tracking.health_decisions import classify_stop, service_of_group
from ecspilot.tracking.hooks import ENDED, FOLLOWS, HookTracker, ended_status
from ecspilot.tracking.service_deployments import ServiceDeploymentReader

#: what the tracker would do with a paused deployment's hook, by the gates' decision
HOOK_CHANGES = {"CONTINUE": "would-answer", "ROLLBACK": "would-answer", "WAIT": "would-wait"}


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
    if event.get("detail-type") == "ECS Hook State Change":
        return _hook(parse_event(EcsHookStateChangeEvent, event, "ECS Hook State Change"), rt)
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
    target = rollback_target(parsed.detail.reason) if status == "IN_PROGRESS" else None
    # blue/green, linear, canary: the service deployment decides, as in the tracker (reads only)
    observed = ServiceDeploymentReader(rt.clients.ecs).observe(parsed, record or {})
    status = reconciled_status(status, observed.ecs_status)
    moves = [_move(deployment_id, before, status, DEPLOYMENT_MOVES[status])]
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
    if service_of_group(task.group):
        return _service_task(parsed, rt)
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


def _service_task(parsed: EcsTaskStateChangeEvent, rt: Runtime) -> dict[str, Any]:
    """A service's stopped task (issue 16): the stop it would record, and whether it is a
    replacement (the crash-loop count is not previewed: it needs the window's records)."""
    task = parsed.detail
    cluster, service = task.cluster_arn.rsplit("/", 1)[-1], service_of_group(task.group) or ""
    if configured_service(rt.config, cluster, service) is None:
        return {"ignored": f"service {cluster}/{service} is not configured"}
    essential = essential_containers(TaskDefinitions(rt.clients.ecs), task.task_definition_arn)
    verdict = classify_stop(task.stop_code, task.stopped_reason, task.containers, essential)
    what = "a replacement" if verdict.replacement else f"not a replacement ({verdict.kind})"
    move = {
        "record": f"stop of {cluster}/{service} ({task.task_arn.rsplit('/', 1)[-1]})",
        "from": "(new)",
        "to": verdict.kind,
        "change": "would-record",
    }
    return {"summary": f"service task stopped, {what}: {verdict.reason}", "moves": [move]}


def _hook(parsed: EcsHookStateChangeEvent, rt: Runtime) -> dict[str, Any]:
    """A paused deployment (issue 14): the service's gates evaluated with reads only, and the answer
    the tracker would give (CONTINUE or ROLLBACK) or that it would wait for a person."""
    untrusted = untrusted_reason(rt.settings, parsed.account, parsed.region, parsed.detail_type)
    if untrusted:
        return {"ignored": untrusted}
    if not parsed.detail.is_pause:
        return {"ignored": f"a {parsed.detail.hook_type} hook is not answered by ecspilot"}
    cluster, service = parsed.cluster_service
    if parsed.detail.event_name != AWAITING_ACTION:
        return _hook_ended(parsed, rt)
    tracker = HookTracker(rt.config, rt.clients, rt.history)
    svc = configured_service(rt.config, cluster, service)
    if svc is None:
        return {"ignored": f"service {cluster}/{service} is not in the config"}
    hook_id = parsed.detail.hook_id
    status = HookRecords(rt.history).get(hook_key(cluster, service, hook_id)).get("status")
    record = f"hook {hook_id} of {cluster}/{service}"
    if status:
        move = {"record": record, "from": str(status), "to": str(status), "change": "unchanged"}
        return {"summary": f"hook {hook_id} is already {status}", "moves": [move]}
    decision = tracker.evaluate(svc, parsed.deployment_arn)
    move = {"record": record, "from": "(new)", "to": decision.action, "change": HOOK_CHANGES[decision.action]}
    reasons = "; ".join(decision.reasons) or "every gate passes"
    return {"summary": f"{AWAITING_ACTION} at {parsed.detail.lifecycle_stage}: {reasons}", "moves": [move]}


def _hook_ended(parsed: EcsHookStateChangeEvent, rt: Runtime) -> dict[str, Any]:
    """HOOK_SUCCEEDED / FAILED / TIMED_OUT: the move of a hook recorded WAITING, as the tracker."""
    cluster, service = parsed.cluster_service
    name, hook_id = parsed.detail.event_name, parsed.detail.hook_id
    item = HookRecords(rt.history).get(hook_key(cluster, service, hook_id)) if name in ENDED else {}
    if item.get("status") not in FOLLOWS:
        return {"ignored": f"hook event {name} needs no answer (no hook {hook_id} waits)"}
    status, decided_by = ended_status(name, item)
    move = {"record": f"hook {hook_id} of {cluster}/{service}", "from": str(item["status"]), "to": status}
    return {"summary": f"{name}: {decided_by}", "moves": [{**move, "change": "would-move"}]}
