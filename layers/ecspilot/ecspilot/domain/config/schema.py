"""The config file's schema: services, daemons and the whole file (jobs live in :mod:`.jobs`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pydantic import Field, StrictBool, ValidationInfo, field_validator
else:
    from ecspilot.domain.modeling import Field, ValidationInfo, field_validator

from ecspilot.domain.config.base import ImageSource, Model
from ecspilot.domain.config.gates import Gates
from ecspilot.domain.config.health import CrashLoopConfig
from ecspilot.domain.config.jobs import JobConfig
from ecspilot.domain.config.promotion import AccountConfig, PromoteConfig
from ecspilot.domain.config.stops import FreezeConfig, IncidentsConfig, WindowConfig
from ecspilot.errors import PlacementError


class ServiceConfig(Model):
    """An ECS service rolled when a matching image is pushed."""

    name: str
    cluster: str
    service: str | None = None
    account: str | None = None  # a key of the file's ``accounts``: lives in that account/region
    promote: PromoteConfig | None = None  # follows its source's proven releases, never a push
    # declared after ``promote``: whether containers are required depends on it
    containers: dict[str, ImageSource] = Field(default_factory=dict, validate_default=True)
    rollback: bool = False
    crash_loop: CrashLoopConfig | StrictBool = True  # see domain/config/health.py
    gates: Gates | None = None  # issue 14: domain/config/gates.py
    express: bool = False  # an ECS Express Mode service: UpdateExpressGatewayService on push
    window: str | None = None  # issue 25: automation changes it only inside this window

    @field_validator("express")
    @classmethod
    def _express(cls, value: bool, info: ValidationInfo) -> bool:
        if value and len(info.data.get("containers") or {}) != 1:
            raise ValueError("an Express Mode service has exactly one container (its primary container)")
        if value and any(src.semver for src in (info.data.get("containers") or {}).values()):
            raise ValueError("order: semver is not applied to Express Mode services (no revision to judge)")
        return value

    @field_validator("containers")
    @classmethod
    def _containers_or_promote(
        cls, value: dict[str, ImageSource], info: ValidationInfo
    ) -> dict[str, ImageSource]:
        if "promote" not in info.data:
            return value  # promote itself is invalid: its own error says so
        if info.data["promote"] is not None and value:
            raise ValueError("a service with promote has no containers of its own (it follows its source's)")
        if info.data["promote"] is None and not value:
            raise ValueError(
                "at least 1 item is required (a container and its image source) unless promote is set"
            )
        return value

    @property
    def service_name(self) -> str:
        """The ECS service name (defaults to the logical name)."""
        return self.service or self.name

    def containers_for(self, repository: str, tag: str) -> list[str]:
        """Names of this service's containers that follow ``repository:tag``."""
        return sorted(c for c, src in self.containers.items() if src.matches(repository, tag))


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
    window: str | None = None  # issue 25: reconcile updates it only inside this window

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
    accounts: dict[str, AccountConfig] = Field(default_factory=dict)
    windows: dict[str, WindowConfig] = Field(default_factory=dict)  # issue 25 (domain/stops.py)
    freezes: list[FreezeConfig] = Field(default_factory=list)
    incidents: IncidentsConfig | None = None

    def services_for(self, repository: str, tag: str) -> list[tuple[ServiceConfig, list[str]]]:
        """Services following ``repository:tag``, each with its matching container names."""
        out = []
        for svc in self.services:
            if svc.promote is not None:
                continue  # a promoted service is never deployed by a push nor by catch-up
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
