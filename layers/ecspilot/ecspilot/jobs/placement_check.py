"""``ecspilot placement check JOB``: which container instances of the job's cluster satisfy its
placement constraints (the job's and its task definition's, which ECS adds), and why the
others do not. Reads only; the evaluation itself is :func:`ecspilot.domain.placement.check_instances`.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.clients import Clients
from ecspilot.aws.ecs_reads import TaskDefinitions
from ecspilot.domain.config import JobConfig
from ecspilot.domain.placement import InstanceCheck, check_instances, resolve_placement
from ecspilot.jobs.plan import placement_input
from ecspilot.jobs.tasks import api_error, describe_tasks
from ecspilot.records import dataclass

DESCRIBE_INSTANCES_BATCH = 100


@dataclass(frozen=True)
class PlacementReport:
    """Which of a cluster's container instances satisfy a job's placement constraints."""

    job: str
    cluster: str
    constraints: list[dict[str, Any]]
    strategy: list[dict[str, Any]]
    instances: list[dict[str, Any]]
    checks: list[InstanceCheck]


def check_job_placement(job: JobConfig, clients: Clients) -> PlacementReport:
    """Evaluate the job's constraints (and those of its task definition, which ECS adds) against
    every container instance of its cluster."""
    placement = resolve_placement(placement_input(job), fargate=job.is_fargate)
    constraints = [dict(c) for c in placement.constraints]
    try:
        td = TaskDefinitions(clients.ecs).get(job.task_definition)["taskDefinition"]
        constraints.extend(dict(c) for c in td.get("placementConstraints", []))
        arns: list[str] = []
        for ci_page in clients.ecs.get_paginator("list_container_instances").paginate(cluster=job.cluster):
            arns.extend(ci_page.get("containerInstanceArns", []))
        instances: list[dict[str, Any]] = []
        for start in range(0, len(arns), DESCRIBE_INSTANCES_BATCH):
            resp = clients.ecs.describe_container_instances(
                cluster=job.cluster, containerInstances=arns[start : start + DESCRIBE_INSTANCES_BATCH]
            )
            instances.extend(dict(i) for i in resp.get("containerInstances", []))
    except (ClientError, BotoCoreError) as exc:
        raise api_error("describing the cluster's instances", exc, job) from exc
    groups: dict[str, set[str]] = {}
    if any("task:group" in str(c.get("expression", "")) for c in constraints):
        task_arns: list[str] = []
        try:
            for page in clients.ecs.get_paginator("list_tasks").paginate(cluster=job.cluster):
                task_arns.extend(page.get("taskArns", []))
        except (ClientError, BotoCoreError) as exc:
            raise api_error("ListTasks", exc, job) from exc
        for task in describe_tasks(clients, job, task_arns):
            if task.get("containerInstanceArn") and task.get("group"):
                groups.setdefault(task["containerInstanceArn"], set()).add(task["group"])
    return PlacementReport(
        job=job.name,
        cluster=job.cluster,
        constraints=constraints,
        strategy=[dict(s) for s in placement.strategy],
        instances=instances,
        checks=check_instances(constraints, instances, groups),
    )
