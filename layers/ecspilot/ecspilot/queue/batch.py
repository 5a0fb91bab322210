"""Queue-driven jobs: one SQS message, one job run; nothing lost, nothing run twice.

The runbook for one batch (docs/ARCHITECTURE.md, "Queue message"):

1. validate each message (:mod:`ecspilot.queue.request`); a permanent problem (bad JSON,
   unknown job, forbidden override, too large) moves the message to the dead-letter queue at
   once, with the reason as a message attribute: it is never retried, never silently dropped;
2. backpressure: per job with ``max_running``, one ListTasks per batch counts its PENDING and
   RUNNING tasks; messages beyond the room left wait in the queue (reported as failures, so SQS
   delivers them again after the visibility timeout);
3. launch the admitted messages concurrently on the bounded pool
   (:func:`ecspilot.aws.fanout.bounded_map`), through the same job runner as schedules and
   manual runs (:func:`ecspilot.jobs.runbook.run_job`, trigger ``queue``), keyed on the message
   id (or the body's ``idempotency_key``) so a redelivered message never starts a second task:
   the state table claims the request and RunTask's ``clientToken`` derives from it;
4. transient failures (throttling of any service, server errors, network errors, capacity
   ``failures[]``: :func:`ecspilot.errors.is_transient` decides, in one place) are reported in
   ``batchItemFailures``; permanent ones (missing or invalid resources, an override naming a
   container the task definition does not have) go to the DLQ with the reason. A message whose
   tasks started is never dead-lettered: a failure after RunTask (recording the run, completing
   the claim) is transient, and the retry records the run without starting anything;
5. the runs that started are recorded together: their run records and DONE claims in one
   TransactWriteItems per batch (each run all or none; :func:`ecspilot.jobs.records.complete_together`),
   falling back to one write per run when the transaction fails.

One failure stays one failure: every message gets its own outcome. An unexpected exception
while handling one message (a bug, anything) is logged with its traceback, counted
(``QueueMessageErrors``) and that message alone is retried; the others carry on.

The pure parts live in :mod:`ecspilot.queue.outcomes`, the dead-letter and last-delivery edge in
:mod:`ecspilot.queue.dead_letters`, the ``run_queued_jobs`` glue in :mod:`ecspilot.queue.handler`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ecspilot.aws.clients import Clients
from ecspilot.aws.ecs_reads import TaskDefinitions
from ecspilot.aws.fanout import bounded_map
from ecspilot.aws.history import History
from ecspilot.domain.config import EcspilotConfig, JobConfig
from ecspilot.errors import (
    EcspilotError,
    InvalidMessageError,
    JobError,
    PermanentJobError,
    RetryableJobError,
    is_transient,
)
from ecspilot.jobs.records import Completion, complete_together, release
from ecspilot.jobs.runbook import run_job
from ecspilot.jobs.tasks import resolve_task_definition, running_count
from ecspilot.obs import count, logger
from ecspilot.queue.dead_letters import DeadLetters
from ecspilot.queue.outcomes import (
    OUTCOME_METRICS,
    MessageOutcome,
    first_of_each_request,
    follow,
    message_overrides,
    request_key,
)
from ecspilot.queue.request import QueueRequest, check_container, parse_request

Item = tuple[Mapping[str, Any], QueueRequest]  # a message's record and its validated request
Admitted = tuple[Item, MessageOutcome]


class QueueBatch:
    """Processes one SQS batch; see the module docstring. It receives what it uses: the config,
    the clients, the history, the pool's size, the dead-letter queue (None: the source queue's
    redrive policy names it) and ``claim_until`` (epoch seconds: when the claims this batch
    takes stop protecting it, :func:`ecspilot.aws.claims.in_progress_until`)."""

    def __init__(
        self,
        config: EcspilotConfig,
        clients: Clients,
        history: History,
        *,
        max_workers: int = 8,
        dlq_url: str | None = None,
        dry_run: bool = False,
        claim_until: int | None = None,
    ) -> None:
        self.config = config
        self.clients = clients
        self.history = history
        self.max_workers = max_workers
        self.dry_run = dry_run
        self.claim_until = claim_until
        self.dead_letters = DeadLetters(clients, config, dlq_url, dry_run)
        self.task_definitions = TaskDefinitions(clients.ecs)
        self._resolved: dict[str, dict[str, Any]] = {}
        # runs started, their records and claims written together after the batch's RunTasks
        self._completions: list[Completion] = []

    def unexpected(self, outcome: MessageOutcome, step: str, exc: BaseException) -> None:
        """An exception nobody expected while handling one message: logged with its traceback,
        counted, and the message (alone) retried."""
        outcome.outcome = "retry"
        outcome.reason = f"unexpected error while {step}: {type(exc).__name__}: {exc}"
        logger.error(
            "unexpected error handling a message: it is retried",
            extra={"message_id": outcome.message_id, "job": outcome.job, "step": step},
            exc_info=exc,
        )
        count("QueueMessageErrors")

    def process(self, records: Sequence[Mapping[str, Any]]) -> dict[str, MessageOutcome]:
        outcomes: dict[str, MessageOutcome] = {}
        admitted: list[Admitted] = []
        for record in records:
            outcome = MessageOutcome(str(record.get("messageId", "")))
            outcomes[outcome.message_id] = outcome
            try:
                request = parse_request(str(record.get("body", "")), self.config)
            except InvalidMessageError as exc:
                outcome.job = str(exc.context.get("job", ""))
                self.dead_letters.dead_letter(record, outcome, exc.reason)
                continue
            except Exception as exc:  # one message's failure stays its own
                self.unexpected(outcome, "parsing the message", exc)
                continue
            outcome.job = request.job.name
            outcome.request_key = request_key(request, outcome.message_id)
            admitted.append(((record, request), outcome))
        unique, followers = first_of_each_request(admitted)
        self._launch(self._resolve(self._backpressure(unique)))
        self._complete(outcomes)
        for outcome, first in followers:
            follow(outcome, first)
        self.dead_letters.last_deliveries(records, outcomes)
        for o in outcomes.values():
            if o.outcome in OUTCOME_METRICS:
                count(OUTCOME_METRICS[o.outcome])
        return outcomes

    def _backpressure(self, admitted: list[Admitted]) -> list[Admitted]:
        """Admit messages while each job has room under ``max_running`` (one ListTasks per job)."""
        room: dict[str, int | None] = {}
        launch = []
        for item, outcome in admitted:
            job = item[1].job
            assert job.queue is not None
            if job.name not in room:
                room[job.name] = self._room(job, outcome)
            left = room[job.name]
            if left is not None and item[1].count > left:
                outcome.outcome = "retry"
                outcome.reason = (
                    outcome.reason or f"max_running {job.queue.max_running} reached: waits in the queue"
                )
                count("QueueBackpressure")
                continue
            if left is not None:
                room[job.name] = left - item[1].count
            launch.append((item, outcome))
        return launch

    def _room(self, job: JobConfig, outcome: MessageOutcome) -> int | None:
        assert job.queue is not None
        if job.queue.max_running is None:
            return None
        try:
            return max(0, job.queue.max_running - running_count(job, self.clients))
        except JobError as exc:
            outcome.reason = f"counting running tasks failed: {exc}"
            return 0
        except Exception as exc:  # the job's messages wait, the batch goes on
            self.unexpected(outcome, "counting running tasks", exc)
            return 0

    def _resolve(self, launch: list[Admitted]) -> list[Admitted]:
        """Resolve each job's task definition once per batch; a job that cannot resolve fails
        its messages (permanent -> DLQ, transient -> retry) without a RunTask."""
        failed: dict[str, Exception] = {}
        for (_, request), _ in launch:
            name = request.job.name
            if name not in self._resolved and name not in failed:
                try:
                    self._resolved[name] = resolve_task_definition(request.job, self.task_definitions)
                except Exception as exc:  # judged per message below
                    failed[name] = exc
        keep = []
        for (record, request), outcome in launch:
            error = failed.get(request.job.name)
            if error is None:
                try:
                    check_container(request, self._resolved[request.job.name])
                except InvalidMessageError as exc:
                    self.dead_letters.dead_letter(record, outcome, exc.reason)
                    continue
                keep.append(((record, request), outcome))
            elif isinstance(error, PermanentJobError):
                self.dead_letters.dead_letter(record, outcome, str(error))
            elif isinstance(error, EcspilotError):
                outcome.outcome, outcome.reason = "retry", str(error)
            else:
                self.unexpected(outcome, "resolving the task definition", error)
        return keep

    def _launch(self, launch: list[Admitted]) -> None:
        """Run the admitted messages on the bounded pool. Whatever escapes one message's run (a
        bug) comes back as that item's :class:`~ecspilot.errors.UnexpectedError`: that message
        alone is retried, logged with the original exception."""
        done = bounded_map(lambda admitted: self._run(*admitted), launch, self.max_workers)
        for (_, outcome), got in zip(launch, done, strict=True):
            if isinstance(got, EcspilotError):
                self.unexpected(outcome, "running the job", got.__cause__ or got)

    def _complete(self, outcomes: Mapping[str, MessageOutcome]) -> None:
        """One TransactWriteItems for the batch's started runs (records and DONE claims); a run
        that cannot be recorded even one by one releases its claim (RETRY, keeping its tasks) and
        its message is retried: the retry records it and starts nothing more."""
        completions, self._completions = self._completions, []
        for c, exc in complete_together(self.history, completions):
            release(c.guard, c.started, c.log)
            outcome = outcomes[c.result.message_id]
            outcome.outcome = "retry"
            outcome.reason = (
                f"{len(c.started)} task(s) of {c.job.name} started but the run could not be recorded: "
                f"{exc}; a retry records it and starts nothing more"
            )

    def _run(self, item: Item, outcome: MessageOutcome) -> None:
        record, request = item
        job = request.job
        task_definition = self._resolved[job.name]
        try:
            result = run_job(
                job,
                self.clients,
                self.history,
                "queue",
                overrides=message_overrides(request, task_definition),
                count_override=request.count,
                request_key=outcome.request_key,
                message_id=outcome.message_id,
                dry_run=self.dry_run,
                task_definition_arn=str(task_definition["taskDefinitionArn"]),
                claim_until=self.claim_until,
                completions=None if self.dry_run else self._completions,
            )
        except RetryableJobError as exc:
            outcome.outcome, outcome.reason = "retry", str(exc)
            outcome.task_arns = list(exc.result.task_arns) if exc.result is not None else []
            return
        except PermanentJobError as exc:
            if is_transient(exc):  # never dead-letter a message for trouble that passes
                outcome.outcome, outcome.reason = "retry", str(exc)
                return
            self.dead_letters.dead_letter(record, outcome, str(exc))
            return
        except EcspilotError as exc:
            outcome.outcome, outcome.reason = "retry", str(exc)
            return
        outcome.task_arns = list(result.task_arns)
        if result.outcome in ("started", "duplicate", "would-run"):  # DONE_OUTCOMES
            outcome.outcome = result.outcome
            outcome.reason = result.reason
        else:
            outcome.outcome, outcome.reason = "retry", result.reason or f"run {result.outcome}"
