"""The ``run_queued_jobs`` entry point: the only place of the queue package that knows the
process runtime. It builds a :class:`~ecspilot.queue.batch.QueueBatch` from the runtime, runs the
batch, and lets Powertools' batch processor shape the partial batch response from the outcomes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ecspilot.aws.claims import in_progress_until
from ecspilot.interfaces.runtime import Runtime
from ecspilot.obs import logger
from ecspilot.queue.batch import QueueBatch
from ecspilot.queue.outcomes import TransientMessageError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


def queue_batch(rt: Runtime, dry_run: bool = False, context: Any = None) -> QueueBatch:
    """A batch wired from the runtime; its claims protect it until the invocation's time is up."""
    return QueueBatch(
        rt.config,
        rt.clients,
        rt.history,
        max_workers=rt.settings.max_workers,
        dlq_url=rt.settings.jobs_dlq_url,
        dry_run=dry_run,
        claim_until=in_progress_until(context),
    )


def handle_queue_event(event: Mapping[str, Any], rt: Runtime, context: Any = None) -> dict[str, Any]:
    """The ``run_queued_jobs`` flow: process a batch, answer with the partial batch failures."""
    outcomes = queue_batch(rt, context=context).process(list(event.get("Records", [])))
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
