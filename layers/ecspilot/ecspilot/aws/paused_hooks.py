"""ECS's own view of paused deployments: ECS is the truth, the hook records are copies.

A deployment paused at a pause hook is a service deployment ECS lists as IN_PROGRESS
(``ListServiceDeployments``, ``status=[IN_PROGRESS]``) whose ``lifecycleHookDetails``
(``DescribeServiceDeployments``) hold a hook with ``targetType`` PAUSE and ``status``
AWAITING_ACTION. The hook's ``expiresAt`` and ``timeoutAction`` are read here (the
``ECS Hook State Change`` event carries neither ``timeoutAction`` nor ``targetType``); the stage
is the service deployment's ``lifecycleStage``. A hook ECS shows SUCCEEDED or FAILED was
answered (CONTINUE / ROLLBACK, by anyone: the console too), TIMED_OUT took its timeout action.

moto implements none of these calls: tests answer them with botocore's Stubber. Every failure
raises :class:`~ecspilot.errors.ServiceDeploymentError` from the botocore error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ecspilot.aws.service_deployments import list_service_deployments, raw_service_deployments
from ecspilot.records import dataclass

AWAITING = "AWAITING_ACTION"
#: a hook's final status in ECS -> the answer it amounts to
ANSWERED = {"SUCCEEDED": "CONTINUE", "FAILED": "ROLLBACK"}


@dataclass(frozen=True)
class EcsHook:
    """One lifecycle hook of a service deployment, as DescribeServiceDeployments shows it."""

    deployment_arn: str
    hook_id: str
    status: str
    target_type: str = ""
    lifecycle_stage: str = ""
    expires_at: datetime | None = None
    timeout_action: str = ""

    @property
    def cluster_service(self) -> tuple[str, str]:
        parts = self.deployment_arn.split(":", 5)[-1].split("/")
        return (parts[1], parts[2]) if len(parts) == 4 else ("", "")

    @property
    def awaiting(self) -> bool:
        """Paused at a pause hook, waiting for ContinueServiceDeployment."""
        return self.status == AWAITING and self.target_type in ("", "PAUSE")


def hooks_of(raw: Mapping[str, Any]) -> list[EcsHook]:
    """The lifecycle hooks of one ``serviceDeployments[]`` entry (pure; absent fields empty)."""
    arn = str(raw.get("serviceDeploymentArn") or "")
    stage = str(raw.get("lifecycleStage") or "")
    return [
        EcsHook(
            deployment_arn=arn,
            hook_id=str(h.get("hookId") or ""),
            status=str(h.get("status") or ""),
            target_type=str(h.get("targetType") or ""),
            lifecycle_stage=stage,
            expires_at=h.get("expiresAt"),
            timeout_action=str(h.get("timeoutAction") or ""),
        )
        for h in raw.get("lifecycleHookDetails") or []
        if h.get("hookId")
    ]


def deployment_hooks(ecs: Any, arns: Sequence[str]) -> dict[str, list[EcsHook]]:
    """The lifecycle hooks of the service deployments at ``arns``, by ARN (20 ARNs per call);
    a deployment ECS does not find is left out."""
    return {
        str(raw.get("serviceDeploymentArn") or ""): hooks_of(raw)
        for raw in raw_service_deployments(ecs, arns)
    }


def paused_hooks(ecs: Any, cluster: str, service: str) -> list[EcsHook]:
    """The service's hooks awaiting an answer, per ECS: its IN_PROGRESS service deployments
    (ListServiceDeployments), their hooks AWAITING_ACTION (DescribeServiceDeployments); newest
    deployment first. No IN_PROGRESS deployment: no Describe call."""
    briefs = list_service_deployments(ecs, cluster, service, statuses=["IN_PROGRESS"])
    if not briefs:
        return []
    hooks = deployment_hooks(ecs, [b.arn for b in briefs])
    return [h for b in briefs for h in hooks.get(b.arn, []) if h.awaiting]


def hook_in_ecs(ecs: Any, deployment_arn: str, hook_id: str) -> EcsHook | None:
    """The hook as ECS shows it now, or None when ECS knows no such deployment or hook."""
    hooks = deployment_hooks(ecs, [deployment_arn]).get(deployment_arn, [])
    return next((h for h in hooks if h.hook_id == hook_id), None)
