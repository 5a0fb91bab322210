"""Queue-driven jobs: one SQS message, one job run; nothing lost, nothing run twice.

The runbook for one batch (docs/ARCHITECTURE.md, "Queue message"):

1. validate each message (:mod:`ecspilot.queue.request`); a permanent problem (bad JSON,
   unknown job, forbidden override, too large) moves the message to the dead-letter queue at
   once, with the reason as a message attribute: it is never retried, never silently dropped;
2. backpressure: per job with ``max_running``, one ListTasks per batch counts its PENDING and
   RUNNING tasks; messages beyond the room left wait in the queue (reported as failures, so SQS
   delivers them again after the visibility timeout);
3. launch the admitted messages concurrently on a bounded pool, through the same job runner as
   schedules and manual runs (:func:`ecspilot.jobs.runbook.run_job`, trigger ``queue``), keyed on the
   message id (or the body's ``idempotency_key``) so a redelivered message never starts a second
   task: the state table claims the request and RunTask's ``clientToken`` derives from it;
4. transient failures (throttling of any service, server errors, network errors, capacity
   ``failures[]``: :func:`ecspilot.errors.is_transient` decides, in one place) are reported in
   ``batchItemFailures``; permanent ones (missing or invalid resources, an override naming a
   container the task definition does not have) go to the DLQ with the reason. A message whose
   tasks started is never dead-lettered: a failure after RunTask (recording the run, completing
   the claim) is transient, and the retry records the run without starting anything.

One failure stays one failure: every message gets its own outcome. An unexpected exception
while handling one message (a bug, anything) is logged with its traceback, counted
(``QueueMessageErrors``) and that message alone is retried; the others carry on.

Powertools' batch processor shapes the partial batch response from the outcomes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ecspilot.aws.claims import HasRemainingTime, in_progress_until
from ecspilot.domain.config import JobConfig
from ecspilot.errors import (
    EcspilotError,
    InvalidMessageError,
    JobError,
    PermanentJobError,
    RetryableJobError,
    is_transient,
)
from ecspilot.interfaces.runtime import Runtime
from ecspilot.jobs.runbook import request_tasks, resolve_task_definition, run_id_for, run_job, running_count
from ecspilot.obs import count, logger
from ecspilot.queue.redrive import dlq_url_from_source, redrive_policy
from ecspilot.queue.request import QueueRequest, check_container, parse_request

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

Outcome = Literal["started", "duplicate", "dead-lettered", "retry", "requeued", "would-run"]
REASON_ATTRIBUTE = "ecspilot_reason"
REQUEUES_ATTRIBUTE = "ecspilot_requeues"
# A started run whose recording keeps failing is requeued this many times (each after
# QueueMaxReceiveCount deliveries), then dead-lettered with its reason: bounded, never silent.
MAX_REQUEUES = 10
OUTCOME_METRICS = {
    "started": "QueueMessagesStarted",
    "duplicate": "QueueMessagesDuplicate",
    "retry": "QueueMessagesRetried",
}


@dataclass
class MessageOutcome:
    message_id: str
    outcome: Outcome = "retry"
    job: str = ""
    reason: str = ""
    task_arns: list[str] = field(default_factory=list)
    request_key: str = ""


def request_key(request: QueueRequest, message_id: str) -> str:
    """What makes two deliveries the same request: the body's idempotency key, else the message id."""
    return f"queue:{request.job.name}:{request.idempotency_key or message_id}"


class TransientMessageError(EcspilotError):
    """The message could not run now; SQS delivers it again (reported in batchItemFailures)."""


def _requeues(record: Mapping[str, Any]) -> int:
    """How many times this message was requeued (its ``ecspilot_requeues`` attribute; Lambda
    spells the value ``stringValue``, boto3 ``StringValue``)."""
    attribute = dict(dict(record.get("messageAttributes") or {}).get(REQUEUES_ATTRIBUTE) or {})
    value = str(attribute.get("stringValue", attribute.get("StringValue", "0")))
    return int(value) if value.isdigit() else 0


class QueueBatch:
    """Processes one SQS batch; see the module docstring."""

    def __init__(self, rt: Runtime, dry_run: bool = False, context: HasRemainingTime | None = None) -> None:
        self.rt = rt
        self.dry_run = dry_run
        # claims taken for this batch protect it until the invocation's time is up
        self.claim_until = in_progress_until(context)
        self._dlq_url = rt.settings.jobs_dlq_url
        self._lock = threading.Lock()
        self._task_definitions: dict[str, dict[str, Any]] = {}

    # permanent errors -> DLQ -------------------------------------------------------------

    def _dlq(self, source_arn: str) -> str:
        with self._lock:
            if not self._dlq_url:
                self._dlq_url = dlq_url_from_source(self.rt, source_arn)
            return self._dlq_url

    def dead_letter(
        self, record: Mapping[str, Any], outcome: MessageOutcome, reason: str, kind: str = "permanent"
    ) -> None:
        """Move a message to the DLQ with the reason; on failure leave it in the queue."""
        outcome.reason = reason
        log = {"message_id": outcome.message_id, "job": outcome.job, "reason": reason}
        if self.dry_run:
            outcome.outcome = "dead-lettered"
            return
        try:
            self.rt.clients.sqs.send_message(
                QueueUrl=self._dlq(str(record.get("eventSourceARN", ""))),
                MessageBody=str(record.get("body", "")),
                MessageAttributes={
                    REASON_ATTRIBUTE: {"DataType": "String", "StringValue": reason[:1024]},
                    "ecspilot_source_message_id": {"DataType": "String", "StringValue": outcome.message_id},
                    "ecspilot_kind": {"DataType": "String", "StringValue": kind},
                },
            )
        except Exception as exc:  # whatever failed, the message stays in the queue
            outcome.outcome = "retry"
            outcome.reason = f"{reason} (moving it to the DLQ failed: {exc}; SQS's redrive will)"
            logger.error("message could not be dead-lettered", extra={**log, "error": str(exc)}, exc_info=exc)
            count("QueueDeadLetterErrors")
            return
        outcome.outcome = "dead-lettered"
        logger.warning("message moved to the dead-letter queue", extra=log)
        count("QueueMessagesDeadLettered")

    # the batch --------------------------------------------------------------------------

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
        admitted: list[tuple[Mapping[str, Any], QueueRequest, MessageOutcome]] = []
        for record in records:
            outcome = MessageOutcome(str(record.get("messageId", "")))
            outcomes[outcome.message_id] = outcome
            try:
                request = parse_request(str(record.get("body", "")), self.rt.config)
            except InvalidMessageError as exc:
                outcome.job = str(exc.context.get("job", ""))
                self.dead_letter(record, outcome, exc.reason)
                continue
            except Exception as exc:  # one message's failure stays its own
                self.unexpected(outcome, "parsing the message", exc)
                continue
            outcome.job = request.job.name
            outcome.request_key = request_key(request, outcome.message_id)
            admitted.append((record, request, outcome))
        # Two messages of one batch with the same request key: the first runs, the others follow it.
        firsts: dict[str, MessageOutcome] = {}
        followers: list[tuple[MessageOutcome, MessageOutcome]] = []
        unique = []
        for record, request, outcome in admitted:
            key = request_key(request, outcome.message_id)
            if key in firsts:
                followers.append((outcome, firsts[key]))
            else:
                firsts[key] = outcome
                unique.append((record, request, outcome))
        launch = self._resolve(self._backpressure(unique))
        workers = min(self.rt.settings.max_workers, max(1, len(launch)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda item: self._launch(*item), launch))
        for outcome, first in followers:
            done = first.outcome in ("started", "duplicate", "would-run")
            outcome.outcome = "duplicate" if done else "retry"
            outcome.reason = f"same request as message {first.message_id} ({first.outcome})"
        self._last_deliveries(records, outcomes)
        for o in outcomes.values():
            if o.outcome in OUTCOME_METRICS:
                count(OUTCOME_METRICS[o.outcome])
        return outcomes

    def _last_deliveries(
        self, records: Sequence[Mapping[str, Any]], outcomes: Mapping[str, MessageOutcome]
    ) -> None:
        """A message to retry on its last delivery would be moved to the DLQ by SQS's redrive,
        with no reason. One whose tasks started (the run is not recorded yet) goes back to the
        queue as a copy carrying its request key, so it is finished, never dead-lettered and
        never run twice; any other is moved to the DLQ now, saying why (the failure was
        transient: redriving it later is safe, its claim keeps it from running twice)."""
        last = [r for r in records if outcomes[str(r.get("messageId", ""))].outcome == "retry"]
        if not last or self.dry_run:
            return
        try:
            redrive = redrive_policy(self.rt, str(last[0].get("eventSourceARN", "")))
        except Exception as exc:  # without the limit, SQS's redrive still keeps the message
            logger.warning("could not read the queue's redrive policy", extra={"error": str(exc)})
            return
        if redrive.max_receive_count is None:
            return
        for record in last:
            outcome = outcomes[str(record.get("messageId", ""))]
            receives = int(dict(record.get("attributes") or {}).get("ApproximateReceiveCount", "1"))
            if receives < redrive.max_receive_count:
                continue
            requeues = _requeues(record)
            started = self._started(outcome)
            if (
                started
                and requeues < MAX_REQUEUES
                and self._requeue(record, outcome, redrive.queue_url, requeues)
            ):
                continue
            reason = f"gave up after {receives} deliveries; the last failure was transient: {outcome.reason}"
            if started:
                reason = f"its {len(outcome.task_arns)} task(s) started; requeued {requeues} times, {reason}"
            self.dead_letter(record, outcome, reason, kind="transient")

    def _started(self, outcome: MessageOutcome) -> bool:
        """Whether the message's run started tasks: known from this attempt, else looked up in
        ECS by the run's tag (an earlier attempt may have started them, then lost its claim)."""
        if outcome.task_arns:
            return True
        job = self.rt.config.job(outcome.job) if outcome.request_key else None
        if job is None:
            return False
        try:
            outcome.task_arns = request_tasks(job, self.rt.clients, run_id_for(outcome.request_key))
        except Exception as exc:  # ECS cannot tell: the message is dead-lettered with its reason
            logger.warning(
                "could not look up the tasks of a message's run",
                extra={"message_id": outcome.message_id, "job": outcome.job, "error": str(exc)},
            )
            return False
        return bool(outcome.task_arns)

    def _requeue(
        self, record: Mapping[str, Any], outcome: MessageOutcome, queue_url: str, requeues: int
    ) -> bool:
        """Send a copy of a message whose run started, keyed as the original (its
        ``idempotency_key`` set to the original's key); True once sent."""
        try:
            body = json.loads(str(record.get("body", "")))
            body.setdefault("idempotency_key", outcome.message_id)
            self.rt.clients.sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=json.dumps(body),
                MessageAttributes={
                    "ecspilot_requeued_from": {"DataType": "String", "StringValue": outcome.message_id},
                    REQUEUES_ATTRIBUTE: {"DataType": "Number", "StringValue": str(requeues + 1)},
                },
            )
        except Exception as exc:  # the original stays; SQS's redrive may take it
            logger.error(
                "could not requeue a started run", extra={"message_id": outcome.message_id}, exc_info=exc
            )
            return False
        outcome.outcome = "requeued"
        outcome.reason = (
            f"{len(outcome.task_arns)} task(s) started, run not completed: requeued ({outcome.reason})"
        )
        logger.warning("started run requeued to be completed", extra=asdict(outcome))
        count("QueueMessagesRequeued")
        return True

    def _backpressure(
        self, admitted: list[tuple[Mapping[str, Any], QueueRequest, MessageOutcome]]
    ) -> list[tuple[Mapping[str, Any], QueueRequest, MessageOutcome]]:
        """Admit messages while each job has room under ``max_running`` (one ListTasks per job)."""
        room: dict[str, int | None] = {}
        launch = []
        for record, request, outcome in admitted:
            job = request.job
            assert job.queue is not None
            if job.name not in room:
                room[job.name] = self._room(job, outcome)
            left = room[job.name]
            if left is not None and request.count > left:
                outcome.outcome = "retry"
                outcome.reason = (
                    outcome.reason or f"max_running {job.queue.max_running} reached: waits in the queue"
                )
                count("QueueBackpressure")
                continue
            if left is not None:
                room[job.name] = left - request.count
            launch.append((record, request, outcome))
        return launch

    def _resolve(
        self, launch: list[tuple[Mapping[str, Any], QueueRequest, MessageOutcome]]
    ) -> list[tuple[Mapping[str, Any], QueueRequest, MessageOutcome]]:
        """Resolve each job's task definition once per batch; a job that cannot resolve fails
        its messages (permanent -> DLQ, transient -> retry) without a RunTask."""
        failed: dict[str, Exception] = {}
        for _, request, _ in launch:
            name = request.job.name
            if name not in self._task_definitions and name not in failed:
                try:
                    self._task_definitions[name] = resolve_task_definition(request.job, self.rt.clients)
                except Exception as exc:  # judged per message below
                    failed[name] = exc
        keep = []
        for record, request, outcome in launch:
            error = failed.get(request.job.name)
            if error is None:
                try:
                    check_container(request, self._task_definitions[request.job.name])
                except InvalidMessageError as exc:
                    self.dead_letter(record, outcome, exc.reason)
                    continue
                keep.append((record, request, outcome))
            elif isinstance(error, PermanentJobError):
                self.dead_letter(record, outcome, str(error))
            elif isinstance(error, EcspilotError):
                outcome.outcome, outcome.reason = "retry", str(error)
            else:
                self.unexpected(outcome, "resolving the task definition", error)
        return keep

    def _room(self, job: JobConfig, outcome: MessageOutcome) -> int | None:
        assert job.queue is not None
        if job.queue.max_running is None:
            return None
        try:
            return max(0, job.queue.max_running - running_count(job, self.rt.clients))
        except JobError as exc:
            outcome.reason = f"counting running tasks failed: {exc}"
            return 0
        except Exception as exc:  # the job's messages wait, the batch goes on
            self.unexpected(outcome, "counting running tasks", exc)
            return 0

    def _launch(self, record: Mapping[str, Any], request: QueueRequest, outcome: MessageOutcome) -> None:
        try:
            self._run(record, request, outcome)
        except Exception as exc:  # one message's failure stays its own
            self.unexpected(outcome, "running the job", exc)

    def _run(self, record: Mapping[str, Any], request: QueueRequest, outcome: MessageOutcome) -> None:
        job = request.job
        key = request_key(request, outcome.message_id)
        try:
            overrides = self._overrides(request)
            result = run_job(
                job,
                self.rt,
                "queue",
                overrides=overrides,
                count_override=request.count,
                request_key=key,
                message_id=outcome.message_id,
                dry_run=self.dry_run,
                task_definition_arn=str(self._task_definitions[job.name]["taskDefinitionArn"]),
                claim_until=self.claim_until,
            )
        except RetryableJobError as exc:
            outcome.outcome, outcome.reason = "retry", str(exc)
            outcome.task_arns = list(exc.result.task_arns) if exc.result is not None else []
            return
        except PermanentJobError as exc:
            if is_transient(exc):  # never dead-letter a message for trouble that passes
                outcome.outcome, outcome.reason = "retry", str(exc)
                return
            self.dead_letter(record, outcome, str(exc))
            return
        except EcspilotError as exc:
            outcome.outcome, outcome.reason = "retry", str(exc)
            return
        outcome.task_arns = list(result.task_arns)
        if result.outcome in ("started", "duplicate", "would-run"):
            outcome.outcome = result.outcome
            outcome.reason = result.reason
        else:
            outcome.outcome, outcome.reason = "retry", result.reason or f"run {result.outcome}"

    def _overrides(self, request: QueueRequest) -> dict[str, Any] | None:
        if not request.has_overrides:
            return None
        container = request.container or next(iter(request.job.overrides.containers), None)
        if container is None:
            task_definition = self._task_definitions[request.job.name]
            container = str(task_definition["containerDefinitions"][0]["name"])
        values: dict[str, Any] = {}
        if request.command is not None:
            values["command"] = list(request.command)
        if request.environment:
            values["environment"] = dict(request.environment)
        for key in ("cpu", "memory"):
            if getattr(request, key) is not None:
                values[key] = getattr(request, key)
        return {"containers": {container: values}}


def handle_queue_event(event: Mapping[str, Any], rt: Runtime, context: Any = None) -> dict[str, Any]:
    """The ``run_queued_jobs`` flow: process a batch, answer with the partial batch failures."""
    outcomes = QueueBatch(rt, context=context).process(list(event.get("Records", [])))
    for o in outcomes.values():
        logger.info(f"message {o.outcome}", extra=asdict(o))

    def record_handler(record: SQSRecord) -> str:
        outcome = outcomes[record.message_id]
        if outcome.outcome == "retry":
            raise TransientMessageError(outcome.reason, job=outcome.job, message_id=outcome.message_id)
        return outcome.outcome

    # Powertools' batch utilities are loaded on the first batch, not at import (cold start)
    from aws_lambda_powertools.utilities.batch import (  # noqa: PLC0415
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(
        process_partial_response(
            event=dict(event), record_handler=record_handler, processor=processor, context=context
        )
    )
