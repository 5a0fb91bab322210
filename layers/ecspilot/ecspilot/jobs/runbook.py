"""Job run: one job's ECS task(s), under its concurrency policy, recorded.

The runbook, step by step (docs/ARCHITECTURE.md, "Job run"):

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
6. record one :class:`~ecspilot.aws.history.RunRecord` per task started (and the failures), release
   or complete the claim, and raise :class:`RetryableJobError` / :class:`PermanentJobError`
   when tasks could not start.

Under faults: RunTask is sent once per attempt and a lost reply is looked up in ECS by the run's
tag (``ecspilot:run``) before sending again; a claim taken again after a failed or dead attempt
also looks there, so tasks an attempt started are never started twice; the run records are
written before the claim is DONE, and a failure after tasks started is always retryable.

The module is the runbook; the pure decisions live in :mod:`ecspilot.jobs.plan`, the ECS calls
in :mod:`ecspilot.jobs.tasks`, the state table writes in :mod:`ecspilot.jobs.records`, and the
``run_job`` function's glue (the process runtime) in :mod:`ecspilot.jobs.handler`.

:func:`run_job` receives what it uses: the clients and the history (whose state table also holds
the request claims). With ``dry_run`` steps 2 and 4 to 6 are reported, not done. The queue flow
calls it with ``trigger="queue"``, the message's overrides and count, and the message id (or the
body's ``idempotency_key``) in ``request_key``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from ecspilot.aws.claims import RequestClaim, in_progress_until
from ecspilot.aws.clients import Clients
from ecspilot.aws.ecs_reads import TaskDefinitions
from ecspilot.aws.history import History, utc_now
from ecspilot.domain.config import JobConfig
from ecspilot.domain.taskdef import family_revision
from ecspilot.errors import AwsError, JobError, PermanentJobError, RetryableJobError
from ecspilot.jobs.plan import (
    RUN_TAG,
    Decision,
    RunResult,
    Trigger,
    decide,
    plan_requests,
    run_id_for,
    run_task_params,
    started_by,
)
from ecspilot.jobs.records import Completion, complete, record_run, release
from ecspilot.jobs.tasks import live_tasks, request_tasks, resolve_task_definition, start_tasks, stop_tasks
from ecspilot.obs import count, logger


def _log(job: JobConfig, trigger: str, **extra: Any) -> dict[str, Any]:
    return {"job": job.name, "cluster": job.cluster, "trigger": trigger, **extra}


def run_job(
    job: JobConfig,
    clients: Clients,
    history: History,
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
    completions: list[Completion] | None = None,
) -> RunResult:
    """Run ``job`` now; see the module docstring for the steps.

    ``completions`` (the queue's batch): a run that started is not recorded here but added to the
    list, for :func:`~ecspilot.jobs.records.complete_together` to write with the batch's others.

    ``claim_until`` (epoch seconds, :func:`ecspilot.aws.claims.in_progress_until` of the Lambda
    context) is when this invocation's claim on ``request_key`` stops protecting it if it dies.

    ``task_definition_arn``, when given, is the revision already resolved for this job (the queue
    resolves it once per batch) and saves the DescribeTaskDefinition.

    ``overrides`` (the config's ``overrides`` shape) and ``count_override`` apply to this run
    only. ``request_key`` names a request that must never start twice (a scheduled firing:
    :func:`~ecspilot.jobs.plan.firing_token`; a queue message: its id): RunTask's client tokens
    derive from it and the state table guards it. Returns a :class:`RunResult` whose ``outcome`` is ``started``,
    ``skipped`` (forbid), ``duplicate`` (the request already ran), or ``would-run`` /
    ``would-skip`` in a dry run. Raises :class:`RetryableJobError` (capacity, throttling, a
    claim held by another invocation) or :class:`PermanentJobError` (missing or invalid
    resources), both carrying ``job`` and ``cluster`` in their context and, once RunTask
    answered, the :class:`RunResult` as ``error.result``.
    """
    try:
        return _run(
            job,
            clients,
            history,
            trigger,
            overrides,
            count_override,
            request_key,
            scheduled_time,
            message_id,
            dry_run,
            task_definition_arn,
            claim_until,
            completions,
        )
    except JobError:
        count("JobRunErrors")
        raise


def _run(
    job: JobConfig,
    clients: Clients,
    history: History,
    trigger: Trigger,
    overrides: Mapping[str, Any] | None,
    count_override: int | None,
    request_key: str | None,
    scheduled_time: str,
    message_id: str,
    dry_run: bool,
    task_definition_arn: str | None = None,
    claim_until: int | None = None,
    completions: list[Completion] | None = None,
) -> RunResult:
    td_arn = task_definition_arn or str(
        resolve_task_definition(job, TaskDefinitions(clients.ecs))["taskDefinitionArn"]
    )
    log = _log(job, trigger, task_definition=family_revision(td_arn))
    result = RunResult(
        job=job.name,
        trigger=trigger,
        outcome="would-run" if dry_run else "started",
        dry_run=dry_run,
        cluster=job.cluster,
        task_definition=td_arn,
        started_by=started_by(job.name),
        run_id=run_id_for(request_key),
        scheduled_time=scheduled_time,
        message_id=message_id,
    )
    connection = history.connection() if request_key and not dry_run else None
    client, table = connection or (None, None)
    guard = RequestClaim(client, table, job, request_key or "", history.retention_days)
    earlier: list[str] = []
    if request_key and not dry_run:
        until = claim_until if claim_until is not None else in_progress_until(None)
        earlier = _claim(guard, job, clients, result, log, request_key, until)
        if result.outcome == "duplicate":
            return result
    try:
        _concurrency_and_start(
            job, clients, history, result, log, earlier, overrides, count_override, request_key
        )
    except Exception:
        # Release the claim (whatever failed, a bug included) so a retry may run again, starting
        # only the tasks still missing; it must not wait for this invocation's claim to expire.
        release(guard, [*earlier, *result.task_arns], log)
        raise
    if result.outcome != "started":
        if not dry_run:
            guard.finish("DONE", earlier)
        return result
    started = [*earlier, *result.task_arns]
    if completions is not None and not earlier and guard.enabled:
        result.task_arns = started  # recorded with the batch's other runs, claim DONE with them
        completions.append(Completion(job, result, guard, started, log))
        return result
    try:
        complete(history, job, result, guard, earlier, started)
    except (AwsError, JobError) as exc:
        release(guard, started, log)
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


def _concurrency_and_start(
    job: JobConfig,
    clients: Clients,
    history: History,
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
        live = [t["taskArn"] for t in live_tasks(job, clients) if t["taskArn"] not in earlier]
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
    stop_tasks(job, clients, result.stopped, log)
    result.started_at = result.started_at or utc_now()
    start_tasks(job, clients, result)
    if result.failures:
        try:
            record_run(history, job, result, recovered=earlier)
        except AwsError as exc:
            logger.warning("could not record a failed run", extra={**log, "error": str(exc)})
            if result.task_arns:  # started tasks must be recorded: a retry does it
                _fail(job, result, log, retryable=True)
        _fail(job, result, log)


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
        try:
            looked_up = request_tasks(job, clients, result.run_id)
        except Exception as exc:
            # the earlier attempt may have started tasks: keep what the claim knows and release it
            # (RETRY) at once, so the redelivery looks again instead of waiting for it to expire;
            # whatever the look-up's error, the request is retried (a queue message is requeued,
            # never dead-lettered: its run may have started and must get its record)
            release(guard, earlier, log)
            if not isinstance(exc, JobError):
                raise
            raise RetryableJobError(
                f"{exc}; an earlier attempt may have started tasks: retried",
                job=job.name,
                cluster=job.cluster,
            ) from exc
        found = [a for a in looked_up if a not in earlier]
        if found:
            logger.warning(
                "found tasks an earlier attempt started without writing them down",
                extra={**log, "tasks": len(found), "run_id": result.run_id},
            )
            count("JobTasksRecovered", len(found))
        earlier.extend(found)
    return earlier


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
