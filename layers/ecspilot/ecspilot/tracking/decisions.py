"""The tracker's pure decisions (table-tested, no AWS): which status an ECS event reports, the
moves a record may make (:data:`DEPLOYMENT_MOVES`: only forward, terminal states are final), a
stopped job's outcome, durations and metric dimensions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from ecspilot.domain.config import EcspilotConfig
from ecspilot.domain.events import EcsContainerState

DeploymentStatus = Literal["IN_PROGRESS", "COMPLETED", "FAILED", "ROLLED_BACK"]
RunStatus = Literal["SUCCEEDED", "FAILED", "STOPPED"]

#: status -> the statuses a record may hold for the move to be allowed
DEPLOYMENT_MOVES: dict[str, tuple[str, ...]] = {
    "IN_PROGRESS": (),
    "COMPLETED": ("IN_PROGRESS",),
    "FAILED": ("IN_PROGRESS",),
    "ROLLED_BACK": ("IN_PROGRESS", "FAILED"),
}
OPEN_RUN = ("PENDING", "RUNNING")
HOLDING = ("FAILED", "ROLLED_BACK")  # a digest that ended so is never deployed there again
EVENT_STATUS: dict[str, DeploymentStatus] = {
    "SERVICE_DEPLOYMENT_IN_PROGRESS": "IN_PROGRESS",
    "SERVICE_DEPLOYMENT_COMPLETED": "COMPLETED",
    "SERVICE_DEPLOYMENT_FAILED": "FAILED",
}
ROLLBACK_RE = re.compile(r"rolling back to deploymentId (?P<target>ecs-svc/[\w-]+)")
OTHER = "other"  # the one dimension value shared by everything outside the config
DEPLOYMENT_METRIC = {
    "COMPLETED": "DeploymentsSucceeded",
    "FAILED": "DeploymentsFailed",
    "ROLLED_BACK": "DeploymentsRolledBack",
}


def parse_service_arn(arn: str) -> tuple[str, str]:
    """``(cluster, service)`` from a service ARN; the old ARN format has no cluster (``default``)."""
    resource = arn.split(":", 5)[-1]
    parts = resource.split("/")
    if len(parts) >= 3:
        return parts[1], parts[2]
    return "default", parts[-1]


def cluster_name(cluster_arn: str) -> str:
    return cluster_arn.rsplit("/", 1)[-1]


def rollback_target(reason: str) -> str | None:
    """The deployment a circuit-breaker rollback returns to, from the event's reason."""
    match = ROLLBACK_RE.search(reason)
    return match.group("target") if match else None


def deployment_status(event_name: str) -> DeploymentStatus | None:
    """The record status an ECS deployment event reports, or None for an event we do not track."""
    return EVENT_STATUS.get(event_name)


def run_outcome(
    containers: Sequence[EcsContainerState], stop_code: str, stopped_reason: str, essential: set[str] | None
) -> tuple[RunStatus, str]:
    """The outcome of a stopped job task, and a reason a person can read.

    A task stopped on request (``UserInitiated``: ``ecspilot run`` replacing it, a person) is
    STOPPED. Otherwise it SUCCEEDED when every essential container exited 0 (sidecars killed
    when the essential container exits do not count); ``essential`` None means every container.
    """
    if stop_code == "UserInitiated":
        return "STOPPED", stopped_reason or "stopped on request"
    judged = [c for c in containers if essential is None or c.name in essential] or list(containers)
    if not judged:
        return "FAILED", stopped_reason or stop_code or "the task had no containers"
    never = [c for c in judged if c.exit_code is None]
    if never:
        why = never[0].reason or stopped_reason or stop_code
        return "FAILED", f"container {never[0].name} did not run to an exit: {why}"
    bad = [c for c in judged if c.exit_code != 0]
    if bad:
        codes = ", ".join(f"{c.name} exited {c.exit_code}" for c in bad)
        return "FAILED", f"{codes} ({stopped_reason or stop_code})"
    return "SUCCEEDED", "every essential container exited 0"


def duration_seconds(start: str | datetime | None, end: datetime | None) -> int | None:
    """Whole seconds from ``start`` (an ISO string or datetime) to ``end``; None when unknown."""
    if start is None or end is None or start == "":
        return None
    if isinstance(start, str):
        try:
            start = datetime.fromisoformat(start.replace("Z", "+00:00"))
        except ValueError:
            return None
    return max(0, round((end - start).total_seconds()))


def iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def service_dimensions(config: EcspilotConfig, cluster: str, service: str) -> dict[str, str]:
    """Metric dimensions of a service: its own for configured services, one shared value otherwise."""
    if any(s.cluster == cluster and s.service_name == service for s in config.services):
        return {"Cluster": cluster, "Service": service}
    return {"Cluster": OTHER, "Service": OTHER}


def job_dimensions(config: EcspilotConfig, job: str) -> dict[str, str]:
    return {"Job": job if config.job(job) is not None else OTHER}
