"""The rollback decisions, pure (table-tested): what ``ecspilot rollback SERVICE`` does.

- :func:`choose`: a service deployment ECS is running (PENDING, IN_PROGRESS) is stopped with
  ``ROLLBACK``; one already being stopped or rolled back is left to finish (a second rollback
  would go one revision further back); with neither, the previous COMPLETED revision is deployed;
- :func:`previous_completed`: that revision: the newest COMPLETED record naming a task definition
  other than the one the service runs, whose digest is not held (FAILED or ROLLED_BACK there);
- :func:`digests_to_hold`: the digests the current revision runs in the service's followed
  containers and the target does not: held like the circuit breaker's rollback, so a redelivered
  push or catch-up does not bring them back.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal

from ecspilot.domain.images import ImageRef
from ecspilot.domain.service_deployments import ACTIVE_STATUSES, STOPPING_STATUSES

Action = Literal["stop", "rolling-back", "redeploy"]


def choose(statuses: Sequence[tuple[str, str]]) -> tuple[Action, str]:
    """``(action, service deployment ARN)`` from the service's ``(arn, status)`` pairs, newest
    first; the ARN is '' for ``redeploy``."""
    for arn, status in statuses:
        if status in STOPPING_STATUSES:
            return "rolling-back", arn
    for arn, status in statuses:
        if status in ACTIVE_STATUSES:
            return "stop", arn
    return "redeploy", ""


def previous_completed(
    records: Sequence[Mapping[str, Any]], current_task_definition: str, held: Collection[str]
) -> Mapping[str, Any] | None:
    """The record to go back to (newest first ``records``), or None."""
    for record in records:
        target = str(record.get("to_task_definition") or "")
        if record.get("status") != "COMPLETED" or not target or target == current_task_definition:
            continue
        if record.get("image_digest") and record.get("image_digest") in held:
            continue
        return record
    return None


def digests_to_hold(
    current: Mapping[str, str], target: Mapping[str, str] | None, containers: Sequence[str]
) -> list[str]:
    """The digests of ``current`` (container -> image) in ``containers`` that ``target`` (the
    revision rolled back to; None: unknown) does not run."""
    kept = {ImageRef.parse(image).digest for image in (target or {}).values()}
    out = []
    for name in containers:
        digest = ImageRef.parse(current.get(name, "")).digest if current.get(name) else None
        if digest and digest not in kept and digest not in out:
            out.append(digest)
    return out
