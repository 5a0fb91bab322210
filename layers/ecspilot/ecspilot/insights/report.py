"""The insights report: the four keys per service and per promotion chain. Pure.

A **chain** is a path of the config's ``promote.from`` links from a service with containers (its
first stage) to a promoted service nothing promotes from (its last stage): ``web-dev ->
web-staging -> web-prod``. A chain's keys are its last stage's (that is where a release reaches
its users) with the lead time measured from the push into the first stage; besides them, each
stage's own keys side by side, and the releases: the digests the first stage COMPLETED in the
period, and how many of them COMPLETED in the last stage (a release held back, blocked by a gate
or failed on the way never reaches it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ecspilot.domain.config import EcspilotConfig
from ecspilot.insights.bands import thresholds
from ecspilot.insights.keys import (
    Deployment,
    Period,
    completed_changes,
    four_keys,
    pooled_keys,
    pooled_weekly,
    push_times,
    weekly,
)

SCHEMA_VERSION = 1


def chains(config: EcspilotConfig) -> list[list[str]]:
    """Each promotion chain as its stages' names, first stage first (config order of the last)."""
    sources = {s.promote.source for s in config.services if s.promote is not None}
    by_name = {s.name: s for s in config.services}
    out = []
    for svc in config.services:
        if svc.promote is None or svc.name in sources:
            continue
        path = [svc.name]
        current = svc
        while current.promote is not None and current.promote.source in by_name:
            current = by_name[current.promote.source]
            if current.name in path:
                break  # a cycle: validation refuses it
            path.append(current.name)
        out.append(list(reversed(path)))
    return out


def selected(config: EcspilotConfig, names: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """The services to report (all when ``names`` is empty) and the chains that hold one of them."""
    wanted = list(names) or [s.name for s in config.services]
    return wanted, [c for c in chains(config) if set(c) & set(wanted)]


def to_deployments(items: Sequence[Mapping[str, Any]]) -> list[Deployment]:
    found = (Deployment.from_item(i) for i in items if i.get("type", "deployment") == "deployment")
    return sorted((d for d in found if d is not None), key=lambda d: d.started_at)


def chain_keys(
    stages: Sequence[str],
    deployments: Mapping[str, Sequence[Deployment]],
    period: Period,
    pushes: Mapping[str, Any],
) -> dict[str, Any]:
    """One chain's keys (see the module docstring)."""
    first, last = deployments.get(stages[0], []), deployments.get(stages[-1], [])
    released = {d.digest for d in completed_changes(first, period) if d.digest}
    arrived = {d.digest for d in last if d.status == "COMPLETED" and d.is_change}
    return {
        "name": " -> ".join(stages),
        "stages": [{"service": s, **four_keys(deployments.get(s, []), period, pushes)} for s in stages],
        **four_keys(last, period, pushes),
        "releases": {
            "started": len(released),
            "reached_last_stage": len(released & arrived),
            "not_reached": len(released - arrived),
        },
        "weekly": weekly(last, period, pushes),
    }


def build(
    config: EcspilotConfig,
    records: Mapping[str, Sequence[Mapping[str, Any]]],
    period: Period,
    names: Sequence[str] = (),
) -> dict[str, Any]:
    """The report (its JSON shape is ``insights --output json``'s, versioned by ``schema``):
    ``records`` are each configured service's deployment records (any order, any age)."""
    wanted, picked = selected(config, names)
    deployments = {name: to_deployments(items) for name, items in records.items()}
    pushes = push_times(d for ds in deployments.values() for d in ds)
    by_name = {s.name: s for s in config.services}
    services = []
    for name in wanted:
        svc = by_name[name]
        services.append(
            {
                "name": name,
                "cluster": svc.cluster,
                "service": svc.service_name,
                "promoted_from": svc.promote.source if svc.promote is not None else None,
                **four_keys(deployments.get(name, []), period, pushes),
                "weekly": weekly(deployments.get(name, []), period, pushes),
            }
        )
    groups = [deployments.get(name, []) for name in wanted]
    return {
        "schema": SCHEMA_VERSION,
        "since": iso(period.since),
        "until": iso(period.until),
        "days": round(period.days, 4),
        "overall": {
            **pooled_keys(groups, period, pushes),
            "weekly": pooled_weekly(groups, period, pushes),
        },
        "services": services,
        "chains": [chain_keys(c, deployments, period, pushes) for c in picked],
        "bands": thresholds(),
    }


def iso(at: Any) -> str:
    return str(at.isoformat(timespec="seconds").replace("+00:00", "Z"))
