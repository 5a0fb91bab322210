"""``ecspilot rollback SERVICE``: undo a service's deployment, and keep it undone.

The runbook (decisions in :mod:`ecspilot.deploy.rollback_rules`):

1. describe the service (DescribeServices) and list its service deployments that are not over
   (ListServiceDeployments, status PENDING, IN_PROGRESS, STOP_REQUESTED, ROLLBACK_REQUESTED,
   ROLLBACK_IN_PROGRESS);
2. **one is running** (PENDING, IN_PROGRESS): ``StopServiceDeployment`` with ``stopType``
   ROLLBACK, ECS returns the service to its source revision; then the digests it was deploying
   are held and its record notes the request. **One is already rolling back**: nothing is sent
   again (a second rollback would go one revision further back); the hold is written (a rerun
   after a lost reply finishes the job);
3. **none**: the previous COMPLETED revision from ecspilot's history, through the deploy core's
   own path: hold the digests the service runs now, claim the service's containers in the state
   table (``aws.service_state``) as a deploy does, ``UpdateService`` (never ``desiredCount``),
   a deployment record of trigger ``rollback``, and the claim verified;
4. with ``dry_run``, steps 2 and 3 are reported, no write API is called.

**Why the claim.** A push racing the rollback must not silently undo it. The rollback claims the
containers with *now* as the image's time: a push of an image pushed before the rollback loses
its claim (stale) or, when it claimed first, finds the rollback's newer claim when it verifies and
applies the rollback's revision again; an image pushed after the rollback is a new release and
wins, as any newer push does. The digests rolled away from are held besides, so a redelivered
push or catch-up of them is ``held`` (the same rule as the circuit breaker's rollback).

Failures raise :class:`~ecspilot.errors.RollbackError`: nothing is recorded as done unless ECS
took it. A lost reply of StopServiceDeployment says so: running the same rollback again is safe.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, field
from typing import Any

from ecspilot.aws.clients import Clients
from ecspilot.aws.deployment_fields import annotate
from ecspilot.aws.history import DeploymentRecord, History, deployment_key, utc_now
from ecspilot.aws.service_deployments import list_service_deployments, stop_service_deployment
from ecspilot.aws.service_state import Claim, held_records
from ecspilot.deploy.commit import DeployCommit
from ecspilot.deploy.result import ServiceOutcome, Target
from ecspilot.deploy.rollback_rules import Action, choose, digests_to_hold, previous_completed
from ecspilot.domain.config import ServiceConfig
from ecspilot.domain.images import short_digest
from ecspilot.domain.service_deployments import ACTIVE_STATUSES, STOPPING_STATUSES
from ecspilot.domain.taskdef import container_images, family_revision
from ecspilot.errors import AwsError, EcspilotError, RollbackError, is_uncertain
from ecspilot.obs import logger
from ecspilot.records import dataclass

OPEN_STATUSES = (*ACTIVE_STATUSES, *STOPPING_STATUSES)


@dataclass
class RollbackResult:
    """What ``ecspilot rollback`` did (or, with ``dry_run``, would do)."""

    name: str
    cluster: str
    service: str
    action: Action
    dry_run: bool
    service_deployment_arn: str = ""
    from_task_definition: str = ""
    to_task_definition: str = ""
    deployment_id: str = ""
    held: list[str] = field(default_factory=list)
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line a person reads."""
        would = "would " if self.dry_run else ""
        where = f"{self.cluster}/{self.service}"
        if self.action == "rolling-back":
            return (
                f"{where}: a rollback is already under way ({self.service_deployment_arn.rsplit('/', 1)[-1]})"
            )
        if self.action == "stop":
            verb = "stop" if self.dry_run else "stopped"
            return (
                f"{where}: {would}{verb} service deployment "
                f"{self.service_deployment_arn.rsplit('/', 1)[-1]} with ROLLBACK"
            )
        verb = "redeploy" if self.dry_run else "redeployed"
        return (
            f"{where}: {would}{verb} {family_revision(self.to_task_definition)} "
            f"(from {family_revision(self.from_task_definition)})"
        )


class Rollback(DeployCommit):
    """Rolls one configured service back; see the module docstring."""

    def __init__(self, clients: Clients, history: History, max_workers: int = 8) -> None:
        super().__init__(clients, history, max_workers, trigger="rollback")

    def run(self, svc: ServiceConfig, reason: str = "", dry_run: bool = False) -> RollbackResult:
        cluster, name = svc.cluster, svc.service_name
        service = self._service(svc)
        current = str(service["taskDefinition"])
        briefs = list_service_deployments(self.clients.ecs, cluster, name, statuses=OPEN_STATUSES)
        action, arn = choose([(b.arn, b.status) for b in briefs])
        result = RollbackResult(svc.name, cluster, name, action, dry_run, arn, current, reason=reason)
        records = self.history.deployments(cluster, name, limit=20)
        held = {str(r["image_digest"]) for r in held_records(self._state(cluster, name))}
        target = previous_completed(records, current, held)
        current_images = container_images(dict(self.source(current)[0]))
        target_images = (
            container_images(dict(self.source(str(target["to_task_definition"]))[0])) if target else None
        )
        result.held = digests_to_hold(current_images, target_images, list(svc.containers))
        log = {"cluster": cluster, "ecs_service": name, "action": action, "dry_run": dry_run}
        if action == "redeploy":
            if target is None:
                raise RollbackError(
                    "no previous COMPLETED deployment in ecspilot's history to roll back to",
                    cluster=cluster,
                    service=name,
                )
            result.to_task_definition = str(target["to_task_definition"])
        logger.info("rollback planned", extra={**log, "service_deployment": arn, "held": result.held})
        if dry_run:
            return result
        if action == "stop":
            self._stop(result, records)
        elif action == "rolling-back":
            self._hold(result)
        else:
            self._redeploy(svc, service, result, target or {}, records)
        logger.info("rolled back", extra={**log, "summary": result.summary()})
        return result

    # reads -----------------------------------------------------------------------------------

    def _service(self, svc: ServiceConfig) -> dict[str, Any]:
        key = (svc.cluster, svc.service_name)
        self.describe_services([key])
        described = self._services.get(key)
        if not isinstance(described, dict):
            raise RollbackError(str(described), cluster=svc.cluster, service=svc.service_name)
        if described.get("status") != "ACTIVE":
            raise RollbackError(
                f"service is {described.get('status')}", cluster=svc.cluster, service=svc.service_name
            )
        return described

    def _state(self, cluster: str, service: str) -> dict[str, Any]:
        try:
            return self.state.read([(cluster, service)]).get((cluster, service), {})
        except AwsError as exc:
            raise RollbackError(f"reading the service's state failed: {exc}", service=service) from exc

    # writes ----------------------------------------------------------------------------------

    def _hold(self, result: RollbackResult) -> None:
        """Hold the digests rolled away from (idempotent), as the tracker holds a circuit
        breaker's rollback: a redelivered push or catch-up of them is ``held``."""
        for digest in result.held:
            try:
                self.state.hold(result.cluster, result.service, digest, "ROLLED_BACK", utc_now())
            except AwsError as exc:
                raise RollbackError(
                    f"holding {short_digest(digest)} failed: {exc}", service=result.service
                ) from exc

    def _stop(self, result: RollbackResult, records: list[dict[str, Any]]) -> None:
        try:
            stop_service_deployment(self.clients.ecs, result.service_deployment_arn, "ROLLBACK")
        except EcspilotError as exc:
            if is_uncertain(exc):
                raise RollbackError(
                    f"{exc}: the request may have reached ECS; `ecspilot status` shows it, and "
                    "running the same rollback again is safe (it sees the rollback under way)",
                    service=result.service,
                ) from exc
            raise RollbackError(f"{exc}: nothing was changed", service=result.service) from exc
        self._hold(result)
        note = {"rollback_requested_at": utc_now(), "rollback_reason": result.reason or None}
        for record in records:
            if record.get("service_deployment_arn") == result.service_deployment_arn or (
                record.get("status") == "IN_PROGRESS" and not record.get("service_deployment_arn")
            ):
                annotate(self.history, deployment_key(str(record["deployment_id"])), note)
                break

    def _mark_rolled_away(self, result: RollbackResult, records: list[dict[str, Any]]) -> None:
        """Note on the record of the revision rolled away from that a rollback replaced it: its
        status stays (COMPLETED is final), but whoever reads COMPLETED records (promotion) can
        tell it was undone."""
        for r in records:
            if r.get("to_task_definition") == result.from_task_definition and r.get("deployment_id"):
                note = {
                    "rolled_back_by": result.deployment_id,
                    "rolled_back_at": utc_now(),
                    "rollback_reason": result.reason or None,
                }
                annotate(
                    self.history, deployment_key(str(r["deployment_id"])), note, ("COMPLETED", "IN_PROGRESS")
                )
                return

    def _redeploy(
        self,
        svc: ServiceConfig,
        service: dict[str, Any],
        result: RollbackResult,
        target: Mapping[str, Any],
        records: list[dict[str, Any]],
    ) -> None:
        self._hold(result)
        images = container_images(dict(self.source(result.to_task_definition)[0]))
        now = time.time()
        digests = {c: (images.get(c, "").partition("@")[2]) for c in svc.containers}
        claims = [
            Claim(svc.cluster, svc.service_name, c, d, now, result.to_task_definition)
            for c, d in digests.items()
            if d
        ]
        try:
            with self._writes:
                lost = self.state.claim(claims)
        except AwsError as exc:
            raise RollbackError(f"claiming the service failed: {exc}: nothing was changed") from exc
        if lost:
            raise RollbackError(
                "a newer image was given to the service meanwhile: not rolled back",
                cluster=svc.cluster,
                service=svc.service_name,
            )
        outcome = ServiceOutcome(
            svc.name,
            svc.cluster,
            svc.service_name,
            list(svc.containers),
            "would-deploy",
            result.from_task_definition,
        )
        t = Target(svc, outcome, service)
        try:
            result.deployment_id = self._update((t, result.to_task_definition))
        except EcspilotError as exc:
            raise RollbackError(f"{exc}: not rolled back", service=svc.service_name) from exc
        record = DeploymentRecord(
            cluster=svc.cluster,
            service=svc.service_name,
            from_task_definition=result.from_task_definition,
            to_task_definition=result.to_task_definition,
            image_digest=str(target.get("image_digest", "")),
            image_tag=str(target.get("image_tag", "")),
            repository=str(target.get("repository", "")),
            deployment_id=result.deployment_id,
            started_at=utc_now(),
            trigger="rollback",
            event_id=f"rollback:{result.deployment_id}",
        )
        try:
            with self._writes:
                self.history.record_deployments([record])
        except AwsError as exc:
            raise RollbackError(
                f"rolled back to {family_revision(result.to_task_definition)}, but its record was not "
                f"written: {exc}",
                service=svc.service_name,
            ) from exc
        if result.reason:
            annotate(self.history, record.key(), {"rollback_reason": result.reason})
        self._mark_rolled_away(result, records)
        self.verify([(t, claims)])
        if t.outcome.outcome == "stale":
            result.reason = f"{result.reason}; {t.outcome.reason}".strip("; ")


def rollback(
    svc: ServiceConfig,
    clients: Clients,
    history: History,
    reason: str = "",
    dry_run: bool = False,
) -> RollbackResult:
    """Roll ``svc`` back; see the module docstring."""
    return Rollback(clients, history).run(svc, reason=reason, dry_run=dry_run)
