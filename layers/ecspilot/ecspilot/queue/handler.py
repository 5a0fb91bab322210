"""The ``run_queued_jobs`` entry point: the only place of the queue package that knows the
process runtime. It builds a :class:`~ecspilot.queue.batch.QueueBatch` from the runtime, runs the
batch, and answers with the partial batch response (the messages to deliver again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from ecspilot.aws.claims import in_progress_until
from ecspilot.errors import EventError
from ecspilot.interfaces.runtime import Runtime
from ecspilot.obs import logger
from ecspilot.queue.batch import QueueBatch


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
    """The ``run_queued_jobs`` flow: process a batch, answer with the partial batch failures.

    An event that is not an SQS batch (a direct invoke: not an object, ``Records`` not a list of
    objects) is an :class:`EventError`: nothing runs, and no message id could be reported."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
        raise EventError("run_queued_jobs takes an SQS batch: Records must be a list of objects")
    outcomes = queue_batch(rt, context=context).process(list(records))
    for o in outcomes.values():
        logger.info(f"message {o.outcome}", extra=asdict(o))

    # The partial batch response Lambda's SQS event source reads (ReportBatchItemFailures): the
    # messages to deliver again. Shaped here: Powertools' batch utilities would load 92 modules
    # (asyncio among them) on the first batch for what is one list (bench/coldstart.py).
    failures = [{"itemIdentifier": message_id} for message_id, o in outcomes.items() if o.outcome == "retry"]
    return {"batchItemFailures": failures}
