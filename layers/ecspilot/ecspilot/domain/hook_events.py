"""The ``ECS Hook State Change`` event (a deployment paused at a PAUSE lifecycle hook).

ECS emits it with the event name ``HOOK_AWAITING_ACTION`` when a service deployment reaches a
lifecycle stage with a pause hook; the deployment waits for ``ContinueServiceDeployment`` with
the hook's id (or the hook's timeout). The detail names the hook (``hookId``), the service
deployment (``serviceDeploymentArn``, also in ``resources``) and the stage (``lifecycleStage``);
unknown keys are ignored, and the service deployment ARN is taken from ``resources`` when the
detail lacks it. Sample: ``events/ecs_hook_awaiting_action.json``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from ecspilot.domain.envelope import EventBridgeEvent, EventModel

AWAITING_ACTION = "HOOK_AWAITING_ACTION"


class EcsHookDetail(EventModel):
    event_type: str = Field(default="", alias="eventType")
    event_name: str = Field(alias="eventName", min_length=1)
    hook_id: str = Field(alias="hookId", min_length=1)
    service_deployment_arn: str = Field(default="", alias="serviceDeploymentArn")
    lifecycle_stage: str = Field(default="", alias="lifecycleStage")
    target_type: str = Field(default="PAUSE", alias="targetType")
    expires_at: datetime | None = Field(default=None, alias="expiresAt")
    timeout_action: str = Field(default="", alias="timeoutAction")


class EcsHookStateChangeEvent(EventBridgeEvent):
    """EventBridge ``ECS Hook State Change`` event."""

    detail_type: Literal["ECS Hook State Change"] = Field(alias="detail-type")
    source: Literal["aws.ecs"]
    resources: list[str] = Field(default_factory=list)
    detail: EcsHookDetail

    @model_validator(mode="after")
    def _deployment(self) -> EcsHookStateChangeEvent:
        if not self.deployment_arn:
            raise ValueError("no service deployment ARN (detail.serviceDeploymentArn or resources)")
        parts = self.deployment_arn.split(":", 5)[-1].split("/")
        if len(parts) != 4 or parts[0] != "service-deployment":
            raise ValueError(f"{self.deployment_arn!r} is not a service deployment ARN")
        return self

    @property
    def deployment_arn(self) -> str:
        """The paused service deployment's ARN."""
        if self.detail.service_deployment_arn:
            return self.detail.service_deployment_arn
        return next((r for r in self.resources if ":service-deployment/" in r), "")

    @property
    def cluster_service(self) -> tuple[str, str]:
        """``(cluster, service)`` from ``...:service-deployment/<cluster>/<service>/<id>``."""
        parts = self.deployment_arn.split(":", 5)[-1].split("/")
        return parts[1], parts[2]
