"""The daemons' edge to the ECS Managed Daemons API (daemons on Managed Instances capacity).

Reads: ``ListDaemonTaskDefinitions`` / ``DescribeDaemonTaskDefinition`` to resolve a task
definition, ``ListDaemons`` / ``DescribeDaemon`` / ``DescribeDaemonRevisions`` /
``ListTagsForResource`` to observe what runs; writes: ``CreateDaemon`` / ``UpdateDaemon``.
Every call raises :class:`~ecspilot.errors.DaemonError` from the botocore error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.daemons.decisions import (
    Decision,
    Desired,
    Observed,
    create_daemon_params,
    last_segment,
    tag_map,
    update_daemon_params,
)
from ecspilot.errors import DaemonError

DESCRIBE_DAEMON_REVISIONS_BATCH = 20


def resolve_daemon_task_definition(ecs: Any, ref: str) -> str:
    """The Managed Daemons API's task definition: the family's newest ACTIVE one, or the pinned one."""
    family, _, revision = ref.partition(":")
    try:
        if revision:
            resp = ecs.describe_daemon_task_definition(daemonTaskDefinition=ref)
            return str(resp["daemonTaskDefinition"]["daemonTaskDefinitionArn"])
        listed = ecs.list_daemon_task_definitions(family=family, status="ACTIVE", sort="DESC", maxResults=1)
    except (ClientError, BotoCoreError) as exc:
        raise DaemonError(f"daemon task definition lookup failed: {exc}", task_definition=ref) from exc
    items = listed.get("daemonTaskDefinitions", [])
    if not items:
        raise DaemonError("no ACTIVE daemon task definition in the family", task_definition=ref)
    return str(items[0]["arn"])


def _summaries(ecs: Any, cluster_arn: str) -> list[Mapping[str, Any]]:
    summaries: list[Mapping[str, Any]] = []
    kwargs: dict[str, Any] = {"clusterArn": cluster_arn}
    while True:
        page = ecs.list_daemons(**kwargs)
        summaries.extend(page.get("daemonSummariesList", []))
        if not page.get("nextToken"):
            return summaries
        kwargs["nextToken"] = page["nextToken"]


def _observe_one(ecs: Any, summary: Mapping[str, Any]) -> Observed:
    arn = str(summary["daemonArn"])
    detail = ecs.describe_daemon(daemonArn=arn)["daemon"]
    current = detail.get("currentRevisions", [])
    providers = sorted({cp["arn"] for rev in current for cp in rev.get("capacityProviders", [])})
    task_definition = ""
    revision_arns = [rev["arn"] for rev in current if rev.get("arn")]
    if revision_arns:
        revisions = ecs.describe_daemon_revisions(
            daemonRevisionArns=revision_arns[:DESCRIBE_DAEMON_REVISIONS_BATCH]
        ).get("daemonRevisions", [])
        newest = max(revisions, key=lambda r: str(r.get("createdAt", "")), default=None)
        task_definition = str((newest or {}).get("daemonTaskDefinitionArn", ""))
    tags = ecs.list_tags_for_resource(resourceArn=arn).get("tags", [])
    return Observed(
        arn=arn,
        status=str(detail.get("status", summary.get("status", ""))),
        tags=tag_map(tags),
        task_definition=task_definition,
        capacity_providers=tuple(providers),
    )


def observe_managed(ecs: Any, cluster_arn: str, names: Sequence[str]) -> dict[str, Observed | None]:
    """Managed daemons named ``names`` on one cluster (by ARN): summary, detail, revision, tags."""
    out: dict[str, Observed | None] = dict.fromkeys(names)
    try:
        for summary in _summaries(ecs, cluster_arn):
            name = last_segment(str(summary.get("daemonArn", "")))
            if name in out:
                out[name] = _observe_one(ecs, summary)
    except (ClientError, BotoCoreError) as exc:
        raise DaemonError(f"reading managed daemons failed: {exc}", cluster=cluster_arn) from exc
    return out


def apply_managed(ecs: Any, desired: Desired, decision: Decision, observed: Observed | None) -> None:
    """``CreateDaemon`` when missing, otherwise ``UpdateDaemon`` with the whole desired revision."""
    try:
        if decision.change == "create" or observed is None:
            ecs.create_daemon(**create_daemon_params(desired))
        else:
            ecs.update_daemon(**update_daemon_params(desired, observed))
    except (ClientError, BotoCoreError) as exc:
        raise DaemonError(
            f"{decision.change} failed: {exc}",
            cluster=desired.cluster,
            daemon=desired.daemon,
            ecs_service=desired.name,
        ) from exc
