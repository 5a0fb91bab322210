"""deploy_on_push: EventBridge ``ECR Image Action`` -> digest-pinned deployments.

Raises when any service failed, so Lambda's retry runs again (the no-op rule
makes that safe) and a malformed event ends in the function's DLQ. SQS batches from the
continuation queue carry the rest of rollouts that outlived one invocation.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ecspilot.deploy.handler import handle_push_event
from ecspilot.interfaces import runtime
from ecspilot.obs import log_metrics, logger


@log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_push_event(event, runtime.current(), context=context)
