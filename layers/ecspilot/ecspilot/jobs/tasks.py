"""Job runs, the ECS edge: resolve the task definition, find the job's tasks (live, or those of
one run by its tag), send RunTask (once per attempt: a lost reply is looked up before sending
again), stop tasks. Every failure becomes a typed :class:`~ecspilot.errors.JobError`, transient or
permanent by :func:`ecspilot.errors.is_transient`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.clients import Clients
from ecspilot.aws.ecs_reads import TaskDefinitions
from ecspilot.domain.config import JobConfig
from ecspilot.domain.taskdef import family_revision
from ecspilot.errors import JobError, PermanentJobError, error_code, is_uncertain, job_call_error
from ecspilot.jobs.plan import (
    DESCRIBE_TASKS_BATCH,
    RUN_TAG,
    RUN_TASK_ATTEMPTS,
    RUN_TASK_BACKOFF,
    RunFailure,
    RunResult,
    classify_failure,
    started_by,
)
from ecspilot.obs import count, logger


def api_error(action: str, exc: ClientError | BotoCoreError, job: JobConfig, **context: Any) -> JobError:
    """A typed error for a failed call about ``job`` (see :func:`ecspilot.errors.job_call_error`)."""
    return job_call_error(action, exc, job=job.name, cluster=job.cluster, **context)


def resolve_task_definition(job: JobConfig, task_definitions: TaskDefinitions) -> dict[str, Any]:
    """The task definition a run uses: the family's latest ACTIVE revision, or the pinned one
    (read through the invocation's :class:`~ecspilot.aws.ecs_reads.TaskDefinitions` cache)."""
    try:
        resp = task_definitions.get(job.task_definition)
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


def start_tasks(job: JobConfig, clients: Clients, result: RunResult) -> None:
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
                    adopted = adopt_lost_tasks(job, clients, result)
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


def adopt_lost_tasks(job: JobConfig, clients: Clients, result: RunResult) -> list[str]:
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


def stop_tasks(job: JobConfig, clients: Clients, arns: Sequence[str], log: Mapping[str, Any]) -> None:
    reason = f"ecspilot: replaced by a new run of job {job.name} (concurrency: replace)"
    for arn in arns:
        try:
            clients.ecs.stop_task(cluster=job.cluster, task=arn, reason=reason)
        except (ClientError, BotoCoreError) as exc:
            raise api_error("StopTask", exc, job) from exc
        logger.info("stopped task to replace it", extra={**log, "task_arn": arn})
