"""Typed models of the events ecspilot's functions receive.

Parsing failures raise :class:`EventError` naming the field, never a KeyError.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ecspilot.errors import EventError
from ecspilot.images import DIGEST_RE, ImagePush

M = TypeVar("M", bound=BaseModel)


class EventModel(BaseModel):
    """Events carry more keys than we read: ignore the rest, keep ours immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class EventBridgeEvent(EventModel):
    """The envelope every EventBridge event shares; subclasses add detail-type, source and detail."""

    id: str
    account: str = Field(pattern=r"^\d{12}$")
    region: str = Field(min_length=1)
    time: datetime


class EcrImageActionDetail(EventModel):
    result: str
    repository_name: str = Field(alias="repository-name", min_length=1)
    image_digest: str = Field(alias="image-digest")
    action_type: str = Field(alias="action-type")
    image_tag: str = Field(default="", alias="image-tag")

    @field_validator("image_digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not DIGEST_RE.match(value):
            raise ValueError(f"{value!r} is not a sha256 digest")
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


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(event)"


def parse_event(model: type[M], event: Any, kind: str) -> M:
    """Validate ``event`` as ``model``; raise :class:`EventError` naming the first bad field."""
    if not isinstance(event, dict):
        raise EventError(f"malformed {kind} event: expected a JSON object, got {type(event).__name__}")
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        problems = [f"{_field_path(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise EventError(
            f"malformed {kind} event: {'; '.join(problems)}", field=_field_path(exc.errors()[0]["loc"])
        ) from exc


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
