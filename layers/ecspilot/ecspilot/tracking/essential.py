"""Which containers of a task definition revision are essential: what a stopped job is judged on.

Read through the one ECS read layer (:class:`~ecspilot.aws.ecs_reads.TaskDefinitions`), and
kept for the life of the process: a revision never changes, so a warm Lambda describes each one
once. Only an answer is kept: a revision that cannot be described is asked again next time.
"""

from __future__ import annotations

import threading

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.ecs_reads import TaskDefinitions
from ecspilot.domain.taskdef import family_revision
from ecspilot.errors import error_code
from ecspilot.obs import logger

_cache: dict[str, set[str]] = {}  # task definition ARN -> essential container names
_lock = threading.Lock()


def essential_containers(task_definitions: TaskDefinitions, task_definition_arn: str) -> set[str] | None:
    """The essential containers of a revision; None (judge every container) when it cannot be
    described: the safe side, a sidecar's exit may fail a good run but never pass a bad one."""
    if not task_definition_arn:
        return None
    with _lock:
        cached = _cache.get(task_definition_arn)
    if cached is not None:
        return set(cached)
    try:
        td = task_definitions.get(task_definition_arn)["taskDefinition"]
    except (ClientError, BotoCoreError) as exc:
        logger.warning(
            "cannot describe the task definition: every container counts as essential",
            extra={
                "task_definition": family_revision(task_definition_arn),
                "error": str(exc),
                "error_code": error_code(exc),
            },
        )
        return None
    names = {c["name"] for c in td["containerDefinitions"] if c.get("essential", True)}
    with _lock:
        _cache[task_definition_arn] = names
    return set(names)
