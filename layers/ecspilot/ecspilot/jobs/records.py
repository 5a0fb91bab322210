"""Job runs, the state table edge: the run records of a run (one per task started, one per
failure), recovered tasks recorded only where missing, and the request claim closed after them.

A claim is DONE only once the run is recorded; a transient failure of either is tried again at
once (a few times), since the tasks already started. Releasing a claim (RETRY) keeps what
started, so a retry starts only what is missing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.claims import RequestClaim
from ecspilot.aws.dynamo import conditional_update, serialize, set_expression
from ecspilot.aws.history import History, RunRecord, job_pk
from ecspilot.domain.config import JobConfig
from ecspilot.errors import AwsError, JobError, is_transient
from ecspilot.jobs.plan import COMPLETE_ATTEMPTS, RUN_TASK_BACKOFF, RunResult
from ecspilot.obs import count, logger


def run_record(job: JobConfig, result: RunResult, arn: str) -> dict[str, Any]:
    """The history item of one task a run started."""
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


def failure_records(job: JobConfig, result: RunResult) -> list[dict[str, Any]]:
    """One item per RunTask failure, beside the run records (same pk, ``RUN#`` prefix, ``type:
    run-failure``), so a job's history shows what could not start."""
    return [
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
    ]


def record_recovered(history: History, job: JobConfig, result: RunResult, arns: Sequence[str]) -> None:
    """Records of tasks an earlier attempt started: written only where missing (the earlier
    attempt may have written them, and the tracker may have closed them since). A conditional
    UpdateItem, the one write the run functions' roles grant besides BatchWriteItem (issue 24:
    no ``dynamodb:PutItem`` needed)."""
    connection = history.connection() if arns else None
    if connection is None:
        return
    client, table = connection
    for arn in arns:
        item = {**run_record(job, result, arn), "expires_at": history.expires_at()}
        key = {"pk": item.pop("pk"), "sk": item.pop("sk")}
        update = set_expression(item)
        conditional_update(
            client,
            table,
            key,
            update.expression,
            update.names,
            update.values,
            "attribute_not_exists(pk)",  # a record already there (maybe closed) is kept as it is
            what="writing history",
        )


def record_run(history: History, job: JobConfig, result: RunResult, recovered: Sequence[str] = ()) -> None:
    """One RunRecord per task started and one item per failure; ``recovered``: tasks of earlier
    attempts, recorded where their record is missing."""
    record_recovered(history, job, result, recovered)
    records = [run_record(job, result, arn) for arn in result.task_arns]
    history.put_items([*records, *failure_records(job, result)])


def complete(
    history: History,
    job: JobConfig,
    result: RunResult,
    guard: RequestClaim,
    earlier: Sequence[str],
    started: Sequence[str],
) -> None:
    """Run records first, the claim last: a claim is DONE only once the run is recorded. Tasks
    started, so a transient failure here is tried again at once (a few times) rather than
    leaving a started run unrecorded until the request comes back."""
    for attempt in range(COMPLETE_ATTEMPTS):
        try:
            record_run(history, job, result, recovered=earlier)
            guard.finish("DONE", started)
            return
        except (AwsError, JobError) as exc:
            if not is_transient(exc) or attempt + 1 == COMPLETE_ATTEMPTS:
                raise
            time.sleep(RUN_TASK_BACKOFF * 2**attempt)


def release(guard: RequestClaim, task_arns: Sequence[str], log: Mapping[str, Any]) -> None:
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


#: TransactWriteItems takes at most 100 actions
TRANSACT_LIMIT = 100


@dataclass
class Completion:
    """A started run whose records and DONE claim are written with the rest of its batch's
    (``run_queued_jobs``: one TransactWriteItems per SQS batch instead of a BatchWriteItem and an
    UpdateItem per message)."""

    job: JobConfig
    result: RunResult
    guard: RequestClaim
    started: list[str]
    log: dict[str, Any] = field(default_factory=dict)

    def actions(self, expires: int) -> list[dict[str, Any]]:
        """The run records as ``Put`` actions, then the claim's ``Update`` (DONE): all or none."""
        items = [run_record(self.job, self.result, arn) for arn in self.result.task_arns]
        puts = [
            {"Put": {"TableName": self.guard.table, "Item": serialize({**i, "expires_at": expires})}}
            for i in [*items, *failure_records(self.job, self.result)]
        ]
        return [*puts, {"Update": self.guard.finish_update("DONE", self.started)}]


def complete_together(
    history: History, completions: Sequence[Completion]
) -> list[tuple[Completion, Exception]]:
    """Write the records and claims of ``completions`` in as few TransactWriteItems as fit (each
    run whole in one transaction: its records and its DONE claim, all or none). A transaction
    that fails (throttled, cancelled, a lost reply) falls back to :func:`complete` per run, whose
    writes are idempotent; returns the runs that could not be completed even then."""
    failed: list[tuple[Completion, Exception]] = []
    connection = history.connection()
    if connection is None or not completions:
        return failed
    client, _ = connection
    expires = history.expires_at()
    chunks: list[list[tuple[Completion, list[dict[str, Any]]]]] = [[]]
    for c in completions:
        actions = c.actions(expires)
        if sum(len(a) for _, a in chunks[-1]) + len(actions) > TRANSACT_LIMIT:
            chunks.append([])
        chunks[-1].append((c, actions))
    for chunk in chunks:
        transact = [action for _, actions in chunk for action in actions]
        if len(transact) <= TRANSACT_LIMIT:  # a run of more tasks than one transaction takes: alone
            try:
                client.transact_write_items(TransactItems=transact)  # type: ignore[arg-type]
            except (ClientError, BotoCoreError) as exc:
                logger.info("batch completion fell back to one write per run", extra={"error": str(exc)})
            else:
                for c, _ in chunk:
                    _started(c)
                continue
        for c, _ in chunk:
            try:
                complete(history, c.job, c.result, c.guard, [], c.started)
            except (AwsError, JobError) as exc:
                failed.append((c, exc))
                continue
            _started(c)
    return failed


def _started(c: Completion) -> None:
    logger.info("job run started", extra={**c.log, "tasks": len(c.started), "run_id": c.result.run_id})
    count("JobRunsStarted")
