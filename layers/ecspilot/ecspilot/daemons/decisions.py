"""The daemons' pure decisions: desired (config) x observed (AWS) -> create, update, in-sync,
conflict or error, and the exact AWS requests that carry them out (table-tested, no AWS).

A same-named service (or managed daemon) that is not ecspilot's (tags ``ecspilot:managed=true``,
``ecspilot:daemon=NAME``) is a conflict and never changed; a DAEMON service never gets a desired
count nor a placement strategy; an update sends only what drifted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field
from typing import Any

from ecspilot.domain.config import ClusterTag
from ecspilot.domain.plan import Change
from ecspilot.domain.taskdef import family_revision
from ecspilot.records import dataclass

MANAGED_TAG = "ecspilot:managed"
DAEMON_TAG = "ecspilot:daemon"
# What ecspilot sent as placement constraints, for when ECS does not return them (moto drops them
# from CreateService's answer); when DescribeServices returns ``placementConstraints``, those win.
PLACEMENT_TAG = "ecspilot:placement"
KIND_SERVICE = "daemon"
KIND_MANAGED = "managed-daemon"

Constraint = tuple[str, str]  # (type, expression)


# --- what is wanted, what is there, and the decision --------------------------------------------


@dataclass(frozen=True)
class Desired:
    """One daemon on one cluster, as the config wants it (task definition resolved to an ARN)."""

    daemon: str
    cluster: str
    cluster_arn: str
    name: str  # the ECS service name, or the managed daemon's name
    task_definition: str
    constraints: tuple[Constraint, ...] = ()
    capacity_providers: tuple[str, ...] | None = None  # ARNs; None: a DAEMON service

    @property
    def managed(self) -> bool:
        return self.capacity_providers is not None


@dataclass(frozen=True)
class Observed:
    """What AWS reports for the same-named service (or managed daemon) on the cluster."""

    arn: str
    status: str
    tags: Mapping[str, str] = field(default_factory=dict)
    task_definition: str = ""
    scheduling_strategy: str = "DAEMON"
    constraints: tuple[Constraint, ...] | None = None  # None: not returned by ECS
    capacity_providers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """What to do about one daemon on one cluster, and which fields drifted."""

    change: Change
    detail: str
    task_definition: bool = False
    constraints: bool = False
    capacity_providers: bool = False


def normalize_constraints(items: Iterable[Mapping[str, Any]]) -> tuple[Constraint, ...]:
    """ECS placement constraints as a sorted tuple: ECS applies all of them, order means nothing."""
    return tuple(sorted((str(c.get("type", "")), str(c.get("expression") or "")) for c in items))


def constraints_fingerprint(constraints: Sequence[Constraint]) -> str:
    """A short, tag-safe digest of the constraints (tag values are at most 256 characters)."""
    text = json.dumps(sorted(constraints), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def daemon_tags(desired: Desired) -> list[dict[str, str]]:
    """The tags that make a service (or managed daemon) ecspilot's, and record what was sent."""
    tags = [{"key": MANAGED_TAG, "value": "true"}, {"key": DAEMON_TAG, "value": desired.daemon}]
    if not desired.managed:
        tags.append({"key": PLACEMENT_TAG, "value": constraints_fingerprint(desired.constraints)})
    return tags


def ownership_problem(desired: Desired, observed: Observed) -> str:
    """Why an existing service is not ecspilot's to change for this daemon, or ''."""
    what = "daemon" if desired.managed else "service"
    if observed.tags.get(MANAGED_TAG) != "true":
        return f"{what} {desired.name} exists and was not created by ecspilot (no {MANAGED_TAG}=true tag)"
    owner = observed.tags.get(DAEMON_TAG, "")
    if owner != desired.daemon:
        return (
            f"{what} {desired.name} belongs to ecspilot daemon {owner or '(unnamed)'}, not {desired.daemon}"
        )
    if not desired.managed and observed.scheduling_strategy != "DAEMON":
        return f"service {desired.name} is a {observed.scheduling_strategy} service, not a DAEMON"
    return ""


def plan(desired: Desired, observed: Observed | None) -> Decision:
    """Decide for one daemon on one cluster (pure): create, update, in-sync, conflict or error."""
    td = family_revision(desired.task_definition)
    if observed is None:
        return Decision("create", f"missing: create with {td}")
    if observed.status == "INACTIVE":
        return Decision("create", f"INACTIVE: create again with {td}")
    problem = ownership_problem(desired, observed)
    if problem:
        return Decision("conflict", problem + "; left alone")
    if observed.status != "ACTIVE":
        return Decision(
            "error", f"{observed.status}: ECS takes a new one once it is gone; a later reconcile creates it"
        )
    drift: list[str] = []
    td_drift = observed.task_definition != desired.task_definition
    if td_drift:
        drift.append(f"task definition {family_revision(observed.task_definition)} -> {td}")
    if observed.constraints is not None:
        constraints_drift = observed.constraints != tuple(sorted(desired.constraints))
    else:
        recorded = observed.tags.get(PLACEMENT_TAG)
        constraints_drift = recorded is not None and recorded != constraints_fingerprint(desired.constraints)
    if constraints_drift:
        drift.append("placement constraints")
    cp_drift = desired.managed and set(observed.capacity_providers) != set(desired.capacity_providers or ())
    if cp_drift:
        drift.append("capacity providers")
    if drift:
        return Decision("update", "; ".join(drift), td_drift, constraints_drift, cp_drift)
    return Decision("in-sync", f"runs {td}")


def create_service_params(desired: Desired) -> dict[str, Any]:
    """``CreateService`` for a DAEMON service: never a desired count, never a placement strategy."""
    params: dict[str, Any] = {
        "cluster": desired.cluster,
        "serviceName": desired.name,
        "taskDefinition": desired.task_definition,
        "schedulingStrategy": "DAEMON",
        "launchType": "EC2",
        "tags": daemon_tags(desired),
    }
    if desired.constraints:
        params["placementConstraints"] = [{"type": t, "expression": e} for t, e in desired.constraints]
    return params


def update_service_params(desired: Desired, decision: Decision) -> dict[str, Any]:
    """``UpdateService`` with only what drifted; never a desired count."""
    params: dict[str, Any] = {"cluster": desired.cluster, "service": desired.name}
    if decision.task_definition:
        params["taskDefinition"] = desired.task_definition
    if decision.constraints:
        # an empty list removes every constraint, which is what an empty config list means
        params["placementConstraints"] = [{"type": t, "expression": e} for t, e in desired.constraints]
    return params


def create_daemon_params(desired: Desired) -> dict[str, Any]:
    """``CreateDaemon`` (Managed Daemons API) for a daemon on Managed Instances capacity providers."""
    return {
        "daemonName": desired.name,
        "clusterArn": desired.cluster_arn,
        "daemonTaskDefinitionArn": desired.task_definition,
        "capacityProviderArns": list(desired.capacity_providers or ()),
        "tags": daemon_tags(desired),
    }


def update_daemon_params(desired: Desired, observed: Observed) -> dict[str, Any]:
    """``UpdateDaemon`` takes the whole desired revision: task definition and capacity providers."""
    return {
        "daemonArn": observed.arn,
        "daemonTaskDefinitionArn": desired.task_definition,
        "capacityProviderArns": list(desired.capacity_providers or ()),
    }


def capacity_provider_arn(cluster_arn: str, name_or_arn: str) -> str:
    """A capacity provider ARN in the cluster's account and region (an ARN is kept)."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    prefix = cluster_arn.split(":cluster/", 1)[0]
    return f"{prefix}:capacity-provider/{name_or_arn}"


def tag_matches(tags: Mapping[str, str], selector: ClusterTag | None) -> bool:
    """True when a cluster's tags satisfy ``cluster_tag`` (no selector: every cluster)."""
    if selector is None:
        return True
    if selector.key not in tags:
        return False
    return selector.value is None or tags[selector.key] == selector.value


def tag_map(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(t.get("key", "")): str(t.get("value", "")) for t in tags or ()}


def last_segment(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]
