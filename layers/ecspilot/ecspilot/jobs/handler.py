"""The jobs' entry points: the only place of the jobs package that knows the process runtime.

- :func:`handle_run_job_event`: the ``run_job`` function (a Scheduler firing or a direct invoke);
- :func:`reconcile_schedules`: the reconcile part ``schedules``.

Each builds what the core needs from the runtime (clients, history, settings values) and makes
one call into it: :func:`ecspilot.jobs.runbook.run_job`, :func:`ecspilot.jobs.schedules.sync_schedules`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel, ConfigDict, Field
else:
    from ecspilot.domain.modeling import BaseModel, ConfigDict, Field

from ecspilot.aws.claims import HasRemainingTime, in_progress_until
from ecspilot.domain.config import EcspilotConfig, JobConfig
from ecspilot.domain.envelope import parse_event
from ecspilot.domain.plan import Action
from ecspilot.errors import UnknownJobError
from ecspilot.interfaces.runtime import Runtime
from ecspilot.jobs.plan import firing_token
from ecspilot.jobs.runbook import run_job
from ecspilot.jobs.schedules import ScheduleTarget, sync_schedules

# the entry points, and the core call the CLI's ``run`` verb makes beside them
__all__ = ["RunJobEvent", "find_job", "handle_run_job_event", "reconcile_schedules", "run_job"]


class RunJobEvent(BaseModel):
    """The run_job function's input: what a Scheduler schedule sends, or a direct invoke."""

    # defer_build: the validator is built on first use, not at import (a cold start builds only
    # what its first event validates; a config loaded from its compact form never validates)
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    job: str = Field(min_length=1)
    scheduled_time: str | None = None


def find_job(config: EcspilotConfig, name: str) -> JobConfig:
    """The configured job ``name``, or :class:`UnknownJobError`."""
    job = config.job(name)
    if job is None:
        known = ", ".join(j.name for j in config.jobs) or "none"
        raise UnknownJobError(f"no job named {name!r} in the config (jobs: {known})", job=name)
    return job


def handle_run_job_event(
    event: Any, rt: Runtime, dry_run: bool = False, context: HasRemainingTime | None = None
) -> dict[str, Any]:
    """The ``run_job`` flow: a Scheduler firing (``{"job", "scheduled_time"}``) or ``{"job"}``.
    ``context`` (the Lambda context) bounds how long the firing's claim protects this invocation."""
    parsed = parse_event(RunJobEvent, event, "run_job input")
    job = find_job(rt.config, parsed.job)
    if parsed.scheduled_time:
        result = run_job(
            job,
            rt.clients,
            rt.history,
            "schedule",
            request_key=firing_token(job.name, parsed.scheduled_time),
            scheduled_time=parsed.scheduled_time,
            dry_run=dry_run,
            claim_until=in_progress_until(context),
        )
    else:
        result = run_job(job, rt.clients, rt.history, "manual", dry_run=dry_run)
    return result.as_dict()


def reconcile_schedules(rt: Runtime, dry_run: bool) -> list[Action]:
    """The reconcile part ``schedules``. The run_job target and the scheduler role are required
    (a :class:`~ecspilot.errors.SettingsError` naming the variable) only when a job has a schedule."""
    target = None
    if any(j.owns_schedule for j in rt.config.jobs):
        target = ScheduleTarget(
            run_job_arn=rt.settings.require("run_job_arn"),
            role_arn=rt.settings.require("scheduler_role_arn"),
            dlq_arn=rt.settings.scheduler_dlq_arn,
        )
    return sync_schedules(rt.clients.scheduler, rt.config, rt.settings.schedule_group, target, dry_run)
