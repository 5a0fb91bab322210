"""The run runbook: an ``ECS Task State Change`` (STOPPED) event -> the job run record closed,
metrics, a notification.

The runbook of a task event (``ECS Task State Change``, STOPPED):

1. find the run record by task ARN (gsi1); a task without one is not ecspilot's: ignored;
2. decide the outcome (pure, :func:`~ecspilot.tracking.decisions.run_outcome`) from the essential containers' exit codes
   (the task definition says which are essential) and the stop code;
3. close the record with one conditional UpdateItem (open -> terminal only);
4. metrics and, for a failed run, a notification.
"""

from __future__ import annotations

from typing import Any

from ecspilot.aws.clients import Clients
from ecspilot.aws.ecs_reads import TaskDefinitions
from ecspilot.aws.history import History
from ecspilot.aws.notify import Notifier
from ecspilot.domain.config import EcspilotConfig
from ecspilot.domain.events import EcsTaskStateChangeEvent
from ecspilot.obs import count, logger, seconds
from ecspilot.tracking.decisions import (
    OPEN_RUN,
    cluster_name,
    duration_seconds,
    iso,
    job_dimensions,
    run_outcome,
)
from ecspilot.tracking.essential import essential_containers
from ecspilot.tracking.messages import run_message
from ecspilot.tracking.report import set_dimensions


class RunTracker:
    """Closes job run records from STOPPED task events; see the module docstring."""

    def __init__(
        self, config: EcspilotConfig, clients: Clients, history: History, topic_arn: str | None = None
    ) -> None:
        self.config = config
        self.clients = clients
        self.history = history
        self.notifier = Notifier(clients, topic_arn)

    def essential(self, task_definition_arn: str) -> set[str] | None:
        """The revision's essential containers (None: judge them all); see :mod:`.essential`."""
        return essential_containers(TaskDefinitions(self.clients.ecs), task_definition_arn)

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
        essential = self.essential(task.task_definition_arn or str(record.get("task_definition")))
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
        set_dimensions(job_dimensions(self.config, job))
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
            self.notifier.notify(subject, body, {"kind": "job-run", "status": status, "job": job})
        return {
            "job": job,
            "task_arn": task.task_arn,
            "moved": {"from": str(before.get("status", "")), "to": status},
            "reason": reason,
        }
