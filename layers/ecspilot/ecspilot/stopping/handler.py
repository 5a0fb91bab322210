"""The stops' entry point: :func:`deferrals_of`, what every changing flow asks, built once
per invocation (the one extra read, on the first question: a strongly consistent Query of the
state table's ``FREEZE`` items). The incident freeze's events are routed by reconcile's handler
(``reconcile/handler.py``) to :mod:`ecspilot.stopping.incidents`."""

from __future__ import annotations

from typing import Any

from ecspilot.aws.freezes import FreezeStore
from ecspilot.aws.notify import Notifier
from ecspilot.domain.envelope import parse_event
from ecspilot.domain.stops import Stops, stops_for
from ecspilot.interfaces.origins import untrusted_reason
from ecspilot.interfaces.runtime import Runtime
from ecspilot.promotion.timer import TimerTarget
from ecspilot.stopping.deferral import Deferrals
from ecspilot.stopping.incidents import AlarmStateChangeEvent, IncidentFreeze


def deferrals_of(runtime: Runtime) -> Deferrals:
    """The invocation's stops (config, CLI and incident freezes, windows) and their effects;
    within one reconcile run (``runtime.invocation``) every part shares one."""
    if runtime.invocation is not None and "deferrals" in runtime.invocation:
        shared: Deferrals = runtime.invocation["deferrals"]
        return shared
    settings = runtime.settings
    store = FreezeStore(runtime.history)
    config = runtime.config

    def load() -> Stops:
        return stops_for(config, store.read(config.incidents), runtime.clock())

    timer = None
    if settings.reconcile_arn and settings.scheduler_role_arn:
        timer = TimerTarget(settings.reconcile_arn, settings.scheduler_role_arn, settings.schedule_group)
    made = Deferrals(
        load,
        store,
        Notifier(runtime.clients, settings.notify_topic_arn),
        runtime.clients,
        timer,
        runtime.clock,
    )
    if runtime.invocation is not None:
        runtime.invocation["deferrals"] = made
    return made


def lift_incident_if_due(runtime: Runtime) -> str:
    """End the incident freeze when its alarms have been OK for the quiet time (every reconcile
    run asks: one conditional write, only with ``incidents`` configured)."""
    incidents = runtime.config.incidents
    if incidents is None or not runtime.history.enabled:
        return "none"
    notifier = Notifier(runtime.clients, runtime.settings.notify_topic_arn)
    return IncidentFreeze(runtime.history, incidents, notifier).lift_if_due(runtime.clock())


def incident_alarm(event: dict[str, Any], runtime: Runtime) -> AlarmStateChangeEvent | dict[str, Any]:
    """Parse, check the origin (ecspilot's account, or a configured member account's) and that
    the alarm is an incident alarm of the config: the event, or the answer when it is ignored
    (reads nothing: ``on_alarm_event`` and ``plan --event`` both ask)."""
    parsed = parse_event(AlarmStateChangeEvent, event, "CloudWatch Alarm State Change")
    accounts = [(a.account_id, a.region) for a in runtime.config.accounts.values()]
    untrusted = untrusted_reason(
        runtime.settings, parsed.account, parsed.region, parsed.detail_type, accounts
    )
    if untrusted:
        return {"ignored": untrusted}
    incidents = runtime.config.incidents
    alarm = parsed.detail.alarm_name
    if incidents is None or alarm not in incidents.alarms:
        return {"ignored": f"alarm {alarm} is not an incident alarm of the config"}
    return parsed


def on_alarm_event(event: dict[str, Any], runtime: Runtime) -> dict[str, Any]:
    """Parse, check the origin and the alarm (:func:`incident_alarm`), move."""
    parsed = incident_alarm(event, runtime)
    if isinstance(parsed, dict):
        return parsed
    incidents = runtime.config.incidents
    if incidents is None:  # incident_alarm checked it (for the type checker)
        return {"ignored": "no incidents in the config"}
    alarm, state = parsed.detail.alarm_name, parsed.detail.state.value
    notifier = Notifier(runtime.clients, runtime.settings.notify_topic_arn)
    freeze = IncidentFreeze(runtime.history, incidents, notifier)
    transition = freeze.on_state(alarm, state, parsed.changed_at, runtime.clock())
    return {"alarm": alarm, "state": state, "transition": transition}
