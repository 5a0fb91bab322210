"""Schedules: one EventBridge Scheduler schedule per scheduled job, in ecspilot's schedule group.

The runbook (docs/ARCHITECTURE.md, "Reconcile"), :func:`sync_schedules`, run as the reconcile part
``schedules`` (:func:`ecspilot.jobs.handler.reconcile_schedules` builds its inputs):

1. desired: from the config, one schedule per job with a ``schedule`` and without ``adopt: false``
   (such a job's schedule stays the user's: never created, updated or deleted) (expression, time zone,
   ``enabled`` -> State, flexible window, retry policy), targeting the ``run_job`` function with
   the input ``{"job": NAME, "scheduled_time": "<aws.scheduler.scheduled-time>"}``, the
   scheduler role and, when set, the dead-letter queue;
2. actual: the schedules of ecspilot's group only (``ListSchedules`` + ``GetSchedule``), so
   schedules outside the group are never read, changed or deleted;
3. decide per name (pure, :func:`diff`): create, update (naming what differs), delete, in-sync;
4. apply, unless ``dry_run``. A second run finds everything in sync and writes nothing.

``ECSPILOT_RUN_JOB_ARN`` and ``ECSPILOT_SCHEDULER_ROLE_ARN`` are required only when some job has
a schedule; without them this part fails fast with a :class:`SettingsError` naming the variable.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.domain.config import EcspilotConfig, JobConfig, RetryPolicy
from ecspilot.domain.plan import Action, Change
from ecspilot.errors import AwsError
from ecspilot.obs import logger
from ecspilot.records import dataclass

SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
NAME_MAX = 64  # Scheduler's limit on a schedule name
_NAME_UNSAFE = re.compile(r"[^0-9A-Za-z_.-]")
# The fields of a schedule ecspilot manages; the rest (dates, KMS key, ...) it leaves unset.
COMPARED = (
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "State",
    "FlexibleTimeWindow",
    "Target",
    "Description",
)


def schedule_name(job: str) -> str:
    """The schedule's name for a job: the job name, or a shortened one with a hash past 64 characters."""
    safe = _NAME_UNSAFE.sub("-", job)
    if safe == job and len(safe) <= NAME_MAX:
        return safe
    digest = hashlib.sha256(job.encode()).hexdigest()[:8]
    return f"{safe[: NAME_MAX - len(digest) - 1]}-{digest}"


def target_input(job: str) -> str:
    """The input a firing sends to run_job: the job and the firing's scheduled time."""
    return json.dumps({"job": job, "scheduled_time": SCHEDULED_TIME}, separators=(",", ":"))


@dataclass(frozen=True)
class ScheduleTarget:
    """Where schedules send their firings."""

    run_job_arn: str
    role_arn: str
    dlq_arn: str | None = None


def desired_schedule(job: JobConfig, target: ScheduleTarget) -> dict[str, Any]:
    """The schedule of one scheduled job, in CreateSchedule's shape (without Name and GroupName)."""
    retry = job.retry_policy or RetryPolicy()
    window: dict[str, Any] = (
        {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": job.flexible_window_minutes}
        if job.flexible_window_minutes
        else {"Mode": "OFF"}
    )
    api_target: dict[str, Any] = {
        "Arn": target.run_job_arn,
        "RoleArn": target.role_arn,
        "Input": target_input(job.name),
        "RetryPolicy": {
            "MaximumEventAgeInSeconds": retry.maximum_event_age_seconds,
            "MaximumRetryAttempts": retry.maximum_retry_attempts,
        },
    }
    if target.dlq_arn:
        api_target["DeadLetterConfig"] = {"Arn": target.dlq_arn}
    return {
        "ScheduleExpression": job.schedule,
        "ScheduleExpressionTimezone": job.timezone,
        "State": "ENABLED" if job.enabled else "DISABLED",
        "FlexibleTimeWindow": window,
        "Target": api_target,
        "Description": f"ecspilot job {job.name}",
    }


def desired_schedules(config: EcspilotConfig, target: ScheduleTarget | None) -> dict[str, dict[str, Any]]:
    """Schedule name -> desired schedule, for every job with a ``schedule`` that ecspilot owns
    (``adopt: false`` jobs keep the user's own schedule)."""
    scheduled = [j for j in config.jobs if j.owns_schedule]
    if not scheduled:
        return {}
    if target is None:
        raise ValueError("a schedule target is needed when jobs have schedules")
    return {schedule_name(j.name): desired_schedule(j, target) for j in scheduled}


def _comparable(schedule: Mapping[str, Any]) -> dict[str, Any]:
    out = {key: schedule.get(key) for key in COMPARED}
    target = dict(out.get("Target") or {})
    if isinstance(target.get("Input"), str):
        with contextlib.suppress(ValueError):  # not JSON: compared as text
            target["Input"] = json.loads(target["Input"])
    out["Target"] = target
    out["ScheduleExpressionTimezone"] = out.get("ScheduleExpressionTimezone") or "UTC"
    return out


def differences(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """What differs between a desired and an existing schedule, one phrase per field."""
    want, have = _comparable(desired), _comparable(actual)
    out = []
    for key in COMPARED:
        if key == "Target":
            for sub in sorted(set(want["Target"]) | set(have["Target"])):
                if want["Target"].get(sub) != have["Target"].get(sub):
                    out.append(f"Target.{sub}")
        elif want[key] != have[key]:
            out.append(f"{key} {have[key]} -> {want[key]}")
    return out


def diff(
    desired: Mapping[str, Mapping[str, Any]], actual: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, Change, str]]:
    """(name, change, detail) per schedule: create, update, delete or in-sync, sorted by name."""
    out: list[tuple[str, Change, str]] = []
    for name in sorted(set(desired) | set(actual)):
        if name not in actual:
            out.append((name, "create", f"{desired[name]['ScheduleExpression']} {desired[name]['State']}"))
        elif name not in desired:
            out.append((name, "delete", "no job in the config has this schedule"))
        else:
            changed = differences(desired[name], actual[name])
            out.append((name, "update", ", ".join(changed)) if changed else (name, "in-sync", ""))
    return out


def unadopted(config: EcspilotConfig) -> set[str]:
    """Schedule names of the jobs marked ``adopt: false``: ecspilot neither creates, updates nor
    deletes them."""
    return {schedule_name(j.name) for j in config.jobs if not j.adopt}


def is_promotion_timer(schedule: Mapping[str, Any]) -> bool:
    """True for a promotion's bake timer (its input says ``"trigger": "promotion"``)."""
    try:
        payload = json.loads(str(schedule.get("Target", {}).get("Input") or "{}"))
    except ValueError:
        return False
    return isinstance(payload, dict) and payload.get("trigger") == "promotion"


# --- AWS edges --------------------------------------------------------------------------------


def actual_schedules(scheduler: Any, group: str) -> dict[str, dict[str, Any]]:
    """The schedules of ``group`` (and only of it), each as GetSchedule returns it."""
    out: dict[str, dict[str, Any]] = {}
    try:
        for page in scheduler.get_paginator("list_schedules").paginate(GroupName=group):
            for summary in page.get("Schedules", []):
                if summary.get("GroupName", group) != group:
                    continue  # belt and braces: never look outside ecspilot's group
                name = str(summary["Name"])
                out[name] = dict(scheduler.get_schedule(Name=name, GroupName=group))
    except (ClientError, BotoCoreError) as exc:
        raise AwsError(f"reading schedules of group {group} failed: {exc}", schedule_group=group) from exc
    return out


def _apply(scheduler: Any, group: str, name: str, change: str, desired: Mapping[str, Any] | None) -> None:
    if change == "create" and desired is not None:
        scheduler.create_schedule(Name=name, GroupName=group, **desired)
    elif change == "update" and desired is not None:
        scheduler.update_schedule(Name=name, GroupName=group, **desired)
    elif change == "delete":
        scheduler.delete_schedule(Name=name, GroupName=group)


def sync_schedules(
    scheduler: Any, config: EcspilotConfig, group: str, target: ScheduleTarget | None, dry_run: bool
) -> list[Action]:
    """Plan, and unless ``dry_run`` apply, the changes that make ``group`` match the config's
    scheduled jobs (``target``: where they fire; needed only when some job has a schedule)."""
    desired = desired_schedules(config, target)
    try:
        actual = actual_schedules(scheduler, group)
    except AwsError as exc:
        return [Action("schedule", group, "error", str(exc))]
    # a job marked `adopt: false` is not ecspilot's to schedule: a schedule of its name in the
    # group (made before the user chose so) is left as it is, never updated nor deleted
    for name in unadopted(config):
        actual.pop(name, None)
    # a promotion's one-time bake timer (issue 13) shares the group: not a job's, never deleted here
    actual = {name: found for name, found in actual.items() if not is_promotion_timer(found)}
    actions = []
    for name, change, detail in diff(desired, actual):
        applied = False
        if change != "in-sync" and not dry_run:
            try:
                _apply(scheduler, group, name, change, desired.get(name))
                applied = True
            except (ClientError, BotoCoreError) as exc:
                logger.warning(
                    "schedule change failed", extra={"schedule": f"{group}/{name}", "change": change}
                )
                actions.append(Action("schedule", f"{group}/{name}", "error", f"{change} failed: {exc}"))
                continue
            logger.info(
                "schedule changed",
                extra={"schedule": f"{group}/{name}", "change": change, "detail": detail},
            )
        actions.append(Action("schedule", f"{group}/{name}", change, detail, applied))
    return actions
