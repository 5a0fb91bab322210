"""Answering a paused hook once: ContinueServiceDeployment with a single attempt, ECS's status
read after any error, and the hook record's final write (``tracking.hooks``'s edge)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ecspilot.aws.clients import Clients
from ecspilot.aws.hook_state import HookRecords
from ecspilot.aws.hooks import Answer, already_answered, answer_hook, hook_status
from ecspilot.errors import EcspilotError, HookError, is_uncertain
from ecspilot.obs import count, logger

METRIC = {"CONTINUE": "HooksContinued", "ROLLBACK": "HooksRolledBack", "WAIT": "HooksWaiting"}


def answer(
    clients: Clients,
    records: HookRecords,
    key: Mapping[str, str],
    fields: Mapping[str, Any],
    action: str,
    held_as: str,
    reasons: tuple[str, ...],
    decided_by: str,
    check_first: bool = False,
) -> str:
    """ContinueServiceDeployment for a hook held as ``held_as``, sent once, then the hook's final
    status; returns it (CONTINUE, ROLLBACK, or ANSWERED when ECS had already taken an answer).

    ``check_first``: an earlier attempt may have answered (its reply lost, or it died before its
    final write): ECS's status of the hook is read first, and a hook ECS no longer awaits is not
    answered again. After a failed call the status is read too (a lost reply may have been
    applied); only when ECS says the hook still awaits an answer, or cannot say, does the hook
    go back (RETRY for the tracker, WAITING for ``approve``) and the call raise."""
    log = {
        "cluster": fields.get("cluster"),
        "ecs_service": fields.get("service"),
        "hook_id": fields.get("hook_id"),
    }
    chosen: Answer = "CONTINUE" if action == "CONTINUE" else "ROLLBACK"
    arn, hook_id = str(fields["service_deployment_arn"]), str(fields["hook_id"])
    final = {"reasons": list(reasons), "decided_by": decided_by, "action": chosen}
    back = "RETRY" if held_as == "EVALUATING" else "WAITING"
    if check_first:
        try:
            taken = hook_status(clients.ecs, arn, hook_id) == "TAKEN"
        except HookError as exc:
            _release(records, key, back, held_as, True, log)
            raise HookError(f"an earlier answer may have been taken, and {exc}", **exc.context) from exc
        if taken:
            logger.info("hook already answered at ECS: not answered again", extra=log)
            count("HooksAlreadyAnswered")
            _finish(records, key, "ANSWERED", held_as, final, log)
            return "ANSWERED"
    try:
        answer_hook(clients.single_attempt("ecs"), arn, hook_id, chosen)
    except HookError as exc:
        count("HookAnswerErrors")
        if _taken_after(clients, exc, arn, hook_id, log):
            logger.info("ECS had taken the answer: the hook is answered", extra={**log, "error": str(exc)})
            count("HooksAlreadyAnswered")
            _finish(records, key, "ANSWERED", held_as, final, log)
            return "ANSWERED"
        _release(records, key, back, held_as, is_uncertain(exc), log)
        raise
    count(METRIC[chosen])
    logger.info(f"hook answered {chosen}", extra={**log, "decided_by": decided_by})
    _finish(records, key, chosen, held_as, final, log)
    return chosen


def _taken_after(clients: Clients, exc: HookError, arn: str, hook_id: str, log: Mapping[str, Any]) -> bool:
    """After a failed ContinueServiceDeployment: did ECS take an answer all the same? An error
    saying "already" says so; else ECS's status of the hook (unknown when it cannot be read)."""
    if already_answered(exc):
        return True
    try:
        return hook_status(clients.ecs, arn, hook_id) == "TAKEN"
    except HookError as read:
        logger.warning(
            "could not read the hook's status after a failed answer", extra={**log, "error": str(read)}
        )
        return False


def _release(
    records: HookRecords,
    key: Mapping[str, str],
    back: str,
    held_as: str,
    uncertain: bool,
    log: Mapping[str, Any],
) -> None:
    """Let go of a hook whose answer failed; ``answer_uncertain`` tells the next attempt to read
    ECS's status of the hook before it answers (the failed call may have been applied)."""
    try:
        records.move(key, back, [held_as], {"answer_uncertain": uncertain})
    except EcspilotError as exc:
        logger.error("hook not released after a failed answer", extra={**log, "error": str(exc)})


FINAL_WRITE_ATTEMPTS = 3


def _finish(
    records: HookRecords,
    key: Mapping[str, str],
    status: str,
    held_as: str,
    fields: Mapping[str, Any],
    log: Mapping[str, Any],
) -> None:
    """The hook's final status, tried a few times; when it still fails, the hold expires and the
    next delivery reads ECS's status before answering (``check_first``): never a second answer."""
    for attempt in range(FINAL_WRITE_ATTEMPTS):
        try:
            records.move(key, status, [held_as], fields)
            return
        except EcspilotError as exc:
            if attempt + 1 == FINAL_WRITE_ATTEMPTS:
                logger.error("hook answered, its record not updated", extra={**log, "error": str(exc)})
            else:
                time.sleep(0.05 * 2**attempt)
