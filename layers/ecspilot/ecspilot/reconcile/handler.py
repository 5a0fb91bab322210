"""The ``reconcile`` function's entry point: which trigger woke it, then the same reconcile.

Triggers: a rate schedule (:data:`SCHEDULE_INPUT` or ``{}``), a CloudFormation custom resource
(each stack deploy), and EventBridge events that can cause drift (trusted origins only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ecspilot.errors import EventError
from ecspilot.interfaces.runtime import Runtime
from ecspilot.obs import logger
from ecspilot.reconcile.runbook import reconcile

RuntimeSource = Runtime | Callable[[], Runtime]
# what the rate schedule sends (template.yaml sets it); {} is accepted too (a manual invoke)
SCHEDULE_INPUT = {"trigger": "schedule"}
# what a reopen timer sends (stopping/deferral.py): deferred services are caught up
REOPEN_INPUT = {"trigger": "reopen"}


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
    if event == REOPEN_INPUT:  # a window opened, a freeze ended (issue 25)
        return "reopen"
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
    if isinstance(event, dict) and event.get("trigger") == "signature":  # issue 27: a re-check timer
        from ecspilot.deploy.handler import handle_signature_timer  # noqa: PLC0415

        return handle_signature_timer(event, runtime)
    if isinstance(event, dict) and event.get("trigger") == "promotion":  # a bake's one-time timer
        from ecspilot.promotion.handler import handle_promotion_timer  # noqa: PLC0415

        return handle_promotion_timer(event, runtime)
    if isinstance(event, dict) and event.get("detail-type") == "CloudWatch Alarm State Change":
        # the incident freeze (issue 25) is reconcile's: when it ends, the same invocation
        # deploys what it deferred (catch-up, promotions, daemons), and runs are serialized
        from ecspilot.stopping.handler import lift_incident_if_due, on_alarm_event  # noqa: PLC0415

        answer = on_alarm_event(event, runtime)
        if answer.get("transition") == "none":  # any alarm event may find the quiet time over
            answer["transition"] = lift_incident_if_due(runtime)
        if answer.get("transition") == "ended":
            answer["reconcile"] = reconcile(runtime).as_dict()["summary"]
        return answer
    trigger = trigger_of(event, runtime)
    if isinstance(trigger, dict):
        return trigger
    logger.info("reconcile triggered", extra={"trigger": trigger})
    _lift_incident(runtime)
    return reconcile(runtime).as_dict()


def _lift_incident(runtime: Runtime) -> None:
    """Every reconcile run ends an incident freeze whose quiet time is over (issue 25)."""
    if runtime.config.incidents is not None:
        from ecspilot.stopping.handler import lift_incident_if_due  # noqa: PLC0415

        lift_incident_if_due(runtime)
