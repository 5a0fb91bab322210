"""Reconcile: desired state (config) vs actual (AWS) -> a plan -> apply.

Each concern contributes a *part*: a function ``(runtime, dry_run) -> list[Action]``
that plans its actions and, unless ``dry_run``, applies them. Parts never raise
for one target's failure: they return an ``error`` action and go on, so one
cluster's error never stops the others. The same plan prints as a dry run
(``ecspilot plan``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ecspilot.domain.plan import Action, ReconcileResult
from ecspilot.errors import EventError
from ecspilot.interfaces.runtime import Runtime
from ecspilot.obs import count, logger

Part = Callable[[Runtime, bool], list[Action]]


def parts() -> list[tuple[str, Part]]:
    """The reconcile parts, in order. Imported lazily: each is only loaded when reconcile runs."""
    from ecspilot.daemons.runbook import reconcile_daemons  # noqa: PLC0415
    from ecspilot.deploy.catchup import catch_up  # noqa: PLC0415 - each part imports this module
    from ecspilot.jobs.handler import reconcile_schedules  # noqa: PLC0415

    return [("daemons", reconcile_daemons), ("schedules", reconcile_schedules), ("catch-up", catch_up)]


def run_part(name: str, part: Part, rt: Runtime, dry_run: bool) -> list[Action]:
    """Run one part; whatever it raises (a bug, a network error, throttling past the retries)
    becomes one ``error`` action for that part, logged with its traceback and counted."""
    try:
        return part(rt, dry_run)
    except Exception as exc:  # isolation boundary: reported as an error action
        logger.exception("reconcile part failed", part=name, dry_run=dry_run, error_type=type(exc).__name__)
        count("ReconcilePartFailed")
        return [Action(name, "(part)", "error", f"{name} failed: {type(exc).__name__}: {exc}")]


def reconcile(rt: Runtime, dry_run: bool = False) -> ReconcileResult:
    """Run every part; one part's failure is reported as an error action, the others still run."""
    result = ReconcileResult(dry_run=dry_run)
    for name, part in parts():
        actions = run_part(name, part, rt, dry_run)
        result.actions.extend(actions)
        logger.info("reconcile part done", extra={"part": name, "dry_run": dry_run, "actions": len(actions)})
    for change, n in result.summary().items():
        count(f"Reconcile{change.title().replace('-', '')}", n)
    return result


# --- the reconcile function's triggers -----------------------------------------------------------

RuntimeSource = Runtime | Callable[[], Runtime]
# what the rate schedule sends (template.yaml sets it); {} is accepted too (a manual invoke)
SCHEDULE_INPUT = {"trigger": "schedule"}


def _is_custom_resource(event: Any) -> bool:
    return isinstance(event, dict) and ("RequestType" in event or "ResponseURL" in event)


def _runtime(source: RuntimeSource) -> Runtime:
    return source if isinstance(source, Runtime) else source()


def trigger_of(event: Any, rt: Runtime) -> str | dict[str, Any]:
    """Name the trigger of a (non custom resource) event, or the answer when it is ignored.

    The rate schedule sends :data:`SCHEDULE_INPUT` (or ``{}``); anything carrying ``detail-type`` or ``source`` is an
    EventBridge event and must parse (CloudTrail events strictly), and come from a trusted origin.
    """
    from ecspilot.domain.envelope import parse_event  # noqa: PLC0415 - only event triggers parse
    from ecspilot.domain.events import CloudTrailApiCallEvent, EventBridgeEnvelope  # noqa: PLC0415
    from ecspilot.interfaces.origins import untrusted_reason  # noqa: PLC0415

    if event is None or event in ({}, SCHEDULE_INPUT):
        return "schedule"
    if not isinstance(event, dict):
        raise EventError(f"malformed reconcile event: expected a JSON object, got {type(event).__name__}")
    if "detail-type" not in event and "source" not in event:
        raise EventError(
            "malformed reconcile event: neither the schedule's {} nor an EventBridge event",
            field="detail-type",
        )
    parsed: EventBridgeEnvelope
    if event.get("detail-type") == "AWS API Call via CloudTrail":
        parsed = parse_event(CloudTrailApiCallEvent, event, "CloudTrail API call")
        name = parsed.detail.event_name
    else:
        parsed = parse_event(EventBridgeEnvelope, event, "EventBridge")
        name = parsed.detail_type
    untrusted = untrusted_reason(rt.settings, parsed.account, parsed.region, parsed.detail_type)
    if untrusted:
        return {"ignored": untrusted}
    return name


def handle_reconcile_event(event: Any, rt: RuntimeSource) -> dict[str, Any]:
    """The ``reconcile`` function: a rate schedule, a CloudFormation custom resource (each stack
    deploy), or an EventBridge event that can cause drift. Every trigger runs the same reconcile.

    ``rt`` may be a function that builds the runtime: the custom resource builds it inside its
    guard, so a broken config is answered FAILED (Create/Update) or never built at all (Delete)
    instead of leaving the stack waiting for an answer.
    """
    if _is_custom_resource(event):
        from ecspilot.reconcile import custom_resource  # noqa: PLC0415 - only stack deploys need it

        return custom_resource.handle(event, lambda: reconcile(_runtime(rt)).as_dict())
    runtime = _runtime(rt)
    trigger = trigger_of(event, runtime)
    if isinstance(trigger, dict):
        return trigger
    logger.info("reconcile triggered", extra={"trigger": trigger})
    return reconcile(runtime).as_dict()
