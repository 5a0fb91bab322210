"""Queue messages, the SQS edge: moving a message to the dead-letter queue with its reason, and
acting on a message's last delivery before SQS's redrive does (without a reason).

- :meth:`DeadLetters.dead_letter`: the message goes to the DLQ with ``ecspilot_reason``; when
  that fails it stays in the queue (retried), never dropped;
- :meth:`DeadLetters.last_deliveries`: a message to retry on its last delivery whose tasks
  started, or may have (ECS could not say: the look-up failed), is requeued as a copy keyed as
  the original (bounded by ``MAX_REQUEUES``); any other is dead-lettered now, saying why.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from ecspilot.aws.clients import Clients
from ecspilot.domain.config import EcspilotConfig
from ecspilot.jobs.plan import run_id_for
from ecspilot.jobs.tasks import request_tasks
from ecspilot.obs import count, logger
from ecspilot.queue.outcomes import (
    MAX_REQUEUES,
    REASON_ATTRIBUTE,
    REQUEUES_ATTRIBUTE,
    MessageOutcome,
    receives,
    requeues,
)
from ecspilot.queue.redrive import dlq_url_from_source, redrive_policy


class DeadLetters:
    """The dead-letter and requeue edge of one batch; ``dlq_url`` (``ECSPILOT_JOBS_DLQ_URL``)
    or, when None, the source queue's redrive policy says where dead letters go."""

    def __init__(
        self, clients: Clients, config: EcspilotConfig, dlq_url: str | None = None, dry_run: bool = False
    ) -> None:
        self.clients = clients
        self.config = config
        self.dry_run = dry_run
        self._dlq_url = dlq_url
        self._lock = threading.Lock()

    def _dlq(self, source_arn: str) -> str:
        with self._lock:
            if not self._dlq_url:
                self._dlq_url = dlq_url_from_source(self.clients.sqs, source_arn)
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
            self.clients.sqs.send_message(
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

    def last_deliveries(
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
            redrive = redrive_policy(self.clients.sqs, str(last[0].get("eventSourceARN", "")))
        except Exception as exc:  # without the limit, SQS's redrive still keeps the message
            logger.warning("could not read the queue's redrive policy", extra={"error": str(exc)})
            return
        if redrive.max_receive_count is None:
            return
        for record in last:
            outcome = outcomes[str(record.get("messageId", ""))]
            delivered = receives(record)
            if delivered < redrive.max_receive_count:
                continue
            requeued = requeues(record)
            started = self._started(outcome)  # None: unknown, which is not "not started"
            if (
                started is not False
                and requeued < MAX_REQUEUES
                and self._requeue(record, outcome, redrive.queue_url, requeued)
            ):
                continue
            reason = f"gave up after {delivered} deliveries; the last failure was transient: {outcome.reason}"
            if started is None:
                reason = f"its tasks could not be looked up; requeued {requeued} times, {reason}"
            elif started:
                reason = f"its {len(outcome.task_arns)} task(s) started; requeued {requeued} times, {reason}"
            self.dead_letter(record, outcome, reason, kind="transient")

    def _started(self, outcome: MessageOutcome) -> bool | None:
        """Whether the message's run started tasks: known from this attempt, else looked up in
        ECS by the run's tag (an earlier attempt may have started them, then lost its claim);
        None when the look-up failed: the run may have started, so the message is requeued (its
        claim and key kept) rather than dead-lettered, and a later delivery records the run."""
        if outcome.task_arns:
            return True
        job = self.config.job(outcome.job) if outcome.request_key else None
        if job is None:
            return False
        try:
            outcome.task_arns = request_tasks(job, self.clients, run_id_for(outcome.request_key))
        except Exception as exc:  # ECS cannot tell: the run may have started
            logger.warning(
                "could not look up the tasks of a message's run: it is requeued",
                extra={"message_id": outcome.message_id, "job": outcome.job, "error": str(exc)},
            )
            return None
        return bool(outcome.task_arns)

    def _requeue(
        self, record: Mapping[str, Any], outcome: MessageOutcome, queue_url: str, requeued: int
    ) -> bool:
        """Send a copy of a message whose run started, keyed as the original (its
        ``idempotency_key`` set to the original's key); True once sent."""
        try:
            body = json.loads(str(record.get("body", "")))
            body.setdefault("idempotency_key", outcome.message_id)
            self.clients.sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=json.dumps(body),
                MessageAttributes={
                    "ecspilot_requeued_from": {"DataType": "String", "StringValue": outcome.message_id},
                    REQUEUES_ATTRIBUTE: {"DataType": "Number", "StringValue": str(requeued + 1)},
                },
            )
        except Exception as exc:  # the original stays; SQS's redrive may take it
            logger.error(
                "could not requeue a started run", extra={"message_id": outcome.message_id}, exc_info=exc
            )
            return False
        outcome.outcome = "requeued"
        started = (
            f"{len(outcome.task_arns)} task(s) started" if outcome.task_arns else "its tasks may have started"
        )
        outcome.reason = f"{started}, run not completed: requeued ({outcome.reason})"
        logger.warning("started run requeued to be completed", extra=asdict(outcome))
        count("QueueMessagesRequeued")
        return True
