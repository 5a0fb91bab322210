"""The promotion's entry points: the only promotion module that knows the process ``Runtime``.

- :func:`reconcile_promotions`: the reconcile part ``(runtime, dry_run) -> list[Action]``;
- :func:`handle_promotion_timer`: the one-time timer's input ``{"trigger": "promotion",
  "service": NAME}`` (delivered to the reconcile function): the same evaluation, for one target;
- :func:`after_completed`: the tracker's hook when a deployment record moved to COMPLETED: for
  each service promoted from it, a timer at the end of the bake, or (``bake_minutes: 0``) the
  promotion right away;
- :func:`promoter`: a :class:`Promoter` for a CLI verb.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ecspilot.aws.accounts import sessions_of
from ecspilot.aws.open_work import open_services
from ecspilot.domain.keys import state_keys
from ecspilot.domain.plan import Action
from ecspilot.errors import EcspilotError
from ecspilot.interfaces.runtime import Runtime
from ecspilot.obs import count, logger
from ecspilot.promotion.decisions import parse_time, schedule_name
from ecspilot.promotion.runbook import Promoter, as_actions
from ecspilot.promotion.timer import TimerTarget, set_timer
from ecspilot.stopping.handler import deferrals_of


def promoter(runtime: Runtime, function: str = "cli", trigger: str = "promotion") -> Promoter:
    """A promoter with the runtime's config, history and the assumed-role sessions of
    ``function`` (``RoleSessionName`` ``ecspilot-<function>``)."""
    settings = runtime.settings
    sessions = sessions_of(runtime.clients, settings.region, function, settings.max_workers)
    return Promoter(
        runtime.config,
        sessions,
        runtime.history,
        (settings.account_id, settings.region),
        settings.max_workers,
        trigger,
        settings.notify_topic_arn,
    )


def automated(runtime: Runtime, function: str, trigger: str = "promotion") -> Promoter:
    """A promoter that asks the stops (issue 25): reconcile's, the bake timer's, the tracker's.
    The CLI's ``promote`` is a person's decision and does not ask."""
    promoting = promoter(runtime, function, trigger)
    promoting.deferrals = deferrals_of(runtime)
    return promoting


def waiting_on_ecs(runtime: Runtime, names: Sequence[str]) -> dict[str, str]:
    """The promoted services among ``names`` that ECS is still deploying (rolling out, baking,
    paused: :mod:`ecspilot.aws.open_work`), with the reason: promotion leaves them to ECS."""
    keys = state_keys(runtime.config, (runtime.settings.account_id, runtime.settings.region))
    busy = open_services(runtime.history, (keys[n] for n in names if n in keys))
    return {n: busy[keys[n]] for n in names if keys.get(n) in busy}


def reconcile_promotions(runtime: Runtime, dry_run: bool = False) -> list[Action]:
    """The reconcile part: every promoted service's verdict, applied unless ``dry_run``; a target
    ECS is still deploying is ``waiting`` (never promoted over an open deployment)."""
    names = [s.name for s in runtime.config.services if s.promote]
    waiting = waiting_on_ecs(runtime, names)
    actions = [Action("promotion", n, "waiting", reason) for n, reason in waiting.items()]
    rest = [n for n in names if n not in waiting]
    if not rest:
        return actions
    return actions + as_actions(automated(runtime, "reconcile").run(rest, dry_run=dry_run))


def handle_promotion_timer(event: Mapping[str, Any], runtime: Runtime) -> dict[str, Any]:
    """A bake's timer fired: evaluate (and apply) that one target."""
    name = event.get("service")
    target = next((s for s in runtime.config.services if s.name == name and s.promote), None)
    if target is None:  # the config changed since the timer was set: nothing to do (no retry)
        reason = f"promotion timer for {name!r}: not a promoted service in the config"
        logger.warning("promotion timer ignored", extra={"service": name, "reason": reason})
        count("EventsIgnored")
        return {"ignored": reason}
    waiting = waiting_on_ecs(runtime, [target.name])
    if waiting:  # the next reconcile (or a later timer) promotes once ECS is done
        actions = [Action("promotion", target.name, "waiting", waiting[target.name])]
    else:
        actions = as_actions(automated(runtime, "reconcile", "timer").run([target.name]))
    return {"trigger": "promotion", "service": target.name, "actions": [a.__dict__ for a in actions]}


def targets_of(runtime: Runtime, cluster: str, service: str) -> list[str]:
    """The services promoted from the configured service keyed ``(cluster, service)``."""
    keys = state_keys(runtime.config, (runtime.settings.account_id, runtime.settings.region))
    sources = {name for name, key in keys.items() if key == (cluster, service)}
    return [s.name for s in runtime.config.services if s.promote and s.promote.source in sources]


def after_completed(runtime: Runtime, record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The tracker's hook (see the module docstring); a failure is logged and counted, not
    raised: the record has moved, and reconcile's schedule promotes anyway."""
    targets = targets_of(runtime, str(record.get("cluster", "")), str(record.get("service", "")))
    if not targets or not record.get("image_digest"):
        return []
    completed = parse_time(record.get("finished_at")) or parse_time(record.get("started_at"))
    deployment_id = str(record.get("deployment_id", ""))
    out: list[dict[str, Any]] = []
    due = datetime.now(UTC) if completed is None else completed
    now: Sequence[str] = [
        t for t in targets if due + timedelta(minutes=_bake(runtime, t)) <= datetime.now(UTC)
    ]
    for name in (t for t in targets if t not in now):
        try:
            out.append(_timer(runtime, name, deployment_id, completed))
        except EcspilotError as exc:
            logger.error("promotion timer not set", extra={"target": name, "error": str(exc)})
            count("PromotionErrors")
            out.append({"target": name, "error": str(exc)})
    if now:
        for action in as_actions(automated(runtime, "track_deployments", "tracker").run(now)):
            out.append({"target": action.target, "promotion": action.detail, "change": action.change})
    return out


def _bake(runtime: Runtime, name: str) -> int:
    svc = next(s for s in runtime.config.services if s.name == name)
    return svc.promote.bake_minutes if svc.promote else 0


def _timer(runtime: Runtime, target: str, deployment_id: str, completed: Any) -> dict[str, Any]:
    settings = runtime.settings
    if completed is None:
        return {"target": target, "timer": "none: the record has no completion time"}
    if not settings.reconcile_arn or not settings.scheduler_role_arn:
        logger.warning("no promotion timer: ECSPILOT_RECONCILE_ARN or the scheduler role is not set")
        return {"target": target, "timer": "none: not configured (reconcile promotes on its schedule)"}
    name = schedule_name(target, deployment_id)
    when = completed + timedelta(minutes=_bake(runtime, target))
    where = TimerTarget(settings.reconcile_arn, settings.scheduler_role_arn, settings.schedule_group)
    created = set_timer(runtime.clients.scheduler, where, name, when, target)
    return {"target": target, "timer": name, "created": created}
