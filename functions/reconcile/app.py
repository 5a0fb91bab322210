"""reconcile: make daemons and schedules match the config.

Triggers: a rate schedule, each stack deploy (custom resource), and events that
can cause drift. Every trigger runs the same plan-and-apply.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ecspilot.interfaces import runtime
from ecspilot.obs import log_metrics, logger
from ecspilot.reconcile.handler import handle_reconcile_event


@log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # runtime.current, not runtime.current(): the custom resource answers even when building fails
    return handle_reconcile_event(event, runtime.current)
