"""run_job: an EventBridge Scheduler firing (``{"job", "scheduled_time"}``) or a direct invoke
(``{"job"}``) -> the job's ECS task(s), under its concurrency policy.

Raises when tasks could not start, so Lambda's asynchronous retries run the firing again (the
firing's claim and RunTask client tokens make that safe) and a firing that still fails lands in
the function's failure destination.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ecspilot.interfaces import runtime
from ecspilot.jobs.handler import handle_run_job_event
from ecspilot.obs import log_metrics, logger


@log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_run_job_event(event, runtime.current(), context=context)
