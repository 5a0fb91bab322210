"""The daemons' ECS edge for clusters, task definitions and DAEMON services.

Every call raises :class:`~ecspilot.errors.DaemonError` from the botocore error, with the
cluster (or task definition) in its context. DescribeServices and DescribeTaskDefinition go
through the one ECS read layer (:mod:`ecspilot.aws.ecs_reads`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.ecs_reads import TaskDefinitions, describe_service_batch
from ecspilot.aws.fanout import chunks
from ecspilot.daemons.decisions import (
    Decision,
    Desired,
    Observed,
    create_service_params,
    last_segment,
    normalize_constraints,
    tag_map,
    update_service_params,
)
from ecspilot.errors import DaemonError

DESCRIBE_CLUSTERS_BATCH = 100


def list_cluster_arns(ecs: Any) -> list[str]:
    """Every cluster ARN of the account and region (``ListClusters``, all pages)."""
    try:
        pages = ecs.get_paginator("list_clusters").paginate()
        return [arn for page in pages for arn in page.get("clusterArns", [])]
    except (ClientError, BotoCoreError) as exc:
        raise DaemonError(f"ListClusters failed: {exc}") from exc


def describe_clusters(ecs: Any, names: Sequence[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """``DescribeClusters`` with tags, 100 per call: the clusters, and name -> why not found."""
    found: list[dict[str, Any]] = []
    failures: dict[str, str] = {}
    for batch in chunks(list(names), DESCRIBE_CLUSTERS_BATCH):
        try:
            resp = ecs.describe_clusters(clusters=list(batch), include=["TAGS"])
        except (ClientError, BotoCoreError) as exc:
            raise DaemonError(f"DescribeClusters failed: {exc}") from exc
        found.extend(dict(c) for c in resp.get("clusters", []))
        for failure in resp.get("failures", []):
            failures[last_segment(str(failure.get("arn", "")))] = str(failure.get("reason", "unknown"))
    return found, failures


def resolve_task_definition(task_definitions: TaskDefinitions, ref: str) -> str:
    """A family's latest ACTIVE revision, or a pinned ``family:revision``, as an ARN."""
    try:
        td = task_definitions.get(ref)["taskDefinition"]
    except (ClientError, BotoCoreError) as exc:
        raise DaemonError(f"DescribeTaskDefinition failed: {exc}", task_definition=ref) from exc
    if td.get("status") != "ACTIVE" and ":" not in ref:
        raise DaemonError("no ACTIVE revision in the family", task_definition=ref)
    return str(td["taskDefinitionArn"])


def observed_service(svc: Mapping[str, Any]) -> Observed:
    """A DescribeServices entry as :class:`Observed` (constraints None when ECS omits them)."""
    return Observed(
        arn=svc.get("serviceArn", ""),
        status=svc.get("status", ""),
        tags=tag_map(svc.get("tags")),
        task_definition=svc.get("taskDefinition", ""),
        scheduling_strategy=svc.get("schedulingStrategy", "REPLICA"),
        constraints=(
            normalize_constraints(svc["placementConstraints"]) if "placementConstraints" in svc else None
        ),
    )


def describe_services(ecs: Any, cluster: str, names: Sequence[str]) -> dict[str, Observed | None]:
    """One DescribeServices call (at most 10 names, tags included): name -> what runs, or None."""
    try:
        found, _failures = describe_service_batch(ecs, cluster, names, tags=True)
    except (ClientError, BotoCoreError) as exc:
        raise DaemonError(f"DescribeServices failed: {exc}", cluster=cluster) from exc
    out: dict[str, Observed | None] = dict.fromkeys(names)
    for name, svc in found.items():
        out[name] = observed_service(svc)
    return out


def apply_service(ecs: Any, desired: Desired, decision: Decision) -> None:
    """``CreateService`` or ``UpdateService`` (only what drifted) for a DAEMON service."""
    try:
        if decision.change == "create":
            ecs.create_service(**create_service_params(desired))
        else:
            ecs.update_service(**update_service_params(desired, decision))
    except (ClientError, BotoCoreError) as exc:
        raise DaemonError(
            f"{decision.change} failed: {exc}",
            cluster=desired.cluster,
            daemon=desired.daemon,
            ecs_service=desired.name,
        ) from exc
