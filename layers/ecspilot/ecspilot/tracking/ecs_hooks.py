"""Paused hooks as ECS sees them, and the hook records made to follow (ECS is the truth).

- :func:`ecs_view`: the service's hooks AWAITING_ACTION per ECS (:mod:`ecspilot.aws.paused_hooks`),
  or None when ECS cannot be read (the callers then fall back on the records alone);
- :func:`fields_of`: a hook record's fields from ECS's view (the timeout action and expiry are
  ECS's; the hook event carries no timeout action);
- :func:`follow`: a record WAITING for a person whose hook ECS no longer awaits was answered
  outside ecspilot (the console, the CLI, another tool: SUCCEEDED -> CONTINUE, FAILED ->
  ROLLBACK) or timed out (its timeout action): the record moves to that, ``decided_by`` says who.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecspilot.aws.clients import Clients
from ecspilot.aws.hook_state import HookRecords, hook_key
from ecspilot.aws.paused_hooks import ANSWERED, EcsHook, hook_in_ecs, paused_hooks
from ecspilot.domain.config import ServiceConfig
from ecspilot.errors import EcspilotError
from ecspilot.obs import count, logger


def ecs_view(clients: Clients, svc: ServiceConfig) -> list[EcsHook] | None:
    """The service's hooks awaiting an answer per ECS, newest deployment first; None when ECS
    cannot be read (logged and counted)."""
    try:
        return paused_hooks(clients.ecs, svc.cluster, svc.service_name)
    except EcspilotError as exc:
        logger.warning("paused hooks not read from ECS", extra={"service": svc.name, "error": str(exc)})
        count("HookReadErrors")
        return None


def fields_of(svc: ServiceConfig, hook: EcsHook) -> dict[str, Any]:
    """A hook record's fields from ECS's view of the hook (None values are not written)."""
    return {
        "cluster": svc.cluster,
        "service": svc.service_name,
        "name": svc.name,
        "hook_id": hook.hook_id,
        "service_deployment_arn": hook.deployment_arn,
        "lifecycle_stage": hook.lifecycle_stage or None,
        "timeout_action": hook.timeout_action or None,
        "hook_expires_at": hook.expires_at.isoformat() if hook.expires_at else None,
    }


def _outcome(hook: EcsHook | None, item: Mapping[str, Any]) -> tuple[str, str] | None:
    """What a hook ECS no longer awaits amounts to: (final status, decided_by), or None."""
    if hook is None or hook.awaiting:
        return None
    if hook.status in ANSWERED:
        return ANSWERED[hook.status], "outside ecspilot"
    if hook.status == "TIMED_OUT":
        action = hook.timeout_action or str(item.get("timeout_action") or "")
        return (action, "timeout") if action in ("CONTINUE", "ROLLBACK") else ("ROLLBACK", "timeout")
    return None


def follow(
    clients: Clients, records: HookRecords, svc: ServiceConfig, awaiting: list[EcsHook], dry_run: bool = False
) -> list[tuple[dict[str, Any], str, str]]:
    """Move the service's WAITING records whose hook ECS no longer awaits to what ECS says;
    ``(record, status, decided_by)`` of each (moved unless ``dry_run``). A hook ECS cannot be
    read for is left as it is (logged)."""
    still = {h.hook_id for h in awaiting}
    out: list[tuple[dict[str, Any], str, str]] = []
    for item in records.of_service(svc.cluster, svc.service_name):
        if item.get("status") != "WAITING" or item.get("hook_id") in still:
            continue
        try:
            hook = hook_in_ecs(clients.ecs, str(item.get("service_deployment_arn")), str(item.get("hook_id")))
        except EcspilotError as exc:
            logger.warning(
                "hook not read from ECS", extra={"hook_id": item.get("hook_id"), "error": str(exc)}
            )
            continue
        outcome = _outcome(hook, item)
        if outcome is None:
            continue
        status, decided_by = outcome
        if not dry_run:
            key = hook_key(svc.cluster, svc.service_name, str(item["hook_id"]))
            reason = f"ECS shows the hook {hook.status if hook else ''}: {decided_by}"
            if (
                records.move(key, status, ["WAITING"], {"decided_by": decided_by, "reasons": [reason]})
                is None
            ):
                continue
            logger.info("hook record follows ECS", extra={"hook_id": item["hook_id"], "status": status})
        out.append((item, status, decided_by))
    return out
