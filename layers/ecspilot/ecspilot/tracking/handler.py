"""The tracker's entry point: route an ECS event to the deployment or the run runbook. The one
module of the tracker that reads the process ``Runtime``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ecspilot.domain.envelope import parse_event
from ecspilot.domain.events import EcsDeploymentStateChangeEvent, EcsTaskStateChangeEvent
from ecspilot.errors import AwsError
from ecspilot.interfaces.origins import foreign_arn_reason, promotion_origins, untrusted_reason
from ecspilot.interfaces.runtime import Runtime
from ecspilot.tracking.deployments import DeploymentTracker

if TYPE_CHECKING:
    from ecspilot.domain.hook_events import EcsHookStateChangeEvent
    from ecspilot.domain.plan import Action
    from ecspilot.tracking.hooks import HookTracker

# A cold start imports what a deployment event (the most frequent) needs; the modules of the
# other kinds (hooks, tasks) and of reconcile's part are imported by the event that needs them.


def handle_ecs_event(event: Any, runtime: Runtime) -> dict[str, Any]:
    """The ``track_deployments`` flow: route an ECS event to the deployment or task runbook."""
    kind = event.get("detail-type") if isinstance(event, dict) else None
    parsed: EcsTaskStateChangeEvent | EcsDeploymentStateChangeEvent | EcsHookStateChangeEvent
    if kind == "ECS Hook State Change":  # pause hooks (issue 14): tracking/hooks.py
        from ecspilot.domain.hook_events import EcsHookStateChangeEvent  # noqa: PLC0415 - hooks only

        parsed = parse_event(EcsHookStateChangeEvent, event, "ECS Hook State Change")
    elif kind == "ECS Task State Change":
        parsed = parse_event(EcsTaskStateChangeEvent, event, "ECS Task State Change")
    else:
        parsed = parse_event(EcsDeploymentStateChangeEvent, event, "ECS Deployment State Change")
    # the configured accounts' deployment events too (issue 13: their promotions' records), and
    # their services' task stops (issue 16's crash loops); their hook and job events stay ignored
    service_task = isinstance(parsed, EcsTaskStateChangeEvent) and _service_task(parsed)
    member = isinstance(parsed, EcsDeploymentStateChangeEvent) or service_task
    accounts = promotion_origins(runtime.config) if member else []
    untrusted = untrusted_reason(
        runtime.settings, parsed.account, parsed.region, parsed.detail_type, accounts
    )
    untrusted = untrusted or foreign_arn_reason(event, parsed.account, parsed.region, parsed.detail_type)
    if untrusted:
        return {"ignored": untrusted}
    if not runtime.history.enabled:
        # the history is what the tracker keeps: failing makes the event land in the DLQ
        raise AwsError("no state table configured (ECSPILOT_TABLE): nothing to track into")
    if isinstance(parsed, EcsDeploymentStateChangeEvent):
        return deployment_tracker(runtime).deployment_event(parsed)
    if isinstance(parsed, EcsTaskStateChangeEvent):
        return _task_event(parsed, runtime, service_task)
    return hook_tracker(runtime).hook_event(parsed)


def hook_tracker(runtime: Runtime) -> HookTracker:
    """The pause hooks' tracker, for an event or for reconcile's hooks found from ECS: both ask
    the stops, so a gate never CONTINUEs by itself in a freeze or outside the window (issue 25)."""
    from ecspilot.stopping.handler import deferrals_of  # noqa: PLC0415 - hooks only
    from ecspilot.tracking.hooks import HookTracker  # noqa: PLC0415

    settings = runtime.settings
    hooks = HookTracker(runtime.config, runtime.clients, runtime.history, settings.notify_topic_arn)
    hooks.deferrals = deferrals_of(runtime)
    return hooks


def _service_task(parsed: EcsTaskStateChangeEvent) -> bool:
    from ecspilot.tracking.health_decisions import service_of_group  # noqa: PLC0415 - tasks only

    return bool(service_of_group(parsed.detail.group))


def _task_event(parsed: EcsTaskStateChangeEvent, runtime: Runtime, service_task: bool) -> dict[str, Any]:
    parts = (runtime.config, runtime.clients, runtime.history, runtime.settings.notify_topic_arn)
    if service_task:  # a service's task (issue 16): health, not a run
        from ecspilot.aws.accounts import sessions_of  # noqa: PLC0415 - service tasks only
        from ecspilot.tracking.health import ServiceHealthTracker  # noqa: PLC0415

        own = (runtime.settings.account_id, runtime.settings.region)
        sessions = sessions_of(runtime.clients, own[1], "track_deployments", runtime.settings.max_workers)
        return ServiceHealthTracker(*parts, own=own, sessions=sessions).task_event(parsed)
    from ecspilot.tracking.runs import RunTracker  # noqa: PLC0415 - job tasks only

    return RunTracker(*parts).task_event(parsed)


def deployment_tracker(runtime: Runtime) -> DeploymentTracker:
    """The deployment tracker of events and of reconcile's open deployments: a COMPLETED record
    starts the promotions of the services promoted from it."""

    def completed(record: Any) -> list[dict[str, Any]]:
        from ecspilot.promotion.handler import after_completed  # noqa: PLC0415 - promotions only

        return after_completed(runtime, record) if any(s.promote for s in runtime.config.services) else []

    parts = (runtime.config, runtime.clients, runtime.history, runtime.settings.notify_topic_arn)
    own = (runtime.settings.account_id, runtime.settings.region)
    return DeploymentTracker(*parts, own=own, on_completed=completed)


def reconcile_deployments(runtime: Runtime, dry_run: bool = False) -> list[Action]:
    """The reconcile part ``deployments``: open blue/green, linear and canary deployments moved to
    what ECS says (:mod:`ecspilot.tracking.open_deployments`), promotions included; then the
    paused hooks of gated services found from ECS (:mod:`ecspilot.tracking.paused_reconcile`)."""
    from ecspilot.tracking.open_deployments import reconcile_open  # noqa: PLC0415 - reconcile only
    from ecspilot.tracking.paused_reconcile import reconcile_paused  # noqa: PLC0415

    if not runtime.history.enabled:
        return []
    own = (runtime.settings.account_id, runtime.settings.region)
    actions = reconcile_open(deployment_tracker(runtime), own, runtime.settings.region or "", dry_run)
    # then the paused hooks ECS shows whose event never arrived (tracking/paused_reconcile.py)
    return actions + reconcile_paused(hook_tracker(runtime), dry_run)
