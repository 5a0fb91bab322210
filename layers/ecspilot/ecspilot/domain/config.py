"""The config contract (``ecspilot.yaml``): typed models, loading and validation.

The keys are the users' interface (see DESIGN.md): fields may be added, none
renamed. :func:`load_config` reads the file named by ``ECSPILOT_CONFIG`` (via
Settings); every problem is reported with its path inside the file, such as
``services[2].containers.app.tags``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ecspilot.errors import ConfigError, PlacementError

# yaml, the placement rules (with the cluster query language parser) and the schedule
# expression checks are imported where they are used: a handler pays for them on its
# first config load only if the config has jobs or daemons (bench/coldstart.py).

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
# ECR tags are [A-Za-z0-9_.-]; patterns add fnmatch's * ? [ ] !
TAG_GLOB_RE = re.compile(r"^[A-Za-z0-9_.\-*?\[\]!]{1,128}$")
REPOSITORY_RE = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
OVERRIDE_FIELDS = ("command", "environment", "cpu", "memory")


class Model(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageSource(Model):
    """Where a container's image comes from: an ECR repository and tag patterns."""

    repository: str
    tags: list[str] = Field(default_factory=lambda: ["*"], min_length=1)

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        if not REPOSITORY_RE.fullmatch(value) or len(value) > 256:
            raise ValueError(f"{value!r} is not a valid ECR repository name")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not TAG_GLOB_RE.fullmatch(pattern):
                raise ValueError(
                    f"{pattern!r} is not a tag glob: use letters, digits, '_', '.', '-' and * ? [ ]"
                )
            if pattern.count("[") != pattern.count("]"):
                raise ValueError(f"{pattern!r} has an unbalanced '[' ']'")
        return value

    def matches(self, repository: str, tag: str) -> bool:
        """True when ``repository:tag`` is a push this source follows."""
        return repository == self.repository and any(fnmatch.fnmatchcase(tag, p) for p in self.tags)


class ServiceConfig(Model):
    """An ECS service rolled when a matching image is pushed."""

    name: str
    cluster: str
    service: str | None = None
    containers: dict[str, ImageSource] = Field(min_length=1)
    rollback: bool = False

    @property
    def service_name(self) -> str:
        """The ECS service name (defaults to the logical name)."""
        return self.service or self.name

    def containers_for(self, repository: str, tag: str) -> list[str]:
        """Names of this service's containers that follow ``repository:tag``."""
        return sorted(c for c, src in self.containers.items() if src.matches(repository, tag))


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
            if head not in OVERRIDE_FIELDS or (rest and head != "environment"):
                raise ValueError(
                    f"{item!r} cannot be allowed: use command, environment, environment.NAME, cpu or memory"
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
    concurrency: Literal["allow", "forbid", "replace"] = "forbid"
    queue: QueueConfig | None = None
    propagate_tags: Literal["TASK_DEFINITION", "NONE"] | None = "TASK_DEFINITION"
    enable_ecs_managed_tags: bool = True

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
    def is_fargate(self) -> bool:
        """True when the job runs on Fargate (launch type or a FARGATE* capacity provider)."""
        if self.launch_type == "FARGATE":
            return True
        strategy = self.capacity_provider_strategy or []
        return bool(strategy) and all(i.capacity_provider.startswith("FARGATE") for i in strategy)


class ClusterTag(Model):
    """Select clusters by a tag (with ``clusters: "*"``)."""

    key: str
    value: str | None = None


class DaemonConfig(Model):
    """A DAEMON service that must exist on clusters."""

    name: str
    clusters: list[str] | Literal["*"] = Field(min_length=1)
    cluster_tag: ClusterTag | None = None
    service: str | None = None
    task_definition: str
    placement_constraints: list[str] = Field(default_factory=list, max_length=10)
    capacity_providers: list[str] | None = Field(default=None, min_length=1)

    @field_validator("task_definition")
    @classmethod
    def _task_definition(cls, value: str) -> str:
        return JobConfig._task_definition(value)

    @field_validator("placement_constraints")
    @classmethod
    def _constraints(cls, value: list[str]) -> list[str]:
        from ecspilot.domain.placement import constraints_from_strings  # noqa: PLC0415 - daemons only

        try:
            constraints_from_strings(value)
        except PlacementError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @property
    def service_name(self) -> str:
        """The ECS service name (defaults to the logical name)."""
        return self.service or self.name


class EcspilotConfig(Model):
    """The whole config file."""

    version: Literal[1]
    services: list[ServiceConfig] = Field(default_factory=list)
    jobs: list[JobConfig] = Field(default_factory=list)
    daemons: list[DaemonConfig] = Field(default_factory=list)

    def services_for(self, repository: str, tag: str) -> list[tuple[ServiceConfig, list[str]]]:
        """Services following ``repository:tag``, each with its matching container names."""
        out = []
        for svc in self.services:
            containers = svc.containers_for(repository, tag)
            if containers:
                out.append((svc, containers))
        return out

    def jobs_for(self, repository: str, tag: str) -> list[tuple[JobConfig, list[str]]]:
        """Jobs whose containers follow ``repository:tag``."""
        out = []
        for job in self.jobs:
            containers = sorted(c for c, s in job.containers.items() if s.matches(repository, tag))
            if containers:
                out.append((job, containers))
        return out

    def job(self, name: str) -> JobConfig | None:
        """The job called ``name``, or None."""
        return next((j for j in self.jobs if j.name == name), None)


def _cross_check(config: EcspilotConfig) -> Iterator[tuple[str, str]]:
    """Problems no single entry can see: duplicate names, fighting sources."""
    for section in ("services", "jobs", "daemons"):
        seen: dict[str, int] = {}
        for i, entry in enumerate(getattr(config, section)):
            if not NAME_RE.fullmatch(entry.name):
                yield f"{section}[{i}].name", f"{entry.name!r} is not a valid name"
            if entry.name in seen:
                yield (
                    f"{section}[{i}].name",
                    f"duplicate name {entry.name!r} (first at {section}[{seen[entry.name]}])",
                )
            else:
                seen[entry.name] = i
    owners: dict[tuple[str, str, str], tuple[int, ImageSource]] = {}
    for i, svc in enumerate(config.services):
        for container, source in svc.containers.items():
            key = (svc.cluster, svc.service_name, container)
            if key in owners:
                first, _ = owners[key]
                yield (
                    f"services[{i}].containers.{container}",
                    f"container {container} of service {svc.cluster}/{svc.service_name} already has an "
                    f"image source at services[{first}]: two sources would fight over it",
                )
            else:
                owners[key] = (i, source)
    daemon_targets: dict[tuple[str, str], int] = {}
    for i, daemon in enumerate(config.daemons):
        if daemon.clusters == "*":
            continue
        for cluster in daemon.clusters:
            target = (cluster, daemon.service_name)
            if target in daemon_targets:
                yield (
                    f"daemons[{i}].service",
                    f"daemons[{daemon_targets[target]}] already manages {cluster}/{daemon.service_name}",
                )
            daemon_targets[target] = i
    for i, job in enumerate(config.jobs):
        if ":" in job.task_definition and job.containers:
            yield (
                f"jobs[{i}].containers",
                f"job {job.name} is pinned to {job.task_definition}: pushes cannot update a pinned revision",
            )


def format_loc(loc: Sequence[int | str]) -> str:
    """Turn a pydantic location tuple into ``services[2].containers.app.tags``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "list[str]", "PlacementSpec", "function-after[_launch(), JobConfig]"):
            continue  # union branch names add nothing for a reader
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_config(data: Any, source: str = "<config>") -> EcspilotConfig:
    """Validate a decoded config document; raise :class:`ConfigError` listing every problem."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the config must be a mapping with version, services, jobs, daemons")
    try:
        config = EcspilotConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            problems.append((format_loc(err["loc"]), msg))
        raise ConfigError(f"{source}: {len(problems)} problem(s)", problems) from exc
    problems = list(_cross_check(config))
    if problems:
        raise ConfigError(f"{source}: {len(problems)} problem(s)", problems)
    return config


def load_config(path: str | Path) -> EcspilotConfig:
    """Read and validate the YAML config at ``path``."""
    import yaml  # noqa: PLC0415 - only the config loader parses YAML

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_config(data, str(path))
