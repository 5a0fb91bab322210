"""track_deployments: EventBridge ``ECS Deployment State Change`` and ``ECS Task State Change``
(STOPPED) -> closed deployment and run records, metrics, notifications.

Duplicate and late events are harmless (records only move forward); a malformed event
raises, so it ends in the function's DLQ.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ecspilot.interfaces import runtime
from ecspilot.obs import log_metrics, logger
from ecspilot.tracking.handler import handle_ecs_event


@log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_ecs_event(event, runtime.current())
