"""ECS state events -> closed deployment and run records, metrics, notifications.

The runbook of a deployment event (``ECS Deployment State Change``):

1. parse it: service ARN (``resources[0]``), ECS deployment id, event name, reason, ``updatedAt``;
2. find the record by deployment id (gsi1, a Query); a deployment ecspilot did not start gets
   an ``external`` record (a circuit-breaker rollback gets a ``rollback`` one), never dropped;
3. decide the new status (pure, :func:`deployment_status`) and write it with one conditional
   UpdateItem that only moves forward (:data:`DEPLOYMENT_MOVES`): terminal states are final,
   so duplicates and late events change nothing;
4. a rollback-in-progress event (reason ``... rolling back to deploymentId X``) also marks
   the deployment it undid ROLLED_BACK: the newest open or failed deployment of the service
   other than X and the rollback itself;
5. only when a record really moved: metrics (dimensions bounded to configured services) and,
   for FAILED and ROLLED_BACK, an SNS notification when a topic is configured.

The runbook of a task event (``ECS Task State Change``, STOPPED):

1. find the run record by task ARN (gsi1); a task without one is not ecspilot's: ignored;
2. decide the outcome (pure, :func:`run_outcome`) from the essential containers' exit codes
   (the task definition says which are essential) and the stop code;
3. close the record with one conditional UpdateItem (open -> terminal only);
4. metrics and, for a failed run, a notification.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from aws_lambda_powertools.warnings import PowertoolsUserWarning
from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.clients import Clients
from ecspilot.aws.history import DeploymentRecord, History
from ecspilot.aws.service_state import ServiceState
from ecspilot.domain.config import EcspilotConfig
from ecspilot.domain.envelope import parse_event
from ecspilot.domain.events import (
    EcsContainerState,
    EcsDeploymentStateChangeEvent,
    EcsTaskStateChangeEvent,
)
from ecspilot.domain.images import short_digest
from ecspilot.domain.taskdef import family_revision
from ecspilot.errors import AwsError
from ecspilot.interfaces.origins import untrusted_reason
from ecspilot.interfaces.runtime import Runtime
from ecspilot.obs import count, logger, metrics, seconds

DeploymentStatus = Literal["IN_PROGRESS", "COMPLETED", "FAILED", "ROLLED_BACK"]
RunStatus = Literal["SUCCEEDED", "FAILED", "STOPPED"]

#: status -> the statuses a record may hold for the move to be allowed
DEPLOYMENT_MOVES: dict[str, tuple[str, ...]] = {
    "IN_PROGRESS": (),
    "COMPLETED": ("IN_PROGRESS",),
    "FAILED": ("IN_PROGRESS",),
    "ROLLED_BACK": ("IN_PROGRESS", "FAILED"),
}
OPEN_RUN = ("PENDING", "RUNNING")
HOLDING = ("FAILED", "ROLLED_BACK")  # a digest that ended so is never deployed there again
EVENT_STATUS: dict[str, DeploymentStatus] = {
    "SERVICE_DEPLOYMENT_IN_PROGRESS": "IN_PROGRESS",
    "SERVICE_DEPLOYMENT_COMPLETED": "COMPLETED",
    "SERVICE_DEPLOYMENT_FAILED": "FAILED",
}
ROLLBACK_RE = re.compile(r"rolling back to deploymentId (?P<target>ecs-svc/[\w-]+)")
OTHER = "other"  # the one dimension value shared by everything outside the config
DEPLOYMENT_METRIC = {
    "COMPLETED": "DeploymentsSucceeded",
    "FAILED": "DeploymentsFailed",
    "ROLLED_BACK": "DeploymentsRolledBack",
}


# --- pure decisions ---------------------------------------------------------------------------


def parse_service_arn(arn: str) -> tuple[str, str]:
    """``(cluster, service)`` from a service ARN; the old ARN format has no cluster (``default``)."""
    resource = arn.split(":", 5)[-1]
    parts = resource.split("/")
    if len(parts) >= 3:
        return parts[1], parts[2]
    return "default", parts[-1]


def cluster_name(cluster_arn: str) -> str:
    return cluster_arn.rsplit("/", 1)[-1]


def rollback_target(reason: str) -> str | None:
    """The deployment a circuit-breaker rollback returns to, from the event's reason."""
    match = ROLLBACK_RE.search(reason)
    return match.group("target") if match else None


def deployment_status(event_name: str) -> DeploymentStatus | None:
    """The record status an ECS deployment event reports, or None for an event we do not track."""
    return EVENT_STATUS.get(event_name)


def may_move(current: str, new: str) -> bool:
    """True when a record in ``current`` may move to ``new`` (terminal states are final)."""
    return current in DEPLOYMENT_MOVES.get(new, ())


def run_outcome(
    containers: Sequence[EcsContainerState], stop_code: str, stopped_reason: str, essential: set[str] | None
) -> tuple[RunStatus, str]:
    """The outcome of a stopped job task, and a reason a person can read.

    A task stopped on request (``UserInitiated``: ``ecspilot run`` replacing it, a person) is
    STOPPED. Otherwise it SUCCEEDED when every essential container exited 0 (sidecars killed
    when the essential container exits do not count); ``essential`` None means every container.
    """
    if stop_code == "UserInitiated":
        return "STOPPED", stopped_reason or "stopped on request"
    judged = [c for c in containers if essential is None or c.name in essential] or list(containers)
    if not judged:
        return "FAILED", stopped_reason or stop_code or "the task had no containers"
    never = [c for c in judged if c.exit_code is None]
    if never:
        why = never[0].reason or stopped_reason or stop_code
        return "FAILED", f"container {never[0].name} did not run to an exit: {why}"
    bad = [c for c in judged if c.exit_code != 0]
    if bad:
        codes = ", ".join(f"{c.name} exited {c.exit_code}" for c in bad)
        return "FAILED", f"{codes} ({stopped_reason or stop_code})"
    return "SUCCEEDED", "every essential container exited 0"


def duration_seconds(start: str | datetime | None, end: datetime | None) -> int | None:
    """Whole seconds from ``start`` (an ISO string or datetime) to ``end``; None when unknown."""
    if start is None or end is None or start == "":
        return None
    if isinstance(start, str):
        try:
            start = datetime.fromisoformat(start.replace("Z", "+00:00"))
        except ValueError:
            return None
    return max(0, round((end - start).total_seconds()))


def iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def service_dimensions(config: EcspilotConfig, cluster: str, service: str) -> dict[str, str]:
    """Metric dimensions of a service: its own for configured services, one shared value otherwise."""
    if any(s.cluster == cluster and s.service_name == service for s in config.services):
        return {"Cluster": cluster, "Service": service}
    return {"Cluster": OTHER, "Service": OTHER}


def job_dimensions(config: EcspilotConfig, job: str) -> dict[str, str]:
    return {"Job": job if config.job(job) is not None else OTHER}


def console_url(region: str, cluster: str, service: str | None = None, task_arn: str | None = None) -> str:
    base = f"https://{region}.console.aws.amazon.com/ecs/v2/clusters/{cluster}"
    if task_arn:
        return f"{base}/tasks/{task_arn.rsplit('/', 1)[-1]}/configuration?region={region}"
    return f"{base}/services/{service}/deployments?region={region}"


def deployment_message(record: Mapping[str, Any], status: str, region: str) -> tuple[str, str]:
    """SNS subject and body for a deployment that failed or was rolled back."""
    cluster, service = str(record.get("cluster", "")), str(record.get("service", ""))
    what = "was rolled back" if status == "ROLLED_BACK" else "failed"
    image = "not started by ecspilot (image unknown)"
    if record.get("image_digest"):
        image = f"{record.get('repository', '')}:{record.get('image_tag', '')} ({record['image_digest']})"
    lines = [
        f"The deployment of ECS service {service} on cluster {cluster} {what}.",
        "",
        f"service:        {cluster}/{service}",
        f"image:          {image}",
        f"task def:       {family_revision(str(record.get('to_task_definition', ''))) or '-'}"
        f" (was {family_revision(str(record.get('from_task_definition', ''))) or '-'})",
        f"deployment:     {record.get('deployment_id', '')} ({record.get('trigger', '')})",
        f"started:        {record.get('started_at', '')}",
        f"reason:         {record.get('reason') or '-'}",
    ]
    if record.get("rolled_back_to"):
        lines.append(f"rolled back to: {record['rolled_back_to']} (the last completed deployment)")
    lines += ["", f"ECS console:    {console_url(region, cluster, service=service)}"]
    if status == "FAILED":
        lines.append("What to do: look at the stopped tasks' reasons in the console, fix, push again.")
    subject = f"ecspilot: {cluster}/{service} deployment {status.replace('_', ' ').lower()}"
    return subject[:100], "\n".join(lines)


def run_message(record: Mapping[str, Any], region: str) -> tuple[str, str]:
    """SNS subject and body for a failed job run."""
    cluster, job = str(record.get("cluster", "")), str(record.get("job", ""))
    task_arn = str(record.get("task_arn", ""))
    exits = record.get("exit_codes") or {}
    images = record.get("images") or {}
    lines = [
        f"A run of job {job} on cluster {cluster} failed.",
        "",
        f"job:          {job} ({record.get('trigger', '')})",
        f"task:         {task_arn}",
        f"task def:     {family_revision(str(record.get('task_definition', '')))}",
        f"exit codes:   {', '.join(f'{k}={v}' for k, v in exits.items()) or '-'}",
        f"images:       {', '.join(f'{k}={v}' for k, v in images.items()) or '-'}",
        f"stop code:    {record.get('stop_code', '') or '-'}",
        f"reason:       {record.get('reason', '')}",
        f"started:      {record.get('started_at', '')}",
        "",
        f"ECS console:  {console_url(region, cluster, task_arn=task_arn)}",
        f"History:      ecspilot history {job}",
    ]
    return f"ecspilot: job {job} failed"[:100], "\n".join(lines)


# --- the runbook ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moved:
    """A record that really changed status (the only thing that emits metrics and messages)."""

    record: dict[str, Any]
    before: str
    status: str


def _dimensions(dimensions: Mapping[str, str]) -> None:
    """Set the invocation's metric dimensions (one event per invocation, so one set).

    Powertools clears them when it flushes; with metrics disabled (the demo) it does not, and
    warns when a value is replaced, which is what we mean here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PowertoolsUserWarning)
        for name, value in dimensions.items():
            metrics.add_dimension(name=name, value=value)


_essential_cache: dict[str, set[str] | None] = {}  # task definition revisions never change
_essential_lock = threading.Lock()


class Tracker:
    """Closes deployment and run records from ECS events."""

    def __init__(
        self, config: EcspilotConfig, clients: Clients, history: History, topic_arn: str | None = None
    ) -> None:
        self.config = config
        self.clients = clients
        self.history = history
        self.topic_arn = topic_arn

    # AWS edges ------------------------------------------------------------------------------

    def essential_containers(self, task_definition_arn: str) -> set[str] | None:
        """The essential containers of a revision (None when it cannot be described)."""
        if not task_definition_arn:
            return None
        with _essential_lock:
            if task_definition_arn in _essential_cache:
                return _essential_cache[task_definition_arn]
        try:
            td = self.clients.ecs.describe_task_definition(taskDefinition=task_definition_arn)
        except (ClientError, BotoCoreError) as exc:
            # judging every container is the safe side: a sidecar's exit may fail a good run
            logger.warning(
                "cannot describe the task definition: every container counts as essential",
                extra={"task_definition": family_revision(task_definition_arn), "error": str(exc)},
            )
            return None
        names = {c["name"] for c in td["taskDefinition"]["containerDefinitions"] if c.get("essential", True)}
        with _essential_lock:
            _essential_cache[task_definition_arn] = names
        return names

    def notify(self, subject: str, body: str, attributes: Mapping[str, str]) -> bool:
        """Publish to the notification topic, if any. A failed publish is logged and counted,
        not raised: the record has already moved, so a retry would not send it again."""
        if not self.topic_arn:
            return False
        try:
            self.clients.sns.publish(
                TopicArn=self.topic_arn,
                Subject=subject,
                Message=body,
                MessageAttributes={
                    k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v
                },
            )
        except (ClientError, BotoCoreError) as exc:
            logger.error("notification not sent", extra={"error": str(exc), "subject": subject})
            count("NotificationErrors")
            return False
        logger.info("notification sent", extra={"subject": subject})
        return True

    # deployments ----------------------------------------------------------------------------

    def _upsert(self, event: EcsDeploymentStateChangeEvent, status: str, trigger: str) -> Moved | None:
        """Apply the event's status to the deployment's one item (keyed by its ECS id), creating
        it as ``external`` (or ``rollback``) when the deployer has not written it yet: deployer
        and tracker meet on the same item whichever writes first."""
        cluster, service = parse_service_arn(event.service_arn)
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
            return None
        existing = self.history.deployment(deployment_id) or {}
        if status in HOLDING and existing.get("status") in DEPLOYMENT_MOVES[status]:
            self._hold(existing, status)
        fields = {
            "reason": event.detail.reason,
            "finished_at": iso(event.at),
            "duration_seconds": duration_seconds(existing.get("started_at"), event.at),
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
        cluster, service = parse_service_arn(event.service_arn)
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
        cluster, service = parse_service_arn(event.service_arn)
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
        moved: list[Moved] = []
        step = self._upsert(event, status, "rollback" if target else "external")
        moved += [step] if step else []
        if target:
            step = self._rolled_back(event, target)
            moved += [step] if step else []
        for m in moved:
            self._report_deployment(m, event.region)
        logger.info("deployment event applied", extra={**log, "moved": [m.status for m in moved]})
        return {
            "deployment_id": event.detail.deployment_id,
            "cluster": cluster,
            "service": service,
            "moved": [
                {"deployment_id": m.record.get("deployment_id"), "from": m.before, "to": m.status}
                for m in moved
            ],
        }

    def _report_deployment(self, moved: Moved, region: str) -> None:
        record = moved.record
        cluster, service = str(record.get("cluster", "")), str(record.get("service", ""))
        _dimensions(service_dimensions(self.config, cluster, service))
        count(DEPLOYMENT_METRIC[moved.status])
        # a FAILED deployment later rolled back was timed when it failed
        if record.get("duration_seconds") is not None and moved.before == "IN_PROGRESS":
            seconds("DeploymentDuration", float(record["duration_seconds"]))
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
            subject, body = deployment_message(record, moved.status, region)
            self.notify(
                subject,
                body,
                {"kind": "deployment", "status": moved.status, "service": f"{cluster}/{service}"},
            )

    # job runs -------------------------------------------------------------------------------

    def task_event(self, event: EcsTaskStateChangeEvent) -> dict[str, Any]:
        """Close the run record of a stopped task; see the module docstring."""
        task = event.detail
        log = {"cluster": cluster_name(task.cluster_arn), "task_arn": task.task_arn}
        if task.last_status != "STOPPED":
            count("EventsIgnored")
            return {"ignored": f"task is {task.last_status}, not STOPPED"}
        records = self.history.run_by_task(task.task_arn)
        if not records:
            logger.info("stopped task has no run record: not an ecspilot job run", extra=log)
            count("EventsIgnored")
            return {"ignored": "no run record for this task"}
        record = records[0]
        essential = self.essential_containers(task.task_definition_arn or str(record.get("task_definition")))
        status, reason = run_outcome(task.containers, task.stop_code, task.stopped_reason, essential)
        duration = duration_seconds(task.started_at or task.created_at, task.stopped_at)
        fields: dict[str, Any] = {
            "reason": reason,
            "stop_code": task.stop_code,
            "stopped_reason": task.stopped_reason,
            "exit_codes": {c.name: c.exit_code for c in task.containers if c.exit_code is not None},
            "images": {
                c.name: c.image_digest or c.image for c in task.containers if c.image_digest or c.image
            },
            "task_started_at": iso(task.started_at),
            "stopped_at": iso(task.stopped_at),
            "duration_seconds": duration,
        }
        key = {"pk": str(record["pk"]), "sk": str(record["sk"])}
        before = self.history.transition(key, status, OPEN_RUN, fields)
        job = str(record.get("job", ""))
        if before is None:
            logger.info(
                "run record unchanged: already closed",
                extra={**log, "job": job, "status": record.get("status")},
            )
            return {"job": job, "task_arn": task.task_arn, "moved": None}
        closed = {**before, **{k: v for k, v in fields.items() if v is not None}, "status": status}
        _dimensions(job_dimensions(self.config, job))
        if status != "STOPPED":
            count("JobRunsSucceeded" if status == "SUCCEEDED" else "JobRunsFailed")
        if duration is not None:
            seconds("JobRunDuration", float(duration))
        logger.info(
            f"job run {status.lower()}",
            extra={**log, "job": job, "reason": reason, "exit_codes": fields["exit_codes"]},
        )
        if status == "FAILED":
            subject, body = run_message(closed, event.region)
            self.notify(subject, body, {"kind": "job-run", "status": status, "job": job})
        return {
            "job": job,
            "task_arn": task.task_arn,
            "moved": {"from": str(before.get("status", "")), "to": status},
            "reason": reason,
        }


def handle_ecs_event(event: Any, runtime: Runtime) -> dict[str, Any]:
    """The ``track_deployments`` flow: route an ECS event to the deployment or task runbook."""
    kind = event.get("detail-type") if isinstance(event, dict) else None
    parsed: EcsTaskStateChangeEvent | EcsDeploymentStateChangeEvent
    if kind == "ECS Task State Change":
        parsed = parse_event(EcsTaskStateChangeEvent, event, "ECS Task State Change")
    else:
        parsed = parse_event(EcsDeploymentStateChangeEvent, event, "ECS Deployment State Change")
    untrusted = untrusted_reason(runtime.settings, parsed.account, parsed.region, parsed.detail_type)
    if untrusted:
        return {"ignored": untrusted}
    if not runtime.history.enabled:
        # the history is what the tracker keeps: failing makes the event land in the DLQ
        raise AwsError("no state table configured (ECSPILOT_TABLE): nothing to track into")
    tracker = Tracker(runtime.config, runtime.clients, runtime.history, runtime.settings.notify_topic_arn)
    if isinstance(parsed, EcsTaskStateChangeEvent):
        return tracker.task_event(parsed)
    return tracker.deployment_event(parsed)
