"""The config's job models: network, overrides, queue, placement, retries and the job itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pydantic import Field, ValidationInfo, field_validator, model_validator
else:
    from ecspilot.domain.modeling import Field, ValidationInfo, field_validator, model_validator

from ecspilot.domain.config.base import NAME_RE, OVERRIDE_FIELDS, ImageSource, Model
from ecspilot.errors import PlacementError

# The placement rules (with the cluster query language parser) and the schedule expression
# checks are imported where they are used: a handler pays for them on its first config load
# only if the config has jobs (bench/coldstart.py).


class NetworkConfig(Model):
    """awsvpc network configuration of a job."""

    subnets: list[str] = Field(min_length=1, max_length=16)
    security_groups: list[str] = Field(default_factory=list, max_length=5)
    assign_public_ip: bool = False

    def as_api(self) -> dict[str, Any]:
        """The ``networkConfiguration`` RunTask takes."""
        vpc: dict[str, Any] = {
            "subnets": list(self.subnets),
            "assignPublicIp": "ENABLED" if self.assign_public_ip else "DISABLED",
        }
        if self.security_groups:
            vpc["securityGroups"] = list(self.security_groups)
        return {"awsvpcConfiguration": vpc}


class ContainerOverride(Model):
    """Overrides for one container of a job's task."""

    command: list[str] | None = None
    environment: dict[str, str] | None = None
    cpu: int | None = Field(default=None, ge=0)
    memory: int | None = Field(default=None, ge=4)


class JobOverrides(Model):
    """Task overrides applied to every run of a job."""

    containers: dict[str, ContainerOverride] = Field(default_factory=dict)
    cpu: str | None = None
    memory: str | None = None


class QueueConfig(Model):
    """A job that accepts queue messages, and what a message may override."""

    allow: list[str] = Field(default_factory=list)
    max_running: int | None = Field(default=None, ge=1)
    max_count: int = Field(default=10, ge=1, le=100)
    max_cpu: int | None = Field(default=None, ge=0)  # bounds a message's cpu override (CPU units)
    max_memory: int | None = Field(default=None, ge=4)  # bounds a message's memory override (MiB)

    @field_validator("allow")
    @classmethod
    def _allow(cls, value: list[str]) -> list[str]:
        for item in value:
            head, _, rest = item.partition(".")
            if head not in (*OVERRIDE_FIELDS, "container") or (rest and head != "environment"):
                raise ValueError(
                    f"{item!r} cannot be allowed: use command, environment, environment.NAME, cpu, "
                    "memory or container"
                )
        return value


class CapacityProviderItem(Model):
    """One entry of a capacity provider strategy."""

    capacity_provider: str
    weight: int = Field(default=1, ge=0, le=1000)
    base: int = Field(default=0, ge=0, le=100000)


class RetryPolicy(Model):
    """EventBridge Scheduler retry policy of a scheduled job."""

    maximum_event_age_seconds: int = Field(default=3600, ge=60, le=86400)
    maximum_retry_attempts: int = Field(default=3, ge=0, le=185)


class PlacementSpec(Model):
    """Custom placement in ECS's own shapes."""

    strategy: list[dict[str, Any]] = Field(default_factory=list)
    constraints: list[dict[str, Any]] = Field(default_factory=list)


class JobConfig(Model):
    """ECS task(s) run on a schedule, on demand, or from the queue."""

    name: str
    cluster: str
    task_definition: str
    launch_type: Literal["EC2", "FARGATE", "EXTERNAL"] | None = None
    capacity_provider_strategy: list[CapacityProviderItem] | None = Field(default=None, max_length=20)
    platform_version: str | None = None
    count: int = Field(default=1, ge=1, le=1000)
    network: NetworkConfig | None = None
    placement: str | PlacementSpec | None = None
    overrides: JobOverrides = Field(default_factory=JobOverrides)
    containers: dict[str, ImageSource] = Field(default_factory=dict)
    schedule: str | None = None
    timezone: str = "UTC"
    flexible_window_minutes: int | None = Field(default=None, ge=1, le=1440)
    retry_policy: RetryPolicy | None = None
    enabled: bool = True
    # False: the schedule stays the user's (an EventBridge rule or Scheduler schedule `init` found);
    # ecspilot never creates, updates or deletes it
    adopt: bool = True
    concurrency: Literal["allow", "forbid", "replace"] = "forbid"
    queue: QueueConfig | None = None
    propagate_tags: Literal["TASK_DEFINITION", "NONE"] | None = "TASK_DEFINITION"
    enable_ecs_managed_tags: bool = True

    @field_validator("containers")
    @classmethod
    def _no_release_policy(cls, value: dict[str, ImageSource]) -> dict[str, ImageSource]:
        for name, source in value.items():
            if source.semver:
                raise ValueError(
                    f"{name}: order: semver is for services (a job follows every push it matches)"
                )
        return value

    @field_validator("task_definition")
    @classmethod
    def _task_definition(cls, value: str) -> str:
        family, sep, revision = value.partition(":")
        if not NAME_RE.fullmatch(family) or (sep and not revision.isdigit()):
            raise ValueError(f"{value!r} is not a family or family:revision")
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is not None:
            from ecspilot.domain import schedule_expr  # noqa: PLC0415 - only configs with schedules need it

            schedule_expr.validate_expression(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from ecspilot.domain import schedule_expr  # noqa: PLC0415 - only configs with jobs need it

        schedule_expr.validate_timezone(value)
        return value

    @field_validator("placement")
    @classmethod
    def _placement(
        cls, value: str | PlacementSpec | None, info: ValidationInfo
    ) -> str | PlacementSpec | None:
        # launch_type and capacity_provider_strategy come first in the model, so they are known
        # here and the problem is reported at jobs[N].placement.
        launch_type = info.data.get("launch_type")
        strategy = info.data.get("capacity_provider_strategy") or []
        fargate = launch_type == "FARGATE" or (
            bool(strategy) and all(i.capacity_provider.startswith("FARGATE") for i in strategy)
        )
        if value is not None:
            from ecspilot.domain.placement import resolve_placement  # noqa: PLC0415 - jobs with placement only

            try:
                resolve_placement(
                    value.model_dump() if isinstance(value, PlacementSpec) else value, fargate=fargate
                )
            except PlacementError as exc:
                raise ValueError(str(exc)) from exc
        return value

    @model_validator(mode="after")
    def _launch(self) -> JobConfig:
        if self.launch_type and self.capacity_provider_strategy:
            raise ValueError("launch_type and capacity_provider_strategy are exclusive: choose one")
        return self

    @property
    def owns_schedule(self) -> bool:
        """True when ecspilot keeps this job's schedule (it has one, and ``adopt`` is not false)."""
        return bool(self.schedule) and self.adopt

    @property
    def is_fargate(self) -> bool:
        """True when the job runs on Fargate (launch type or a FARGATE* capacity provider)."""
        if self.launch_type == "FARGATE":
            return True
        strategy = self.capacity_provider_strategy or []
        return bool(strategy) and all(i.capacity_provider.startswith("FARGATE") for i in strategy)
