"""The stops' entry point: :func:`deferrals_of`, what every changing flow asks, built once
per invocation (the one extra read, on the first question: a strongly consistent Query of the
state table's ``FREEZE`` items). The incident freeze's events are routed by reconcile's handler
(``reconcile/handler.py``) to :mod:`ecspilot.stopping.incidents`."""

from __future__ import annotations

from ecspilot.aws.freezes import FreezeStore
from ecspilot.aws.notify import Notifier
from ecspilot.domain.stops import Stops, stops_for
from ecspilot.interfaces.runtime import Runtime
from ecspilot.promotion.timer import TimerTarget
from ecspilot.stopping.deferral import Deferrals


def deferrals_of(runtime: Runtime) -> Deferrals:
    """The invocation's stops (config, CLI and incident freezes, windows) and their effects."""
    settings = runtime.settings
    store = FreezeStore(runtime.history)
    config = runtime.config

    def load() -> Stops:
        return stops_for(config, store.read(config.incidents), runtime.clock())

    timer = None
    if settings.reconcile_arn and settings.scheduler_role_arn:
        timer = TimerTarget(settings.reconcile_arn, settings.scheduler_role_arn, settings.schedule_group)
    return Deferrals(
        load,
        store,
        Notifier(runtime.clients, settings.notify_topic_arn),
        runtime.clients,
        timer,
        runtime.clock,
    )
