"""What a push did: an outcome per service and job, as the handler returns it and logs it."""

from __future__ import annotations

from dataclasses import asdict, field
from typing import Any, Literal

from ecspilot.domain.config import ServiceConfig
from ecspilot.domain.images import ImagePush
from ecspilot.domain.taskdef import family_revision
from ecspilot.errors import EcspilotError
from ecspilot.obs import count, logger
from ecspilot.records import dataclass

Outcome = Literal[
    "deployed",
    "would-deploy",
    "unchanged",
    "stale",
    "held",
    "continued",
    "failed",
    "refused",
    "conflict",  # issue 27: an equal version from another digest
    "awaiting approval",  # issue 27: a jump beyond allow, a prerelease
    "deferred",  # issue 27: the image's signature is IN_PROGRESS
]


@dataclass
class ServiceOutcome:
    """What happened (or, in a dry run, would happen) to one configured service."""

    name: str
    cluster: str
    service: str
    containers: list[str]
    outcome: Outcome = "failed"
    from_task_definition: str = ""
    to_task_definition: str = ""
    deployment_id: str = ""
    reason: str = ""
    until: str = ""  # deferred (issue 25): when it deploys (empty: when a person or the alarms decide)


@dataclass
class Target:
    """A configured service in the runbook: its outcome so far and, once described, the service."""

    config: ServiceConfig
    outcome: ServiceOutcome
    service: dict[str, Any] | None = None
    # the service's name in the state table's keys, when not its ECS name: a service in another
    # account or region (a promotion target) is keyed ``<service>@<account>:<region>``, so two
    # accounts' services of the same cluster and name never share records, claims or holds
    state_service: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """``(cluster, service)`` as the state table keys this service."""
        return (self.config.cluster, self.state_service or self.config.service_name)


@dataclass
class JobOutcome:
    """What a push did to a job's task definition family (jobs follow pushes: no service to update)."""

    job: str
    family: str
    containers: list[str]
    outcome: Literal["registered", "would-register", "unchanged", "stale", "held", "failed"] = "failed"
    from_task_definition: str = ""
    to_task_definition: str = ""
    reason: str = ""


@dataclass
class PushResult:
    """The result of one push: an outcome per matched service, and the revisions registered."""

    push: ImagePush
    dry_run: bool
    outcomes: list[ServiceOutcome] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    jobs: list[JobOutcome] = field(default_factory=list)
    record_errors: list[EcspilotError] = field(default_factory=list)
    continued_in: str = ""  # the rollout id the continued services were sent on with

    def by_outcome(self, outcome: Outcome) -> list[ServiceOutcome]:
        return [o for o in self.outcomes if o.outcome == outcome]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the handler's response)."""
        return {
            "repository": self.push.repository,
            "tag": self.push.tag,
            "digest": self.push.digest,
            "dry_run": self.dry_run,
            "registered": self.registered,
            "services": [asdict(o) for o in self.outcomes],
            "jobs": [asdict(j) for j in self.jobs],
            "continued_in": self.continued_in,
        }


def report(result: PushResult, log: dict[str, str]) -> None:
    """One log line per service and job a push touched, and the push's metrics."""
    for o in result.outcomes:
        _log_outcome(
            "service",
            o.outcome,
            o.from_task_definition,
            o.to_task_definition,
            o.reason,
            {"cluster": o.cluster, "ecs_service": o.service, **log},
        )
    count("DeploymentsStarted", len(result.by_outcome("deployed")))
    count(
        "DeploymentsSkipped",
        sum(
            o.outcome in ("unchanged", "stale", "held", "conflict", "awaiting approval")
            for o in result.outcomes
        ),
    )
    count("DeploymentErrors", len(result.by_outcome("failed")))
    count("DeploymentsDeferred", len(result.by_outcome("deferred")))
    for j in result.jobs:
        _log_outcome(
            "job",
            j.outcome,
            j.from_task_definition,
            j.to_task_definition,
            j.reason,
            {"job": j.job, **log},
        )
    if result.jobs:
        count("JobImagesRegistered", sum(j.outcome == "registered" for j in result.jobs))


def _log_outcome(
    what: str, outcome: str, source: str, target: str, reason: str, keys: dict[str, Any]
) -> None:
    """One log line per service or job a push touched."""
    logger.info(
        f"{what} {outcome}",
        extra={
            **keys,
            "outcome": outcome,
            "from_task_definition": family_revision(source),
            "task_definition": family_revision(target),
            "reason": reason,
        },
    )
