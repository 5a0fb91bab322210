"""Job run: one job's ECS task(s), under its concurrency policy, recorded.

The runbook, step by step (DESIGN.md, "Job run"):

1. resolve the task definition: a family becomes its latest ACTIVE revision, a pinned
   ``family:revision`` must exist and be ACTIVE;
2. for a request that must not start twice (a scheduled firing, a queue message), claim it in
   the state table with a conditional write; a claim already done is a duplicate (nothing runs);
3. find the job's live tasks by ``startedBy`` (:func:`started_by`, at most 36 characters) and
   apply the concurrency policy (pure, :func:`decide`): ``allow`` runs, ``forbid`` skips while a
   task is PENDING or RUNNING, ``replace`` stops them with a reason and then runs (queue runs
   skip this step: ``queue.max_running`` bounds them, counted once per batch);
4. ``RunTask`` in calls of at most 10 tasks, each with a ``clientToken`` derived from the
   request, so a retried request maps to the same tokens;
5. classify ``failures[]`` (pure, :func:`classify_failure`): capacity (``RESOURCE:*``, ``AGENT``)
   is retryable, anything else (missing or invalid resources) is permanent;
6. record one :class:`~ecspilot.history.RunRecord` per task started (and the failures), release
   or complete the claim, and raise :class:`RetryableJobError` / :class:`PermanentJobError`
   when tasks could not start.

With ``dry_run`` steps 2 and 4 to 6 are reported, not done. The queue flow calls
:func:`run_job` with ``trigger="queue"``, the message's overrides and count, and the message
id (or the body's ``idempotency_key``) in ``request_key``.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from ecspilot.aws import Clients
from ecspilot.claims import HasRemainingTime, RequestClaim, in_progress_until
from ecspilot.config import JobConfig, PlacementSpec
from ecspilot.envelope import parse_event
from ecspilot.errors import (
    AwsError,
    JobError,
    PermanentJobError,
    RetryableJobError,
    UnknownJobError,
    error_code,
    is_transient,
    is_uncertain,
    job_call_error,
)
from ecspilot.history import RunRecord, job_pk, serialize, utc_now
from ecspilot.obs import count, logger
from ecspilot.placement import resolve_placement
from ecspilot.runtime import Runtime
from ecspilot.taskdef import family_revision

if TYPE_CHECKING:
    pass

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


# --- pure decisions ---------------------------------------------------------------------------


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


# --- results ----------------------------------------------------------------------------------


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


# --- AWS edges --------------------------------------------------------------------------------


def api_error(action: str, exc: ClientError | BotoCoreError, job: JobConfig, **context: Any) -> JobError:
    """A typed error for a failed call about ``job`` (see :func:`ecspilot.errors.job_call_error`)."""
    return job_call_error(action, exc, job=job.name, cluster=job.cluster, **context)


def resolve_task_definition(job: JobConfig, clients: Clients) -> dict[str, Any]:
    """The task definition a run uses: the family's latest ACTIVE revision, or the pinned one."""
    try:
        resp = clients.ecs.describe_task_definition(taskDefinition=job.task_definition)
    except ClientError as exc:
        code = error_code(exc)
        if code in ("ClientException", "InvalidParameterException"):
            raise PermanentJobError(
                f"task definition {job.task_definition} not found: {exc}",
                job=job.name,
                task_definition=job.task_definition,
            ) from exc
        raise api_error("DescribeTaskDefinition", exc, job, task_definition=job.task_definition) from exc
    except BotoCoreError as exc:
        raise api_error("DescribeTaskDefinition", exc, job, task_definition=job.task_definition) from exc
    task_definition = dict(resp["taskDefinition"])
    if task_definition.get("status", "ACTIVE") != "ACTIVE":
        raise PermanentJobError(
            f"task definition {job.task_definition} is {task_definition.get('status')}: "
            "an INACTIVE revision cannot run new tasks",
            job=job.name,
            task_definition=job.task_definition,
        )
    if task_definition.get("networkMode") == "awsvpc" and job.network is None:
        raise PermanentJobError(
            f"{family_revision(str(task_definition['taskDefinitionArn']))} uses awsvpc: the job needs "
            "network.subnets (and security_groups)",
            job=job.name,
        )
    return task_definition


def describe_tasks(clients: Clients, job: JobConfig, arns: Sequence[str]) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    for start in range(0, len(arns), DESCRIBE_TASKS_BATCH):
        try:
            resp = clients.ecs.describe_tasks(
                cluster=job.cluster, tasks=list(arns[start : start + DESCRIBE_TASKS_BATCH])
            )
        except (ClientError, BotoCoreError) as exc:
            raise api_error("DescribeTasks", exc, job) from exc
        tasks.extend(dict(t) for t in resp.get("tasks", []))
    return tasks


def live_tasks(job: JobConfig, clients: Clients) -> list[dict[str, Any]]:
    """The job's tasks that are PENDING or RUNNING (found by ``startedBy``), described.

    ListTasks' ``desiredStatus=RUNNING`` covers pending and running tasks; the descriptions are
    checked again (cluster, ``startedBy``, status), which costs nothing and keeps the answer
    right where a listing is stale.
    """
    marker = started_by(job.name)
    arns: list[str] = []
    try:
        paginator = clients.ecs.get_paginator("list_tasks")
        for page in paginator.paginate(cluster=job.cluster, startedBy=marker, desiredStatus="RUNNING"):
            arns.extend(page.get("taskArns", []))
    except (ClientError, BotoCoreError) as exc:
        raise api_error("ListTasks", exc, job) from exc
    cluster_suffix = f":cluster/{job.cluster}"
    return [
        t
        for t in describe_tasks(clients, job, arns)
        if t.get("startedBy") == marker
        and str(t.get("clusterArn", "")).endswith(cluster_suffix)
        and t.get("lastStatus") != "STOPPED"
        and t.get("desiredStatus") != "STOPPED"
    ]


def running_count(job: JobConfig, clients: Clients) -> int:
    """How many of the job's tasks are PENDING or RUNNING (for the queue's ``max_running``)."""
    return len(live_tasks(job, clients))


def request_tasks(job: JobConfig, clients: Clients, run_id: str) -> list[str]:
    """The ARNs of the tasks ECS knows for run ``run_id`` (tagged ``ecspilot:run``), running or
    recently stopped: what an attempt started even if its RunTask reply or its claim was lost."""
    marker = started_by(job.name)
    arns: list[str] = []
    try:
        paginator = clients.ecs.get_paginator("list_tasks")
        for status in ("RUNNING", "STOPPED"):
            for page in paginator.paginate(cluster=job.cluster, startedBy=marker, desiredStatus=status):
                arns.extend(a for a in page.get("taskArns", []) if a not in arns)
        found: list[str] = []
        for start in range(0, len(arns), DESCRIBE_TASKS_BATCH):
            resp = clients.ecs.describe_tasks(
                cluster=job.cluster, tasks=arns[start : start + DESCRIBE_TASKS_BATCH], include=["TAGS"]
            )
            found.extend(
                str(t["taskArn"])
                for t in resp.get("tasks", [])
                if t.get("startedBy") == marker
                and {"key": RUN_TAG, "value": run_id} in [dict(tag) for tag in t.get("tags", [])]
            )
    except (ClientError, BotoCoreError) as exc:
        raise api_error("looking up the tasks of a run", exc, job) from exc
    return found


# --- the runbook ------------------------------------------------------------------------------


def _log(job: JobConfig, trigger: str, **extra: Any) -> dict[str, Any]:
    return {"job": job.name, "cluster": job.cluster, "trigger": trigger, **extra}


def run_job(
    job: JobConfig,
    rt: Runtime,
    trigger: Trigger,
    *,
    overrides: Mapping[str, Any] | None = None,
    count_override: int | None = None,
    request_key: str | None = None,
    scheduled_time: str = "",
    message_id: str = "",
    dry_run: bool = False,
    task_definition_arn: str | None = None,
    claim_until: int | None = None,
) -> RunResult:
    """Run ``job`` now; see the module docstring for the steps.

    ``claim_until`` (epoch seconds, :func:`ecspilot.claims.in_progress_until` of the Lambda
    context) is when this invocation's claim on ``request_key`` stops protecting it if it dies.

    ``task_definition_arn``, when given, is the revision already resolved for this job (the queue
    resolves it once per batch) and saves the DescribeTaskDefinition.

    ``overrides`` (the config's ``overrides`` shape) and ``count_override`` apply to this run
    only. ``request_key`` names a request that must never start twice (a scheduled firing:
    :func:`firing_token`; a queue message: its id): RunTask's client tokens derive from it and
    the state table guards it. Returns a :class:`RunResult` whose ``outcome`` is ``started``,
    ``skipped`` (forbid), ``duplicate`` (the request already ran), or ``would-run`` /
    ``would-skip`` in a dry run. Raises :class:`RetryableJobError` (capacity, throttling, a
    claim held by another invocation) or :class:`PermanentJobError` (missing or invalid
    resources), both carrying ``job`` and ``cluster`` in their context and, once RunTask
    answered, the :class:`RunResult` as ``error.result``.
    """
    try:
        return _run(
            job,
            rt,
            trigger,
            overrides,
            count_override,
            request_key,
            scheduled_time,
            message_id,
            dry_run,
            task_definition_arn,
            claim_until,
        )
    except JobError:
        count("JobRunErrors")
        raise


def _run(
    job: JobConfig,
    rt: Runtime,
    trigger: Trigger,
    overrides: Mapping[str, Any] | None,
    count_override: int | None,
    request_key: str | None,
    scheduled_time: str,
    message_id: str,
    dry_run: bool,
    task_definition_arn: str | None = None,
    claim_until: int | None = None,
) -> RunResult:
    td_arn = task_definition_arn or str(resolve_task_definition(job, rt.clients)["taskDefinitionArn"])
    log = _log(job, trigger, task_definition=family_revision(td_arn))
    result = RunResult(
        job=job.name,
        trigger=trigger,
        outcome="would-run" if dry_run else "started",
        dry_run=dry_run,
        cluster=job.cluster,
        task_definition=td_arn,
        started_by=started_by(job.name),
        run_id=_run_id(request_key),
        scheduled_time=scheduled_time,
        message_id=message_id,
    )
    table = rt.clients.dynamodb if rt.history.enabled and request_key and not dry_run else None
    guard = RequestClaim(table, rt.settings.table_name, job, request_key or "", rt.settings.retention_days)
    earlier: list[str] = []
    if request_key and not dry_run:
        until = claim_until if claim_until is not None else in_progress_until(None)
        earlier = _claim(guard, job, rt.clients, result, log, request_key, until)
        if result.outcome == "duplicate":
            return result
    try:
        _concurrency_and_start(job, rt, result, log, earlier, overrides, count_override, request_key)
    except Exception:
        # Release the claim (whatever failed, a bug included) so a retry may run again, starting
        # only the tasks still missing; it must not wait for this invocation's claim to expire.
        _release(guard, [*earlier, *result.task_arns], log)
        raise
    if result.outcome != "started":
        if not dry_run:
            guard.finish("DONE", earlier)
        return result
    started = [*earlier, *result.task_arns]
    try:
        _complete(rt, job, result, guard, earlier, started)
    except (AwsError, JobError) as exc:
        _release(guard, started, log)
        error = RetryableJobError(
            f"{len(started)} task(s) of {job.name} started but the run could not be recorded: {exc}; "
            "a retry records it and starts nothing more",
            job=job.name,
            cluster=job.cluster,
        )
        result.task_arns = started
        error.result = result
        raise error from exc
    result.task_arns = started
    logger.info("job run started", extra={**log, "tasks": len(started), "run_id": result.run_id})
    count("JobRunsStarted")
    return result


def _complete(
    rt: Runtime,
    job: JobConfig,
    result: RunResult,
    guard: RequestClaim,
    earlier: list[str],
    started: list[str],
) -> None:
    """Run records first, the claim last: a claim is DONE only once the run is recorded. Tasks
    started, so a transient failure here is tried again at once (a few times) rather than
    leaving a started run unrecorded until the message comes back."""
    for attempt in range(COMPLETE_ATTEMPTS):
        try:
            _record(rt, job, result, recovered=earlier)
            guard.finish("DONE", started)
            return
        except (AwsError, JobError) as exc:
            if not is_transient(exc) or attempt + 1 == COMPLETE_ATTEMPTS:
                raise
            time.sleep(RUN_TASK_BACKOFF * 2**attempt)


def _release(guard: RequestClaim, task_arns: Sequence[str], log: Mapping[str, Any]) -> None:
    """Mark the claim RETRY (keeping what started), trying a transient failure again at once.
    If even that fails, the claim stays STARTING until the invocation's time is up; then a
    retry takes it and finds the tasks in ECS by the run's tag."""
    for attempt in range(COMPLETE_ATTEMPTS):
        try:
            guard.finish("RETRY", task_arns)
            return
        except JobError as exc:
            if is_transient(exc) and attempt + 1 < COMPLETE_ATTEMPTS:
                time.sleep(RUN_TASK_BACKOFF * 2**attempt)
                continue
            logger.warning(
                "could not release the request claim: it expires with this invocation",
                extra={**log, "error": str(exc), "tasks": len(task_arns)},
            )
            return


def _concurrency_and_start(
    job: JobConfig,
    rt: Runtime,
    result: RunResult,
    log: Mapping[str, Any],
    earlier: Sequence[str],
    overrides: Mapping[str, Any] | None,
    count_override: int | None,
    request_key: str | None,
) -> None:
    if result.trigger == "queue":
        # Queue runs are bounded by queue.max_running, counted once per batch by the queue
        # flow; the job's concurrency policy governs schedule and manual runs only.
        live: list[str] = []
        decision: Decision = "run"
    else:
        live = [t["taskArn"] for t in live_tasks(job, rt.clients) if t["taskArn"] not in earlier]
        decision = decide(job.concurrency, len(live))
        logger.info(
            "concurrency decided",
            extra={**log, "policy": job.concurrency, "live_tasks": len(live), "decision": decision},
        )
    if decision == "skip":
        result.outcome = "would-skip" if result.dry_run else "skipped"
        result.reason = f"{len(live)} task(s) of the job still PENDING or RUNNING (concurrency: forbid)"
        if not result.dry_run:
            logger.info("job run skipped", extra={**log, "reason": result.reason})
            count("JobRunsSkipped")
        return
    params = run_task_params(job, result.task_definition, overrides)
    params["tags"] = [*params["tags"], {"key": RUN_TAG, "value": result.run_id}]
    result.requests = plan_requests(params, count_override or job.count, len(earlier), request_key)
    result.stopped = live if decision == "replace" else []
    if result.dry_run:
        return
    _stop(job, rt.clients, result.stopped, log)
    result.started_at = result.started_at or utc_now()
    _start(job, rt.clients, result)
    if result.failures:
        try:
            _record(rt, job, result, recovered=earlier)
        except AwsError as exc:
            logger.warning("could not record a failed run", extra={**log, "error": str(exc)})
            if result.task_arns:  # started tasks must be recorded: a retry does it
                _fail(job, result, log, retryable=True)
        _fail(job, result, log)


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


def _claim(
    guard: RequestClaim,
    job: JobConfig,
    clients: Clients,
    result: RunResult,
    log: Mapping[str, Any],
    request_key: str,
    until: int,
) -> list[str]:
    """Claim the request; return the tasks earlier attempts started. A request claimed again
    after a failed or crashed attempt also looks in ECS for tasks that attempt started but
    never wrote down (its RunTask answered, then the invocation died)."""
    state = guard.claim(until, utc_now())
    result.started_at = state.started_at
    if state.verdict == "done":
        result.outcome, result.task_arns = "duplicate", state.task_arns
        result.reason = "this request already started its tasks"
        logger.info("job run skipped: duplicate request", extra={**log, "request": request_key})
        count("JobRunsSkipped")
        return state.task_arns
    if state.verdict == "busy":
        raise RetryableJobError(
            "another invocation is starting this request", job=result.job, cluster=result.cluster
        )
    if not guard.enabled:
        logger.warning("no state table: only RunTask's clientToken guards this request", extra=log)
        return []
    earlier = list(state.task_arns)
    if state.reclaimed:
        found = [a for a in request_tasks(job, clients, result.run_id) if a not in earlier]
        if found:
            logger.warning(
                "found tasks an earlier attempt started without writing them down",
                extra={**log, "tasks": len(found), "run_id": result.run_id},
            )
            count("JobTasksRecovered", len(found))
        earlier.extend(found)
    return earlier


def _start(job: JobConfig, clients: Clients, result: RunResult) -> None:
    """Send the planned RunTask calls. Each is sent once per attempt (no botocore retry: a lost
    reply would start the tasks twice where ``clientToken`` is not honoured); a throttle is sent
    again after a pause, and a call whose reply was lost is first looked up in ECS (the tasks
    carry the run's tag) and sent again only if it started nothing."""
    ecs = clients.single_attempt("ecs")
    for request in result.requests:
        for attempt in range(RUN_TASK_ATTEMPTS):
            try:
                resp = ecs.run_task(**request)
            except (ClientError, BotoCoreError) as exc:
                error = api_error(
                    "RunTask", exc, job, task_definition=family_revision(result.task_definition)
                )
                if is_uncertain(exc):
                    adopted = _adopt(job, clients, result)
                    if adopted:
                        break
                if error.retryable and attempt + 1 < RUN_TASK_ATTEMPTS:
                    time.sleep(RUN_TASK_BACKOFF * 2**attempt)
                    continue
                kind: Literal["retryable", "permanent"] = "retryable" if error.retryable else "permanent"
                result.failures.append(RunFailure(reason=error.message, kind=kind))
                return
            result.task_arns.extend(t["taskArn"] for t in resp.get("tasks", []))
            for f in resp.get("failures", []):
                reason = str(f.get("reason", "UNKNOWN"))
                result.failures.append(
                    RunFailure(
                        reason, str(f.get("detail", "")), str(f.get("arn", "")), classify_failure(reason)
                    )
                )
            break


def _adopt(job: JobConfig, clients: Clients, result: RunResult) -> list[str]:
    """After a RunTask whose reply was lost: the tasks of this run ECS has and we did not know."""
    try:
        found = [a for a in request_tasks(job, clients, result.run_id) if a not in result.task_arns]
    except JobError as exc:
        logger.warning("could not look up a lost RunTask reply", extra={"job": job.name, "error": str(exc)})
        return []
    if found:
        logger.warning(
            "RunTask's reply was lost but it started tasks: adopting them",
            extra={"job": job.name, "cluster": job.cluster, "tasks": len(found), "run_id": result.run_id},
        )
        count("JobTasksRecovered", len(found))
    result.task_arns.extend(found)
    return found


def _run_id(request_key: str | None) -> str:
    if request_key:
        return hashlib.sha256(request_key.encode()).hexdigest()[:16]
    return uuid.uuid4().hex[:16]


def _stop(job: JobConfig, clients: Clients, arns: Sequence[str], log: Mapping[str, Any]) -> None:
    reason = f"ecspilot: replaced by a new run of job {job.name} (concurrency: replace)"
    for arn in arns:
        try:
            clients.ecs.stop_task(cluster=job.cluster, task=arn, reason=reason)
        except (ClientError, BotoCoreError) as exc:
            raise api_error("StopTask", exc, job) from exc
        logger.info("stopped task to replace it", extra={**log, "task_arn": arn})


def _run_record(job: JobConfig, result: RunResult, arn: str) -> dict[str, Any]:
    return RunRecord(
        job=job.name,
        run_id=result.run_id,
        task_arn=arn,
        cluster=job.cluster,
        task_definition=result.task_definition,
        trigger=result.trigger,
        started_at=result.started_at,
        message_id=result.message_id,
        scheduled_time=result.scheduled_time,
    ).to_item()


def _record_recovered(rt: Runtime, job: JobConfig, result: RunResult, arns: Sequence[str]) -> None:
    """Records of tasks an earlier attempt started: written only where missing (the earlier
    attempt may have written them, and the tracker may have closed them since)."""
    if not rt.history.enabled or not arns:
        return
    for arn in arns:
        try:
            rt.clients.dynamodb.put_item(
                TableName=str(rt.settings.table_name),
                Item=serialize({**_run_record(job, result, arn), "expires_at": rt.history.expires_at()}),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise AwsError(f"writing history failed: {exc}", table=rt.settings.table_name) from exc
        except BotoCoreError as exc:
            raise AwsError(f"writing history failed: {exc}", table=rt.settings.table_name) from exc


def _record(rt: Runtime, job: JobConfig, result: RunResult, recovered: Sequence[str] = ()) -> None:
    """One RunRecord per task started, and one item per failure beside them (same pk, ``RUN#``
    prefix, ``type: run-failure``) so a job's history shows what could not start. ``recovered``:
    tasks of earlier attempts, recorded where their record is missing."""
    _record_recovered(rt, job, result, recovered)
    records: list[dict[str, Any]] = [_run_record(job, result, arn) for arn in result.task_arns]
    records.extend(
        {
            "pk": job_pk(job.name),
            "sk": f"RUN#{result.started_at}#failure-{result.run_id}-{i}",
            "type": "run-failure",
            "job": job.name,
            "run_id": result.run_id,
            "cluster": job.cluster,
            "task_definition": result.task_definition,
            "trigger": result.trigger,
            "started_at": result.started_at,
            "status": "FAILED",
            "reason": f.reason,
            "detail": f.detail,
            "kind": f.kind,
            "scheduled_time": result.scheduled_time,
            "message_id": result.message_id,
        }
        for i, f in enumerate(result.failures)
    )
    rt.history.put_items(records)


def _fail(job: JobConfig, result: RunResult, log: Mapping[str, Any], retryable: bool = False) -> NoReturn:
    reasons = "; ".join(
        f"{f.reason}" + (f" ({f.detail})" if f.detail else "") for f in dict.fromkeys(result.failures)
    )
    retryable = retryable or all(f.kind == "retryable" for f in result.failures)
    started = len(result.task_arns)
    message = f"{len(result.failures)} task(s) of {job.name} could not start ({started} started): {reasons}"
    logger.warning(
        "job run failed",
        extra={**log, "reason": reasons, "retryable": retryable, "tasks": started, "run_id": result.run_id},
    )
    if started:
        count("JobRunsStarted")
    kind = RetryableJobError if retryable else PermanentJobError
    error = kind(
        message, job=job.name, cluster=job.cluster, task_definition=family_revision(result.task_definition)
    )
    error.result = result
    raise error


# --- the run_job function and the CLI ---------------------------------------------------------


class RunJobEvent(BaseModel):
    """The run_job function's input: what a Scheduler schedule sends, or a direct invoke."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    job: str = Field(min_length=1)
    scheduled_time: str | None = None


def find_job(rt: Runtime, name: str) -> JobConfig:
    """The configured job ``name``, or :class:`UnknownJobError`."""
    job = rt.config.job(name)
    if job is None:
        known = ", ".join(j.name for j in rt.config.jobs) or "none"
        raise UnknownJobError(f"no job named {name!r} in the config (jobs: {known})", job=name)
    return job


def handle_run_job_event(
    event: Any, rt: Runtime, dry_run: bool = False, context: HasRemainingTime | None = None
) -> dict[str, Any]:
    """The ``run_job`` flow: a Scheduler firing (``{"job", "scheduled_time"}``) or ``{"job"}``.
    ``context`` (the Lambda context) bounds how long the firing's claim protects this invocation."""
    parsed = parse_event(RunJobEvent, event, "run_job input")
    job = find_job(rt, parsed.job)
    if parsed.scheduled_time:
        result = run_job(
            job,
            rt,
            "schedule",
            request_key=firing_token(job.name, parsed.scheduled_time),
            scheduled_time=parsed.scheduled_time,
            dry_run=dry_run,
            claim_until=in_progress_until(context),
        )
    else:
        result = run_job(job, rt, "manual", dry_run=dry_run)
    return result.as_dict()
