"""Reconcile: desired state (config) vs actual (AWS) -> a plan -> apply.

Each concern contributes a *part*: a function ``(runtime, dry_run) -> list[Action]``
that plans its actions and, unless ``dry_run``, applies them. Parts never raise
for one target's failure: they return an ``error`` action and go on, so one
cluster's error never stops the others. The same plan prints as a dry run
(``ecspilot plan``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ecspilot.obs import count, logger
from ecspilot.runtime import Runtime

Change = Literal["create", "update", "delete", "in-sync", "conflict", "error"]


@dataclass(frozen=True)
class Action:
    """One planned (or applied) change, or the lack of one."""

    kind: str  # "schedule", "daemon", "catch-up", ...
    target: str  # what it is about, e.g. "prod/log-agent" or "ecspilot/nightly-report"
    change: Change
    detail: str = ""
    applied: bool = False


@dataclass
class ReconcileResult:
    dry_run: bool
    actions: list[Action] = field(default_factory=list)

    def by_change(self, change: Change) -> list[Action]:
        return [a for a in self.actions if a.change == change]

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for action in self.actions:
            out[action.change] = out.get(action.change, 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "summary": self.summary(),
            "actions": [asdict(a) for a in self.actions],
        }


Part = Callable[[Runtime, bool], list[Action]]


def parts() -> list[tuple[str, Part]]:
    """The reconcile parts, in order. Imported lazily: each is only loaded when reconcile runs."""
    from ecspilot.catchup import catch_up  # noqa: PLC0415 - each part imports this module
    from ecspilot.daemons import reconcile_daemons  # noqa: PLC0415
    from ecspilot.schedules import reconcile_schedules  # noqa: PLC0415

    return [("daemons", reconcile_daemons), ("schedules", reconcile_schedules), ("catch-up", catch_up)]


def reconcile(rt: Runtime, dry_run: bool = False) -> ReconcileResult:
    """Run every part; one part's failure is reported as an error action, the others still run."""
    result = ReconcileResult(dry_run=dry_run)
    for name, part in parts():
        actions = part(rt, dry_run)
        result.actions.extend(actions)
        logger.info("reconcile part done", extra={"part": name, "dry_run": dry_run, "actions": len(actions)})
    for change, n in result.summary().items():
        count(f"Reconcile{change.title().replace('-', '')}", n)
    return result


# --- the reconcile function's triggers -----------------------------------------------------------


def _is_custom_resource(event: Any) -> bool:
    return isinstance(event, dict) and "RequestType" in event and "ResponseURL" in event


def handle_reconcile_event(event: Any, rt: Runtime) -> dict[str, Any]:
    """The ``reconcile`` function: a rate schedule, a CloudFormation custom resource (each stack
    deploy), or an EventBridge event that can cause drift. Every trigger runs the same reconcile.

    For the custom resource, a Delete never touches AWS (the stack is going away; what ecspilot
    created stays, by design), and the response is always sent so a deploy never hangs.
    """
    if _is_custom_resource(event):
        from ecspilot import custom_resource  # noqa: PLC0415 - only stack deploys need it

        return custom_resource.handle(event, lambda: reconcile(rt).as_dict())
    trigger = "schedule"
    if isinstance(event, dict) and "detail-type" in event:
        trigger = str(event.get("detail", {}).get("eventName") or event["detail-type"])
    logger.info("reconcile triggered", extra={"trigger": trigger})
    return reconcile(rt).as_dict()
