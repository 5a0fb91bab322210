"""Typed models of the events ecspilot's functions receive.

Parsing failures raise :class:`EventError` naming the field, never a KeyError.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pydantic import Field, field_validator
else:
    from ecspilot.domain.modeling import Field, field_validator

from ecspilot.domain.envelope import EventBridgeEvent, EventModel
from ecspilot.domain.images import DIGEST_RE, ImagePush, valid_repository, valid_tag


class EcrImageActionDetail(EventModel):
    result: str
    repository_name: str = Field(alias="repository-name", min_length=1)
    image_digest: str = Field(alias="image-digest")
    action_type: str = Field(alias="action-type")
    image_tag: str = Field(default="", alias="image-tag")

    @field_validator("image_digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not DIGEST_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not a sha256 digest")
        return value

    @field_validator("image_tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        if value and not valid_tag(value):
            raise ValueError(f"{value!r} is not an ECR image tag")
        return value

    @field_validator("repository_name")
    @classmethod
    def _repository(cls, value: str) -> str:
        if not valid_repository(value):
            raise ValueError(f"{value!r} is not an ECR repository name")
        return value


class EcrImageActionEvent(EventBridgeEvent):
    """EventBridge ``ECR Image Action`` event."""

    detail_type: Literal["ECR Image Action"] = Field(alias="detail-type")
    source: Literal["aws.ecr"]
    detail: EcrImageActionDetail

    def ignore_reason(self) -> str | None:
        """Why this event triggers nothing, or None when it is a tagged, successful push."""
        if self.detail.action_type != "PUSH":
            return f"action {self.detail.action_type} is not a push"
        if self.detail.result != "SUCCESS":
            return f"push result is {self.detail.result}"
        if not self.detail.image_tag:
            return "untagged image (a platform manifest of a multi-arch push, or a push by digest)"
        return None

    def to_push(self) -> ImagePush:
        return ImagePush(
            account=self.account,
            region=self.region,
            repository=self.detail.repository_name,
            tag=self.detail.image_tag,
            digest=self.detail.image_digest,
            event_id=self.id,
            time=self.time,
        )


# --- events that trigger reconcile -----------------------------------------------------------


class EventBridgeEnvelope(EventBridgeEvent):
    """Any EventBridge event: its envelope, with the detail-type and source it must carry."""

    detail_type: str = Field(alias="detail-type", min_length=1)
    source: str = Field(min_length=1)


class CloudTrailDetail(EventModel):
    event_source: str = Field(alias="eventSource", min_length=1)
    event_name: str = Field(alias="eventName", min_length=1)


class CloudTrailApiCallEvent(EventBridgeEnvelope):
    """EventBridge ``AWS API Call via CloudTrail`` event (reconcile's drift triggers)."""

    detail_type: Literal["AWS API Call via CloudTrail"] = Field(alias="detail-type")
    detail: CloudTrailDetail


# --- ECS events the tracker receives (AWS documentation shapes) ------------------------------


class EcsDeploymentDetail(EventModel):
    event_type: str = Field(default="", alias="eventType")
    event_name: str = Field(alias="eventName", min_length=1)
    deployment_id: str = Field(alias="deploymentId", min_length=1)
    updated_at: datetime | None = Field(default=None, alias="updatedAt")
    reason: str = ""


class EcsDeploymentStateChangeEvent(EventBridgeEvent):
    """EventBridge ``ECS Deployment State Change`` event; ``resources[0]`` is the service ARN."""

    detail_type: Literal["ECS Deployment State Change"] = Field(alias="detail-type")
    source: Literal["aws.ecs"]
    resources: list[str] = Field(min_length=1)
    detail: EcsDeploymentDetail

    @property
    def service_arn(self) -> str:
        return self.resources[0]

    @property
    def at(self) -> datetime:
        """When the deployment changed state (``updatedAt``, else the event's time)."""
        return self.detail.updated_at or self.time


class EcsContainerState(EventModel):
    name: str
    exit_code: int | None = Field(default=None, alias="exitCode")
    last_status: str = Field(default="", alias="lastStatus")
    reason: str = ""
    image: str = ""
    image_digest: str = Field(default="", alias="imageDigest")


class EcsTaskDetail(EventModel):
    task_arn: str = Field(alias="taskArn", min_length=1)
    cluster_arn: str = Field(alias="clusterArn", min_length=1)
    task_definition_arn: str = Field(default="", alias="taskDefinitionArn")
    last_status: str = Field(alias="lastStatus")
    started_by: str = Field(default="", alias="startedBy")
    group: str = ""
    stop_code: str = Field(default="", alias="stopCode")
    stopped_reason: str = Field(default="", alias="stoppedReason")
    containers: list[EcsContainerState] = Field(default_factory=list)
    created_at: datetime | None = Field(default=None, alias="createdAt")
    started_at: datetime | None = Field(default=None, alias="startedAt")
    stopped_at: datetime | None = Field(default=None, alias="stoppedAt")


class EcsTaskStateChangeEvent(EventBridgeEvent):
    """EventBridge ``ECS Task State Change`` event."""

    detail_type: Literal["ECS Task State Change"] = Field(alias="detail-type")
    source: Literal["aws.ecs"]
    detail: EcsTaskDetail
