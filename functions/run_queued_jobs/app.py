"""run_queued_jobs: SQS batch from the jobs queue -> one job run per valid message.

Answers with the partial batch response (ReportBatchItemFailures): transient
failures stay in the queue; permanent ones were moved to the dead-letter queue.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ecspilot.interfaces import runtime
from ecspilot.obs import log_metrics, logger
from ecspilot.queue.handler import handle_queue_event


@log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_queue_event(event, runtime.current(), context)
