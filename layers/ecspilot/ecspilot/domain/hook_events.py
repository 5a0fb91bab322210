"""The ``ECS Hook State Change`` event (a deployment lifecycle hook changed status).

ECS emits it with the event name ``HOOK_AWAITING_ACTION`` when a service deployment reaches a
lifecycle stage with a pause hook (``hookType: PAUSE``); the deployment waits for
``ContinueServiceDeployment`` with the hook's id (or the hook's timeout). Other names
(``HOOK_IN_PROGRESS``, ``HOOK_SUCCEEDED``, ``HOOK_FAILED``, ``HOOK_TIMED_OUT``) report progress.

The model takes AWS's published field set (ECS developer guide, "hook state change events"):
``eventType``, ``eventName``, ``hookId``, ``hookType``, ``expiresAt``, ``lifecycleStage``,
``clusterArn``, ``serviceArn``, ``serviceDeploymentArn``, ``updatedAt``. Only ``eventName`` and
``hookId`` are required, plus a service deployment ARN from ``detail.serviceDeploymentArn`` or
``resources`` (the published pause-hooks sample has no ``resources``); every other field may be
absent. ``targetType`` and ``timeoutAction`` are DescribeServiceDeployments'
``lifecycleHookDetails`` fields, not the event's: they are read from ECS
(:mod:`ecspilot.aws.paused_hooks`). Unknown keys are ignored. Sample:
``events/ecs_hook_awaiting_action.json``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pydantic import Field, model_validator
else:
    from ecspilot.domain.modeling import Field, model_validator

from ecspilot.domain.envelope import EventBridgeEvent, EventModel

AWAITING_ACTION = "HOOK_AWAITING_ACTION"


class EcsHookDetail(EventModel):
    event_type: str = Field(default="", alias="eventType")
    event_name: str = Field(alias="eventName", min_length=1)
    hook_id: str = Field(alias="hookId", min_length=1)
    hook_type: str = Field(default="", alias="hookType")
    service_deployment_arn: str = Field(default="", alias="serviceDeploymentArn")
    cluster_arn: str = Field(default="", alias="clusterArn")
    service_arn: str = Field(default="", alias="serviceArn")
    lifecycle_stage: str = Field(default="", alias="lifecycleStage")
    expires_at: datetime | None = Field(default=None, alias="expiresAt")
    updated_at: str = Field(default="", alias="updatedAt")  # nanoseconds: kept as AWS wrote it

    @property
    def is_pause(self) -> bool:
        """A pause hook (or one whose type the event does not say): answered with
        ContinueServiceDeployment. A Lambda hook is answered by its function, not by us."""
        return self.hook_type in ("", "PAUSE")


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
