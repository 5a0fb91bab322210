"""Reconcile's ``deployments`` part: open blue/green, linear and canary deployments closed even when
ECS sends no further event.

A ``SERVICE_DEPLOYMENT_COMPLETED`` event that arrives while the service deployment still bakes
leaves the record IN_PROGRESS (:mod:`ecspilot.tracking.service_deployments`); when ECS then sends
nothing more, this part closes it:

1. the open records: for each configured service in ecspilot's own account and region, its newest
   deployment records (gsi1, newest first, :data:`NEWEST` items: one Query per service) that are
   IN_PROGRESS with a ``service_deployment_arn`` (a tracked strategy's record);
2. their service deployments: DescribeServiceDeployments, 20 ARNs per call, batched across
   services;
3. each record moved as the tracker moves it for an event (``DeploymentTracker.settle``): the same
   conditional transition, the hold of the digest before FAILED or ROLLED_BACK, the metrics, the
   message and the promotions of a COMPLETED one; one still running gets its stage fields.

Records of services in other accounts (``account:``) are left alone: ecspilot's ECS client cannot
read that account's service deployments, and their events keep them moving. A failed read raises
(``run_part`` makes it one ``error`` action) before anything is written. In a dry run nothing is
written: each record that would move is one ``update`` action reading ``would-move``.
"""

from __future__ import annotations

from typing import Any

from ecspilot.aws.deployment_fields import dynamo_fields
from ecspilot.aws.history import History
from ecspilot.aws.service_deployments import describe_service_deployments
from ecspilot.domain.config import EcspilotConfig
from ecspilot.domain.keys import state_keys
from ecspilot.domain.plan import Action, Change
from ecspilot.domain.service_deployments import reconciled_status
from ecspilot.obs import logger
from ecspilot.tracking.deployments import DeploymentTracker
from ecspilot.tracking.service_deployments import observation_of

NEWEST = 5  # records read per service: a later push supersedes an older open one
KIND = "deployment"


def own_services(config: EcspilotConfig, own: tuple[str | None, str | None]) -> list[tuple[str, str]]:
    """``(cluster, service)`` of each configured service in ecspilot's own account and region."""
    names = {s.name: s.service_name for s in config.services}
    keys = state_keys(config, own)
    return list(dict.fromkeys(key for name, key in keys.items() if key[1] == names[name]))


def open_records(history: History, services: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The open records of ``services`` whose service deployment is known."""
    return [
        item
        for cluster, service in services
        for item in history.deployments(cluster, service, limit=NEWEST)
        if item.get("status") == "IN_PROGRESS" and item.get("service_deployment_arn")
    ]


def reconcile_open(
    tracker: DeploymentTracker, own: tuple[str | None, str | None], region: str, dry_run: bool
) -> list[Action]:
    """The part (see the module docstring): one action per open record."""
    records = open_records(tracker.history, own_services(tracker.config, own))
    if not records:
        return []
    found = describe_service_deployments(
        tracker.clients.ecs, [str(r["service_deployment_arn"]) for r in records]
    )
    actions: list[Action] = []
    for record in records:
        target = f"{record.get('cluster')}/{record.get('service')} {record.get('deployment_id')}"
        sd = found.get(str(record["service_deployment_arn"]))
        if sd is None:
            actions.append(Action(KIND, target, "in-sync", "service deployment not found: left open"))
            continue
        status = reconciled_status("IN_PROGRESS", sd.status)
        stage = sd.lifecycle_stage or sd.status
        if dry_run:
            change: Change = "update" if status != "IN_PROGRESS" else "in-sync"
            detail = (
                f"would-move IN_PROGRESS -> {status} (ECS {sd.status})" if status != "IN_PROGRESS" else stage
            )
            actions.append(Action(KIND, target, change, detail))
            continue
        observed = observation_of(sd, str(record.get("strategy") or ""), record, sd.updated_at)
        if status == "IN_PROGRESS" and all(
            record.get(k) == v for k, v in dynamo_fields(observed.fields).items()
        ):
            actions.append(Action(KIND, target, "in-sync", f"open: {stage}"))  # nothing new: no write
            continue
        moved, promotions = tracker.settle(record, observed, region)
        if moved is None:
            if status == "IN_PROGRESS":  # the stage written
                actions.append(Action(KIND, target, "update", f"open: {stage}", applied=True))
            else:  # an event moved it first (the conditional move found it moved on)
                actions.append(Action(KIND, target, "in-sync", f"already moved on (ECS {sd.status})"))
            continue
        logger.info("open deployment closed by reconcile", extra={"target": target, "status": status})
        detail = f"moved IN_PROGRESS -> {status} (ECS {sd.status})"
        detail += f"; promotions: {len(promotions)}" if promotions else ""
        actions.append(Action(KIND, target, "update", detail, applied=True))
    return actions
