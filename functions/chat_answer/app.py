"""chat_answer: a button pressed in Slack or Microsoft Teams (Amazon Q Developer in chat
applications invokes this function with the channel's role) -> approve, reject or rollback
through the CLI's own core -> ``{"outcome", "answer"}``, the line the chat shows.

Only the roles named in the template's ``ChatChannelRoleArns`` may invoke it (its resource
policy). Each press is claimed once in the state table: a double click, two people or a retry
answer once.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ecspilot.interfaces import runtime
from ecspilot.interfaces.chat_answer import handle_chat_answer
from ecspilot.obs import log_metrics, logger


@log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    return handle_chat_answer(event, runtime.current())
