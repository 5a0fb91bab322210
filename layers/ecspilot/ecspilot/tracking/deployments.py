"""The deployment runbook: an ``ECS Deployment State Change`` event -> the deployment record moved
forward, metrics, a notification.

The runbook of a deployment event (``ECS Deployment State Change``):

1. parse it: service ARN (``resources[0]``), ECS deployment id, event name, reason, ``updatedAt``;
2. find the record by deployment id (gsi1, a Query); a deployment ecspilot did not start gets
   an ``external`` record (a circuit-breaker rollback gets a ``rollback`` one), never dropped;
3. decide the new status (pure, :mod:`ecspilot.tracking.decisions`) and write it with one
   conditional UpdateItem that only moves forward (:data:`DEPLOYMENT_MOVES`): terminal states
   are final, so duplicates and late events change nothing. For a BLUE_GREEN, LINEAR or CANARY
   service the ECS service deployment decides instead of the event (a deployment still baking
   stays IN_PROGRESS) and its stage is written on the record
   (:mod:`ecspilot.tracking.service_deployments`);
4. a rollback-in-progress event (reason ``... rolling back to deploymentId X``) also marks
   the deployment it undid ROLLED_BACK: the newest open or failed deployment of the service
   other than X and the rollback itself;
5. only when a record really moved: metrics (dimensions bounded to configured services) and,
   for FAILED and ROLLED_BACK, an SNS notification when a topic is configured.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ecspilot.aws.clients import Clients
from ecspilot.aws.deployment_fields import annotate, dynamo_fields
from ecspilot.aws.history import DeploymentRecord, History
from ecspilot.aws.notify import Notifier
from ecspilot.aws.service_state import ServiceState
from ecspilot.domain.config import EcspilotConfig
from ecspilot.domain.events import EcsDeploymentStateChangeEvent
from ecspilot.domain.images import short_digest
from ecspilot.domain.keys import scoped_service
from ecspilot.domain.service_deployments import reconciled_status
from ecspilot.obs import count, logger, seconds
from ecspilot.records import dataclass
from ecspilot.tracking.decisions import (
    DEPLOYMENT_METRIC,
    DEPLOYMENT_MOVES,
    HOLDING,
    deployment_status,
    duration_seconds,
    iso,
    parse_service_arn,
    rollback_target,
    service_dimensions,
)
from ecspilot.tracking.delivery import DELIVERY_COUNTS, DELIVERY_SECONDS, delivery_metrics
from ecspilot.tracking.health import deployment_stops
from ecspilot.tracking.messages import deployment_message
from ecspilot.tracking.report import set_dimensions
from ecspilot.tracking.service_deployments import Observation, ServiceDeploymentReader


@dataclass(frozen=True)
class Moved:
    """A record that really changed status (the only thing that emits metrics and messages)."""

    record: dict[str, Any]
    before: str
    status: str


class DeploymentTracker:
    """Moves deployment records forward from ECS deployment events; see the module docstring."""

    def __init__(
        self,
        config: EcspilotConfig,
        clients: Clients,
        history: History,
        topic_arn: str | None = None,
        own: tuple[str | None, str | None] = (None, None),
        on_completed: Callable[[Mapping[str, Any]], Any] | None = None,
    ) -> None:
        self.config = config
        self.clients = clients
        self.history = history
        self.notifier = Notifier(clients, topic_arn)
        # issue 13: ecspilot's (account, region): a service elsewhere is keyed with its account
        # and region; and what to do when a record completes (a promotion's timer)
        self.own = own
        self.on_completed = on_completed

    def _service_of(self, event: EcsDeploymentStateChangeEvent) -> tuple[str, str]:
        """``(cluster, service)`` as the state table keys the event's service: with the account
        and region when they are not ecspilot's (``scoped_service``)."""
        cluster, service = parse_service_arn(event.service_arn)
        return cluster, scoped_service(service, event.account, event.region, self.own)

    def _upsert(
        self,
        event: EcsDeploymentStateChangeEvent,
        status: str,
        trigger: str,
        existing: Mapping[str, Any],
        observed: Observation,
    ) -> Moved | None:
        """Apply the event's status to the deployment's one item (keyed by its ECS id), creating
        it as ``external`` (or ``rollback``) when the deployer has not written it yet: deployer
        and tracker meet on the same item whichever writes first."""
        cluster, service = self._service_of(event)
        deployment_id = event.detail.deployment_id
        record = DeploymentRecord(
            cluster=cluster,
            service=service,
            from_task_definition="",
            to_task_definition="",
            image_digest="",
            image_tag="",
            repository="",
            deployment_id=deployment_id,
            started_at=iso(event.at) or "",
            trigger=trigger,
            event_id=event.id,
        )
        create = {**record.to_item(), "service_arn": event.service_arn}
        del create["status"]
        log = {"cluster": cluster, "ecs_service": service, "deployment_id": deployment_id}
        if status == "IN_PROGRESS":
            before = self.history.transition(record.key(), status, (), create=create)
            if before == {}:
                logger.info("deployment not started by ecspilot: recorded", extra=log)
            annotate(self.history, record.key(), observed.fields)  # the stage of an open deployment
            return None
        if status in HOLDING and existing.get("status") in DEPLOYMENT_MOVES[status]:
            self._hold(existing, status)
        sd = observed.deployment
        fields = {
            "reason": event.detail.reason or (sd.rollback_reason or sd.status_reason if sd else ""),
            "finished_at": iso(event.at),
            "duration_seconds": duration_seconds(existing.get("started_at"), event.at),
            **dynamo_fields(observed.fields),
        }
        before = self.history.transition(record.key(), status, DEPLOYMENT_MOVES[status], fields, create)
        if before is None:
            logger.info(
                "deployment record unchanged: it has already moved on",
                extra={**log, "status": existing.get("status"), "event_status": status},
            )
            return None
        if before == {}:
            logger.info("deployment not started by ecspilot: recorded", extra={**log, "status": status})
        merged = {**create, **before, **{k: v for k, v in fields.items() if v is not None}, "status": status}
        return Moved(merged, str(before.get("status", "")), status)

    def _hold(self, record: Mapping[str, Any], status: str) -> None:
        """Before a record becomes FAILED or ROLLED_BACK, hold its digest on the service, so no
        redelivered push or catch-up deploys it there again. Written first: when the record's
        move then fails, the event's retry writes the hold again (idempotent) and moves it."""
        ServiceState(self.history).hold(
            str(record.get("cluster", "")),
            str(record.get("service", "")),
            str(record.get("image_digest", "")),
            status,
            str(record.get("started_at", "")),
        )

    def _move(self, record: Mapping[str, Any], status: str, fields: Mapping[str, Any]) -> Moved | None:
        key = {"pk": str(record["pk"]), "sk": str(record["sk"])}
        before = self.history.transition(key, status, DEPLOYMENT_MOVES[status], fields)
        if before is None:
            logger.info(
                "deployment record unchanged: it has already moved on",
                extra={
                    "cluster": record.get("cluster"),
                    "ecs_service": record.get("service"),
                    "deployment_id": record.get("deployment_id"),
                    "status": record.get("status"),
                    "event_status": status,
                },
            )
            return None
        return Moved(
            {**before, **{k: v for k, v in fields.items() if v is not None}, "status": status},
            str(before.get("status", "")),
            status,
        )

    def _rolled_back(self, event: EcsDeploymentStateChangeEvent, target: str) -> Moved | None:
        """Mark the deployment a circuit-breaker rollback undid: the service's newest deployment
        other than the rollback itself and the one it returns to, when still open or FAILED.

        Only the newest is considered: an older record left IN_PROGRESS (superseded by a later
        push) was not what ECS rolled back.
        """
        cluster, service = self._service_of(event)
        rollback_id = event.detail.deployment_id
        for item in self.history.deployments(cluster, service, limit=10):
            if item.get("deployment_id") in {rollback_id, target}:
                continue
            if item.get("status") in DEPLOYMENT_MOVES["ROLLED_BACK"]:
                self._hold(item, "ROLLED_BACK")
                return self._move(
                    item,
                    "ROLLED_BACK",
                    {
                        "rolled_back_to": target,
                        "rollback_deployment_id": rollback_id,
                        "reason": item.get("reason") or event.detail.reason,
                        "finished_at": iso(event.at),
                        "duration_seconds": duration_seconds(item.get("started_at"), event.at),
                    },
                )
            break  # already ROLLED_BACK (a duplicate event), or COMPLETED: nothing to mark
        logger.info(
            "rollback with no open deployment to mark",
            extra={"cluster": cluster, "ecs_service": service, "rolled_back_to": target},
        )
        return None

    def deployment_event(self, event: EcsDeploymentStateChangeEvent) -> dict[str, Any]:
        """Apply one deployment event; see the module docstring."""
        status = deployment_status(event.detail.event_name)
        cluster, service = self._service_of(event)
        log = {
            "cluster": cluster,
            "ecs_service": service,
            "deployment_id": event.detail.deployment_id,
            "event_name": event.detail.event_name,
        }
        if status is None:
            logger.info("deployment event not tracked", extra=log)
            count("EventsIgnored")
            return {"ignored": f"event {event.detail.event_name} is not tracked"}
        target = rollback_target(event.detail.reason) if status == "IN_PROGRESS" else None
        # blue/green, linear, canary: the service deployment, not the event, says how it stands
        existing = self.history.deployment(event.detail.deployment_id) or {}
        if existing and existing.get("service") not in (None, service):
            # issue 24: one deployment id, two services (another account's event carrying the
            # id of ecspilot's own deployment): the event may only touch its own service's record
            reason = "the deployment id is a record of another service (or account)"
            logger.warning("deployment event ignored", extra={**log, "reason": reason})
            count("EventsUntrustedOrigin")
            return {"ignored": reason}
        # (a forwarded event of another account, issue 13: recorded as it says; ecspilot's own
        # ECS client cannot read that account's service deployments)
        foreign = service != parse_service_arn(event.service_arn)[1]
        observed = (
            Observation() if foreign else ServiceDeploymentReader(self.clients.ecs).observe(event, existing)
        )
        said, status = status, reconciled_status(status, observed.ecs_status)
        if said != status:
            logger.info(
                "the service deployment overrides the event",
                extra={**log, "event_status": said, "status": status, "ecs_status": observed.ecs_status},
            )
        moved: list[Moved] = []
        step = self._upsert(event, status, "rollback" if target else "external", existing, observed)
        moved += [step] if step else []
        if target:
            step = self._rolled_back(event, target)
            moved += [step] if step else []
        promotions = [done for m in moved for done in self._after(m, event.region)]
        logger.info("deployment event applied", extra={**log, "moved": [m.status for m in moved]})
        return {
            **({"promotions": promotions} if promotions else {}),
            "deployment_id": event.detail.deployment_id,
            "cluster": cluster,
            "service": service,
            "moved": [
                {"deployment_id": m.record.get("deployment_id"), "from": m.before, "to": m.status}
                for m in moved
            ],
        }

    def _after(self, moved: Moved, region: str) -> list[Any]:
        """What follows a real move, for an event or reconcile alike: metrics, the notification
        of a FAILED or ROLLED_BACK record, the promotions of a COMPLETED one."""
        self._report_deployment(moved, region)
        if moved.status != "COMPLETED" or self.on_completed is None:
            return []
        return list(self.on_completed(moved.record) or [])

    def settle(
        self, record: Mapping[str, Any], observed: Observation, region: str
    ) -> tuple[Moved | None, list[Any]]:
        """Reconcile's seam (:mod:`ecspilot.tracking.open_deployments`): move the open ``record``
        to what its service deployment (``observed``) says, as an event would: the same transition,
        the same hold before FAILED or ROLLED_BACK, the same metrics, message and promotions. One
        still running only gets its stage fields. ``(the move or None, the promotions)``."""
        sd = observed.deployment
        status = reconciled_status("IN_PROGRESS", observed.ecs_status)
        key = {"pk": str(record["pk"]), "sk": str(record["sk"])}
        if sd is None or status == "IN_PROGRESS":
            annotate(self.history, key, observed.fields)
            return None, []
        if status in HOLDING:
            self._hold(record, status)
        at = sd.finished_at or sd.updated_at
        fields = {
            "reason": sd.rollback_reason or sd.status_reason or "",
            "finished_at": iso(at),
            "duration_seconds": duration_seconds(record.get("started_at"), at),
            **dynamo_fields(observed.fields),
        }
        moved = self._move(record, status, fields)
        return moved, self._after(moved, region) if moved else []

    def _report_deployment(self, moved: Moved, region: str) -> None:
        record = moved.record
        cluster, service = str(record.get("cluster", "")), str(record.get("service", ""))
        set_dimensions(service_dimensions(self.config, cluster, service))
        count(DEPLOYMENT_METRIC[moved.status])
        # a FAILED deployment later rolled back was timed when it failed
        if record.get("duration_seconds") is not None and moved.before == "IN_PROGRESS":
            seconds("DeploymentDuration", float(record["duration_seconds"]))
        for key, value in delivery_metrics(record, moved.before, moved.status):
            if key in DELIVERY_COUNTS:
                count(DELIVERY_COUNTS[key], value)
            else:
                seconds(DELIVERY_SECONDS[key], value)
        logger.info(
            f"deployment {moved.status.lower()}",
            extra={
                "cluster": cluster,
                "ecs_service": service,
                "deployment_id": record.get("deployment_id"),
                "image_digest": short_digest(str(record.get("image_digest", ""))),
                "reason": record.get("reason"),
                "duration_seconds": record.get("duration_seconds"),
            },
        )
        if moved.status in ("FAILED", "ROLLED_BACK"):
            stops = deployment_stops(self.history, record)
            subject, body = deployment_message(record, moved.status, region, stops)
            self.notifier.notify(
                subject,
                body,
                {"kind": "deployment", "status": moved.status, "service": f"{cluster}/{service}"},
                chat={
                    "digest": str(record.get("image_digest") or ""),
                    "release": str(record.get("deployment_id") or ""),
                    "deployment": str(record.get("deployment_id") or ""),
                },
                next_steps=(
                    [f"Roll back with the Rollback button or `ecspilot rollback {cluster}/{service}`"]
                    if moved.status == "FAILED"
                    else [f"ECS rolled it back; see `ecspilot history {service}`"]
                ),
            )
