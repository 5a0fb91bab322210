"""Job runs, the pure part: what a run asks ECS for (RunTask parameters, calls, client tokens,
``startedBy``), the concurrency decision, how RunTask failures classify, and the run's result.
No AWS here; table-tested in tests/unit/test_jobs.py. The runbook is :mod:`ecspilot.jobs.runbook`, the
ECS calls :mod:`ecspilot.jobs.tasks`.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict, field
from typing import Any, Literal

from ecspilot.domain.config import JobConfig, PlacementSpec
from ecspilot.domain.placement import resolve_placement
from ecspilot.records import dataclass

Trigger = Literal["schedule", "manual", "queue"]
Policy = Literal["allow", "forbid", "replace"]
Decision = Literal["run", "skip", "replace"]
Outcome = Literal["started", "skipped", "duplicate", "would-run", "would-skip", "failed"]

JOB_TAG = "ecspilot:job"
RUN_TAG = "ecspilot:run"  # the run id: finds the tasks of a run whose RunTask reply was lost
RUN_TASK_ATTEMPTS = 3  # sends of one RunTask call (throttled, or lost and found to start nothing)
RUN_TASK_BACKOFF = 0.1  # seconds before the second send, doubled after
COMPLETE_ATTEMPTS = 3  # tries at recording a started run and completing its claim
STARTED_BY_PREFIX = "ecspilot/"
STARTED_BY_MAX = 36  # RunTask's limit
RUN_TASK_MAX_COUNT = 10  # RunTask starts at most 10 tasks per call
CLIENT_TOKEN_MAX = 64
DESCRIBE_TASKS_BATCH = 100
RETRYABLE_REASONS = ("RESOURCE:", "AGENT")
_STARTED_BY_UNSAFE = re.compile(r"[^A-Za-z0-9_/-]")


def started_by(job: str) -> str:
    """The ``startedBy`` of the job's tasks: ``ecspilot/NAME``, at most 36 characters.

    RunTask allows letters, digits, ``-``, ``_`` and ``/``. A name that does not fit (too long,
    or with a ``.``) is shortened and suffixed with a hash of the full name, so two jobs never
    share a value.
    """
    safe = _STARTED_BY_UNSAFE.sub("-", job)
    plain = STARTED_BY_PREFIX + safe
    if safe == job and len(plain) <= STARTED_BY_MAX:
        return plain
    digest = hashlib.sha256(job.encode()).hexdigest()[:8]
    room = STARTED_BY_MAX - len(STARTED_BY_PREFIX) - len(digest) - 1
    return f"{STARTED_BY_PREFIX}{safe[:room]}-{digest}"


def decide(policy: Policy, live_tasks: int) -> Decision:
    """What the concurrency policy says when ``live_tasks`` of the job are PENDING or RUNNING."""
    if live_tasks == 0 or policy == "allow":
        return "run"
    return "skip" if policy == "forbid" else "replace"


def split_count(total: int, size: int = RUN_TASK_MAX_COUNT) -> list[int]:
    """Task counts of the RunTask calls that start ``total`` tasks (at most ``size`` each)."""
    return [min(size, total - start) for start in range(0, total, size)]


def classify_failure(reason: str) -> Literal["retryable", "permanent"]:
    """A RunTask ``failures[].reason``: capacity may pass (``RESOURCE:*``, ``AGENT``); the rest
    (``MISSING``, ``INACTIVE``, ``ATTRIBUTE``, ``LOCATION``, ...) needs a fix first."""
    return "retryable" if reason.startswith(RETRYABLE_REASONS) else "permanent"


def firing_token(job: str, scheduled_time: str) -> str:
    """The request key of one scheduled firing: a retried firing gets the same one."""
    return f"schedule:{job}:{scheduled_time}"


def client_token(request_key: str, offset: int) -> str:
    """RunTask's ``clientToken`` for the call that starts tasks ``offset..`` of a request."""
    digest = hashlib.sha256(request_key.encode()).hexdigest()[:40]
    return f"ecspilot-{digest}-{offset}"[:CLIENT_TOKEN_MAX]


def container_overrides(job: JobConfig, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """RunTask ``overrides`` from the job's config, with ``extra`` (same shape as the config's
    ``overrides``: ``{"containers": {NAME: {command, environment, cpu, memory}}, "cpu", "memory"}``)
    applied on top; an environment is merged by variable name."""
    merged: dict[str, dict[str, Any]] = {
        name: c.model_dump(exclude_none=True) for name, c in job.overrides.containers.items()
    }
    for name, values in dict((extra or {}).get("containers") or {}).items():
        current = merged.setdefault(name, {})
        for key, value in dict(values).items():
            if key == "environment" and isinstance(value, Mapping):
                current["environment"] = {**current.get("environment", {}), **value}
            else:
                current[key] = value
    out: dict[str, Any] = {}
    items = []
    for name, values in merged.items():
        item: dict[str, Any] = {"name": name}
        if "command" in values:
            item["command"] = list(values["command"])
        if "environment" in values:
            item["environment"] = [{"name": k, "value": str(v)} for k, v in values["environment"].items()]
        for key in ("cpu", "memory"):
            if key in values:
                item[key] = int(values[key])
        items.append(item)
    if items:
        out["containerOverrides"] = items
    for key in ("cpu", "memory"):
        value = (extra or {}).get(key) or getattr(job.overrides, key)
        if value:
            out[key] = str(value)
    return out


def run_task_params(
    job: JobConfig, task_definition: str, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The RunTask parameters shared by every call of one run (count and clientToken excluded)."""
    params: dict[str, Any] = {
        "cluster": job.cluster,
        "taskDefinition": task_definition,
        "startedBy": started_by(job.name),
        "tags": [{"key": JOB_TAG, "value": job.name}],
        "enableECSManagedTags": job.enable_ecs_managed_tags,
    }
    if job.propagate_tags:
        params["propagateTags"] = job.propagate_tags
    if job.launch_type:
        params["launchType"] = job.launch_type
    if job.capacity_provider_strategy:
        params["capacityProviderStrategy"] = [
            {"capacityProvider": i.capacity_provider, "weight": i.weight, "base": i.base}
            for i in job.capacity_provider_strategy
        ]
    if job.platform_version:
        params["platformVersion"] = job.platform_version
    if job.network:
        params["networkConfiguration"] = job.network.as_api()
    params.update(resolve_placement(placement_input(job), fargate=job.is_fargate).as_kwargs())
    task_overrides = container_overrides(job, overrides)
    if task_overrides:
        params["overrides"] = task_overrides
    return params


def placement_input(job: JobConfig) -> str | dict[str, Any] | None:
    if isinstance(job.placement, PlacementSpec):
        return job.placement.model_dump()
    return job.placement


@dataclass(frozen=True)
class RunFailure:
    """One RunTask ``failures[]`` item, classified."""

    reason: str
    detail: str = ""
    arn: str = ""
    kind: Literal["retryable", "permanent"] = "permanent"


@dataclass
class RunResult:
    """What one request to run a job did (or, in a dry run, would do)."""

    job: str
    trigger: str
    outcome: Outcome
    dry_run: bool = False
    cluster: str = ""
    task_definition: str = ""
    run_id: str = ""
    started_by: str = ""
    task_arns: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    failures: list[RunFailure] = field(default_factory=list)
    reason: str = ""
    started_at: str = ""
    scheduled_time: str = ""
    message_id: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the handler's response)."""
        return asdict(self)


def plan_requests(
    params: Mapping[str, Any], total: int, already_started: int, request_key: str | None
) -> list[dict[str, Any]]:
    """The RunTask calls that start the ``total - already_started`` missing tasks, 10 at most each.

    Each call's ``clientToken`` derives from the request and the index of its first task, so
    a retry asks ECS for exactly the same calls.
    """
    requests = []
    offset = already_started
    for n in split_count(max(0, total - already_started)):
        request = {**params, "count": n}
        if request_key:
            request["clientToken"] = client_token(request_key, offset)
        requests.append(request)
        offset += n
    return requests


def run_id_for(request_key: str | None) -> str:
    if request_key:
        return hashlib.sha256(request_key.encode()).hexdigest()[:16]
    return uuid.uuid4().hex[:16]
