"""From what runs to an ecspilot config (pure): ``ecspilot init``'s decisions.

:func:`adopt` turns what :mod:`.discover` read into :class:`Adoption`: one :class:`Entry` per
service, daemon and job, each with the comment lines saying where it came from, and one line per
thing left out and why. Everything is sorted, so the same account gives the same file.

- a service whose containers run ECR images -> ``services`` (container -> repository; ``tags``
  ``["v*"]`` when the running tag looks like a release (``v1.2.3``), else ``["*"]`` with a
  comment); ``rollback: true`` when its deployment circuit breaker is on;
- DAEMON services -> ``daemons``, one entry per (service name, task definition, constraints,
  capacity providers) across clusters;
- ECS targets of EventBridge rules and Scheduler schedules -> ``jobs`` with ``adopt: false``:
  the original schedule stays the user's, ecspilot never changes nor deletes it;
- Express Mode services (``resourceManagementType: ECS``) and services under an external or
  CodeDeploy deployment controller -> left out, with why.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field
from typing import Any

from ecspilot.adoption.discover import Discovered, FoundService, FoundTarget
from ecspilot.domain.config import NAME_RE, REPOSITORY_RE
from ecspilot.domain.images import ImageRef
from ecspilot.records import dataclass

ECR_HOST_RE = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
RELEASE_TAG_RE = re.compile(r"^v\d+(\.\d+)*([-+][0-9A-Za-z.-]+)?$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Entry:
    """One entry of a section, in the config's own shape, with the comment lines above it."""

    data: dict[str, Any]
    comments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Adoption:
    """The config ``init`` writes: its sections, and what was left out (one line each)."""

    clusters: tuple[str, ...]
    services: tuple[Entry, ...] = ()
    daemons: tuple[Entry, ...] = ()
    jobs: tuple[Entry, ...] = ()
    left_out: tuple[str, ...] = field(default_factory=tuple)

    def as_config(self) -> dict[str, Any]:
        """The config dict (what ``parse_config`` takes), without the comments."""
        out: dict[str, Any] = {"version": 1}
        for section in ("services", "daemons", "jobs"):
            entries: tuple[Entry, ...] = getattr(self, section)
            if entries:
                out[section] = [e.data for e in entries]
        return out


def infer_tags(tag: str | None, digest: str | None) -> tuple[list[str], str | None]:
    """Tag patterns for a running image, and a comment when they are a guess (``*``)."""
    if tag and RELEASE_TAG_RE.fullmatch(tag):
        return ["v*"], None
    if tag:
        return ["*"], f"runs tag {tag!r}, not a release pattern like v1.2.3: follows every tag (*)"
    if digest:
        return ["*"], "runs a digest, not a tag: follows every tag (*)"
    return ["*"], "runs the implicit latest tag: follows every tag (*)"


def ecr_repository(image: str) -> ImageRef | None:
    """The parsed image when it is in a private ECR registry, else None."""
    ref = ImageRef.parse(image)
    if ref.registry is None or not ECR_HOST_RE.fullmatch(ref.registry):
        return None
    return ref if REPOSITORY_RE.fullmatch(ref.repository) else None


def family_revision(arn: str) -> str:
    """``arn:...:task-definition/web:3`` -> ``web:3``."""
    return arn.rsplit("/", 1)[-1]


def safe_name(name: str) -> str:
    """A config name (letters, digits, ``_ . -``) from an AWS name."""
    cleaned = _UNSAFE.sub("-", name).strip("-._") or "unnamed"
    return cleaned if NAME_RE.fullmatch(cleaned) else cleaned[:255]


def unique_names(wanted: Sequence[str]) -> list[str]:
    """The names, with ``-2``, ``-3``... on the repeats (in order), so a section has no duplicate."""
    seen: dict[str, int] = {}
    out = []
    for name in wanted:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def left_out_reason(svc: Mapping[str, Any]) -> str | None:
    """Why a service cannot be adopted, or None."""
    if svc.get("resourceManagementType") == "ECS":
        return "an Express Mode service: ECS manages its deployments and resources itself"
    controller = (svc.get("deploymentController") or {}).get("type", "ECS")
    if controller != "ECS":
        return (
            f"uses the {controller} deployment controller: ecspilot deploys through UpdateService, "
            "which that controller does not take"
        )
    return None


def service_entry(found: FoundService, name: str) -> Entry | str:
    """The ``services`` entry of a REPLICA service, or why it was left out."""
    svc = found.service
    service_name = str(svc["serviceName"])
    where = f"service {found.cluster}/{service_name}"
    reason = left_out_reason(svc)
    if reason:
        return f"{where}: {reason}"
    containers: dict[str, Any] = {}
    comments = [f"from {where}, task definition {family_revision(str(svc['taskDefinition']))}"]
    for container in sorted(found.task_definition.get("containerDefinitions", []), key=lambda c: c["name"]):
        ref = ecr_repository(str(container.get("image", "")))
        if ref is None:
            comments.append(
                f"container {container['name']}: image {container.get('image')} is not in ECR: left out"
            )
            continue
        tags, why = infer_tags(ref.tag, ref.digest)
        containers[str(container["name"])] = {"repository": ref.repository, "tags": tags}
        if why:
            comments.append(f"container {container['name']}: {why}")
    if not containers:
        return f"{where}: no container runs an ECR image, so no push can deploy it"
    data: dict[str, Any] = {"name": name, "cluster": found.cluster}
    if name != service_name:
        data["service"] = service_name
    data["containers"] = containers
    breaker = (svc.get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker") or {}
    if breaker.get("enable"):
        data["rollback"] = True
        comments.append("rollback: the service's deployment circuit breaker is on")
    return Entry(data, tuple(comments))


def daemon_entries(found: Iterable[FoundService]) -> tuple[list[Entry], list[str]]:
    """DAEMON services grouped across clusters when they are the same daemon."""
    groups: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], list[str]] = {}
    left_out = []
    for f in found:
        reason = left_out_reason(f.service)
        if reason:
            left_out.append(f"daemon {f.cluster}/{f.service['serviceName']}: {reason}")
            continue
        constraints = tuple(
            sorted(
                str(c["expression"])
                for c in f.service.get("placementConstraints", [])
                if c.get("type") == "memberOf" and c.get("expression")
            )
        )
        providers = tuple(
            sorted(str(p["capacityProvider"]) for p in f.service.get("capacityProviderStrategy") or [])
        )
        key = (
            str(f.service["serviceName"]),
            family_revision(str(f.service["taskDefinition"])),
            constraints,
            providers,
        )
        groups.setdefault(key, []).append(f.cluster)
    keys = sorted(groups)
    names = unique_names([safe_name(k[0]) for k in keys])
    entries = []
    for (service, task_definition, constraints, providers), name in zip(keys, names, strict=True):
        clusters = sorted(groups[(service, task_definition, constraints, providers)])
        data: dict[str, Any] = {"name": name, "clusters": clusters}
        if name != service:
            data["service"] = service
        data["task_definition"] = task_definition
        if constraints:
            data["placement_constraints"] = list(constraints)
        if providers:
            data["capacity_providers"] = list(providers)
        where = ", ".join(f"{c}/{service}" for c in clusters)
        entries.append(Entry(data, (f"from DAEMON service {where}",)))
    return entries, left_out


def _lower_keys(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{k[:1].lower() + k[1:]: v for k, v in item.items()} for item in items]


def _overrides(raw: str | None) -> dict[str, Any]:
    """A target's ``Input`` (RunTask's ``overrides`` as JSON) as the job's ``overrides``."""
    try:
        given = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    if not isinstance(given, dict):
        return {}
    out: dict[str, Any] = {}
    containers: dict[str, Any] = {}
    for item in sorted(given.get("containerOverrides", []), key=lambda c: str(c.get("name"))):
        one: dict[str, Any] = {}
        if item.get("command"):
            one["command"] = [str(a) for a in item["command"]]
        if item.get("environment"):
            one["environment"] = {str(e["name"]): str(e.get("value", "")) for e in item["environment"]}
        for key in ("cpu", "memory"):
            if item.get(key) is not None:
                one[key] = int(item[key])
        if one and item.get("name"):
            containers[str(item["name"])] = one
    if containers:
        out["containers"] = containers
    for key in ("cpu", "memory"):
        if given.get(key):
            out[key] = str(given[key])
    return out


def job_entry(found: FoundTarget, name: str) -> Entry:
    """The ``jobs`` entry of an ECS target of a schedule, marked ``adopt: false``."""
    target, ecs = found.target, found.target["EcsParameters"]
    cluster = str(target["Arn"]).rsplit("/", 1)[-1]
    kind = "EventBridge rule" if found.source == "rule" else "EventBridge Scheduler schedule"
    data: dict[str, Any] = {
        "name": name,
        "cluster": cluster,
        "task_definition": family_revision(str(ecs["TaskDefinitionArn"])),
    }
    if ecs.get("CapacityProviderStrategy"):
        data["capacity_provider_strategy"] = [
            {
                "capacity_provider": str(i["capacityProvider"]),
                "weight": int(i.get("weight", 1)),
                "base": int(i.get("base", 0)),
            }
            for i in ecs["CapacityProviderStrategy"]
        ]
    elif ecs.get("LaunchType"):
        data["launch_type"] = str(ecs["LaunchType"])
    if ecs.get("PlatformVersion"):
        data["platform_version"] = str(ecs["PlatformVersion"])
    if int(ecs.get("TaskCount", 1)) != 1:
        data["count"] = int(ecs["TaskCount"])
    network = ecs.get("NetworkConfiguration") or {}
    vpc = network.get("awsvpcConfiguration") or network.get("AwsvpcConfiguration")
    if vpc:
        data["network"] = {
            "subnets": sorted(vpc.get("Subnets", [])),
            "security_groups": sorted(vpc.get("SecurityGroups", [])),
            "assign_public_ip": vpc.get("AssignPublicIp") == "ENABLED",
        }
    constraints = _lower_keys(ecs.get("PlacementConstraints") or [])
    strategy = _lower_keys(ecs.get("PlacementStrategy") or [])
    providers = [str(i["capacityProvider"]) for i in ecs.get("CapacityProviderStrategy") or []]
    fargate = ecs.get("LaunchType") == "FARGATE" or (
        bool(providers) and all(p.startswith("FARGATE") for p in providers)
    )
    notes: list[str] = []
    if (constraints or strategy) and fargate:
        notes.append("its placement is left out: Fargate tasks take no placement constraints or strategy")
    elif constraints or strategy:
        data["placement"] = {"strategy": strategy, "constraints": constraints}
    overrides = _overrides(target.get("Input"))
    if overrides:
        data["overrides"] = overrides
    data["schedule"] = found.expression
    data["timezone"] = found.timezone
    if not found.enabled:
        data["enabled"] = False
    data["adopt"] = False
    data["propagate_tags"] = "TASK_DEFINITION" if ecs.get("PropagateTags") == "TASK_DEFINITION" else "NONE"
    data["enable_ecs_managed_tags"] = bool(ecs.get("EnableECSManagedTags", False))
    comments = (
        f"from {kind} {found.name} ({found.expression}) on cluster {cluster}",
        f"adopt: false: the {kind} stays yours and keeps firing; to let ecspilot own the schedule, "
        "set adopt: true and delete the original (ecspilot never deletes it)",
        *notes,
    )
    return Entry(data, comments)


def adopt(discovered: Discovered) -> Adoption:
    """The config for what was discovered: services, daemons, jobs, and what was left out."""
    replicas = [s for s in discovered.services if s.service.get("schedulingStrategy") != "DAEMON"]
    daemons = [s for s in discovered.services if s.service.get("schedulingStrategy") == "DAEMON"]
    counts: dict[str, int] = {}
    for s in replicas:
        counts[str(s.service["serviceName"])] = counts.get(str(s.service["serviceName"]), 0) + 1
    services: list[Entry] = []
    left_out: list[str] = []
    wanted = [
        safe_name(n if counts[n] == 1 else f"{n}-{s.cluster}")
        for s in replicas
        for n in [str(s.service["serviceName"])]
    ]
    for found, name in zip(replicas, unique_names(wanted), strict=True):
        got = service_entry(found, name)
        if isinstance(got, str):
            left_out.append(got)
        else:
            services.append(got)
    daemon_list, daemon_left_out = daemon_entries(daemons)
    targets = sorted(discovered.targets, key=lambda t: (t.source, t.name, str(t.target.get("Id", ""))))
    job_names = unique_names([safe_name(t.name.rsplit("/", 1)[-1]) for t in targets])
    jobs = sorted(
        (job_entry(t, n) for t, n in zip(targets, job_names, strict=True)), key=lambda e: e.data["name"]
    )
    return Adoption(
        clusters=tuple(discovered.clusters),
        services=tuple(sorted(services, key=lambda e: e.data["name"])),
        daemons=tuple(daemon_list),
        jobs=tuple(jobs),
        left_out=tuple(sorted([*left_out, *daemon_left_out])),
    )
