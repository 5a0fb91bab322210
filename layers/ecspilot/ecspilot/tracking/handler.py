"""The tracker's entry point: route an ECS event to the deployment or the run runbook. The one
module of the tracker that reads the process ``Runtime``."""

from __future__ import annotations

from typing import Any

from ecspilot.domain.envelope import parse_event
from ecspilot.domain.events import EcsDeploymentStateChangeEvent, EcsTaskStateChangeEvent
from ecspilot.errors import AwsError
from ecspilot.interfaces.origins import promotion_origins, untrusted_reason
from ecspilot.interfaces.runtime import Runtime
from ecspilot.tracking.deployments import DeploymentTracker
from ecspilot.tracking.runs import RunTracker


def handle_ecs_event(event: Any, runtime: Runtime) -> dict[str, Any]:
    """The ``track_deployments`` flow: route an ECS event to the deployment or task runbook."""
    kind = event.get("detail-type") if isinstance(event, dict) else None
    parsed: EcsTaskStateChangeEvent | EcsDeploymentStateChangeEvent
    if kind == "ECS Task State Change":
        parsed = parse_event(EcsTaskStateChangeEvent, event, "ECS Task State Change")
    else:
        parsed = parse_event(EcsDeploymentStateChangeEvent, event, "ECS Deployment State Change")
    untrusted = untrusted_reason(
        runtime.settings, parsed.account, parsed.region, parsed.detail_type, promotion_origins(runtime.config)
    )
    if untrusted:
        return {"ignored": untrusted}
    if not runtime.history.enabled:
        # the history is what the tracker keeps: failing makes the event land in the DLQ
        raise AwsError("no state table configured (ECSPILOT_TABLE): nothing to track into")
    parts = (runtime.config, runtime.clients, runtime.history, runtime.settings.notify_topic_arn)
    if isinstance(parsed, EcsTaskStateChangeEvent):
        return RunTracker(*parts).task_event(parsed)
    own = (runtime.settings.account_id, runtime.settings.region)

    def completed(record: Any) -> list[dict[str, Any]]:
        from ecspilot.promotion.handler import after_completed  # noqa: PLC0415 - promotions only

        return after_completed(runtime, record) if any(s.promote for s in runtime.config.services) else []

    return DeploymentTracker(*parts, own=own, on_completed=completed).deployment_event(parsed)
