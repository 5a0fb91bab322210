"""What already runs in an account, read for ``ecspilot init`` (reads only, never a change).

- clusters: ``ListClusters`` (or the ``--cluster`` names), checked with ``DescribeClusters``;
- services: ``ListServices`` per cluster, ``DescribeServices`` 10 at a time and
  ``DescribeTaskDefinition`` once per revision, through :mod:`ecspilot.aws.ecs_reads`;
- EventBridge rules with a schedule: ``ListRules`` and ``ListTargetsByRule``, the targets with
  ``EcsParameters`` only;
- Scheduler schedules: ``ListSchedules`` (every group) and ``GetSchedule``, those whose target has
  ``EcsParameters`` only.

Every AWS failure is an :class:`~ecspilot.errors.AdoptionError` raised from the botocore error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.ecs_reads import TaskDefinitions, describe_service_batch, service_batches
from ecspilot.errors import AdoptionError, AdoptionInputError
from ecspilot.obs import logger
from ecspilot.records import dataclass


@dataclass(frozen=True)
class FoundService:
    """A service as DescribeServices returns it, with the task definition it runs."""

    cluster: str
    service: dict[str, Any]
    task_definition: dict[str, Any]


@dataclass(frozen=True)
class FoundTarget:
    """An ECS target of a schedule: where it came from (``rule`` or ``schedule``), its name, its
    expression and time zone, its state and the target in the API's own shape."""

    source: str  # "rule" (EventBridge) or "schedule" (EventBridge Scheduler)
    name: str
    expression: str
    timezone: str
    enabled: bool
    target: dict[str, Any]


@dataclass(frozen=True)
class Discovered:
    """Everything ``init`` read: clusters by name, services, ECS targets of schedules."""

    clusters: list[str]
    services: list[FoundService] = field(default_factory=list)
    targets: list[FoundTarget] = field(default_factory=list)


def _name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def clusters_of(ecs: Any, wanted: Sequence[str] = ()) -> list[str]:
    """Cluster names: every cluster of the account, or ``wanted`` once checked they exist."""
    try:
        if not wanted:
            arns = [a for page in ecs.get_paginator("list_clusters").paginate() for a in page["clusterArns"]]
            return sorted(_name(a) for a in arns)
        resp = ecs.describe_clusters(clusters=sorted(set(wanted)))
    except (ClientError, BotoCoreError) as exc:
        raise AdoptionError(f"reading clusters failed: {exc}") from exc
    found = {str(c["clusterName"]) for c in resp.get("clusters", []) if c.get("status") != "INACTIVE"}
    missing = sorted(set(wanted) - found)
    if missing:
        raise AdoptionInputError(f"no such cluster: {', '.join(missing)}", cluster=missing[0])
    return sorted(found)


def services_of(ecs: Any, clusters: Sequence[str]) -> list[FoundService]:
    """Every service of ``clusters`` with the task definition it runs, sorted by (cluster, name)."""
    task_definitions = TaskDefinitions(ecs)
    out: list[FoundService] = []
    for cluster in clusters:
        try:
            arns = [
                a
                for page in ecs.get_paginator("list_services").paginate(cluster=cluster)
                for a in page["serviceArns"]
            ]
            for batch_cluster, names in service_batches((cluster, _name(a)) for a in arns):
                found, _ = describe_service_batch(ecs, batch_cluster, names)
                for name in names:
                    svc = found.get(name)
                    if svc is None or svc.get("status") == "INACTIVE":
                        continue  # deleted between the listing and the describe
                    td = task_definitions.get(str(svc["taskDefinition"]))["taskDefinition"]
                    out.append(FoundService(cluster, svc, td))
        except (ClientError, BotoCoreError) as exc:
            raise AdoptionError(f"reading the services of {cluster} failed: {exc}", cluster=cluster) from exc
        logger.info("services read", extra={"cluster": cluster, "count": len(arns)})
    return sorted(out, key=lambda s: (s.cluster, str(s.service["serviceName"])))


def rule_targets(events: Any) -> list[FoundTarget]:
    """ECS targets of the EventBridge rules that run on a schedule (default bus)."""
    out: list[FoundTarget] = []
    try:
        for page in events.get_paginator("list_rules").paginate():
            for rule in page.get("Rules", []):
                if not rule.get("ScheduleExpression"):
                    continue  # event pattern rules are not schedules
                targets = events.list_targets_by_rule(Rule=rule["Name"]).get("Targets", [])
                out.extend(
                    FoundTarget(
                        source="rule",
                        name=str(rule["Name"]),
                        expression=str(rule["ScheduleExpression"]),
                        timezone="UTC",  # EventBridge rules' schedules are in UTC
                        enabled=rule.get("State", "ENABLED") == "ENABLED",
                        target=dict(t),
                    )
                    for t in targets
                    if t.get("EcsParameters")
                )
    except (ClientError, BotoCoreError) as exc:
        raise AdoptionError(f"reading EventBridge rules failed: {exc}") from exc
    return out


def schedule_targets(scheduler: Any) -> list[FoundTarget]:
    """EventBridge Scheduler schedules (every group) whose target runs an ECS task."""
    out: list[FoundTarget] = []
    try:
        for page in scheduler.get_paginator("list_schedules").paginate():
            for summary in page.get("Schedules", []):
                group = str(summary.get("GroupName") or "default")
                got = scheduler.get_schedule(Name=summary["Name"], GroupName=group)
                target = dict(got.get("Target") or {})
                if not target.get("EcsParameters"):
                    continue
                out.append(
                    FoundTarget(
                        source="schedule",
                        name=f"{group}/{got['Name']}",
                        expression=str(got["ScheduleExpression"]),
                        timezone=str(got.get("ScheduleExpressionTimezone") or "UTC"),
                        enabled=got.get("State", "ENABLED") == "ENABLED",
                        target=target,
                    )
                )
    except (ClientError, BotoCoreError) as exc:
        raise AdoptionError(f"reading Scheduler schedules failed: {exc}") from exc
    return out


def discover(ecs: Any, events: Any, scheduler: Any, clusters: Sequence[str] = ()) -> Discovered:
    """Read what runs: the clusters (all, or ``clusters``), their services, and the ECS targets
    of EventBridge rules and Scheduler schedules (those on other clusters are dropped)."""
    names = clusters_of(ecs, clusters)
    services = services_of(ecs, names)
    arns = {str(c) for c in names}
    targets = [
        t
        for t in [*rule_targets(events), *schedule_targets(scheduler)]
        if not clusters or _name(str(t.target.get("Arn", ""))) in arns
    ]
    return Discovered(clusters=names, services=services, targets=targets)
