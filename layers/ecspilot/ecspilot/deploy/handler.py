"""The deploy flow's entry points: the only deploy module that knows the process ``Runtime``.

- :func:`handle_push_event`: the ``deploy_on_push`` function (an ECR Image Action event);
- :func:`reconcile_catch_up`: the reconcile part ``(runtime, dry_run) -> list[Action]``.

Each unpacks the runtime into what the core takes (config, clients, history, settings values).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from ecspilot.aws.accounts import AccountSessions, sessions_of
from ecspilot.aws.notify import Notifier
from ecspilot.deploy.continuation import Budget, Continuation, ContinuationItem
from ecspilot.deploy.targets import deploy_push
from ecspilot.domain.envelope import parse_event
from ecspilot.domain.events import EcrImageActionEvent
from ecspilot.domain.images import short_digest
from ecspilot.domain.plan import Action
from ecspilot.errors import EcspilotError, InvalidMessageError
from ecspilot.interfaces.origins import untrusted_reason
from ecspilot.interfaces.runtime import Runtime
from ecspilot.obs import count, logger
from ecspilot.promotion.timer import TimerTarget
from ecspilot.stopping.handler import deferrals_of

if TYPE_CHECKING:
    from ecspilot.domain.plan import Action


def handle_push_event(
    event: Any, runtime: Runtime, dry_run: bool = False, context: Any = None
) -> dict[str, Any]:
    """The ``deploy_on_push`` flow: parse an ECR Image Action event and deploy it; an SQS batch
    from the continuation queue continues rollouts (:func:`handle_continuations`)."""
    if isinstance(event, dict) and "Records" in event:
        return handle_continuations(event, runtime, context)
    parsed = parse_event(EcrImageActionEvent, event, "ECR Image Action")
    untrusted = untrusted_reason(runtime.settings, parsed.account, parsed.region, "ECR Image Action")
    if untrusted:
        return {"ignored": untrusted}
    reason = parsed.ignore_reason()
    if reason:
        logger.info(
            "event ignored",
            reason=reason,
            repository=parsed.detail.repository_name,
            image_digest=short_digest(parsed.detail.image_digest),
        )
        count("EventsIgnored")
        return {"ignored": reason}
    result = deploy_push(
        parsed.to_push(),
        runtime.config,
        runtime.clients,
        runtime.history,
        max_workers=runtime.settings.max_workers,
        dry_run=dry_run,
        continuation=_continuation(runtime, context),
        topic_arn=runtime.settings.notify_topic_arn,
        sessions=_sessions(runtime, "deploy_on_push"),
        own=(runtime.settings.account_id, runtime.settings.region),
        timer=signature_timer_target(runtime),
        deferrals=deferrals_of(runtime),
    )
    return result.as_dict()


def signature_timer_target(runtime: Runtime) -> TimerTarget | None:
    """Where the signature gate's re-check timers point (issue 27): reconcile, when the
    function's environment names it and the role Scheduler assumes; else catch-up re-checks."""
    settings = runtime.settings
    if not settings.reconcile_arn or not settings.scheduler_role_arn:
        return None
    return TimerTarget(settings.reconcile_arn, settings.scheduler_role_arn, settings.schedule_group)


def handle_signature_timer(event: dict[str, Any], runtime: Runtime) -> dict[str, Any]:
    """A signature re-check timer fired (``deploy.signature_timer``): the same deploy core, for
    the push it names and the services it names that still follow it."""
    # imported here: a push never reads a timer's input nor checks a continuation (cold start)
    from ecspilot.deploy.continuation_trust import ecr_pushed_at, item_refusal  # noqa: PLC0415
    from ecspilot.deploy.signature_timer import push_of  # noqa: PLC0415

    push = push_of(event)
    own = (runtime.settings.account_id, runtime.settings.region)
    # nothing in the input is taken on trust (a direct invoke can forge it, as a continuation):
    # ecspilot's registry, an image ECR has, and only services the signature gate deferred
    refusal = item_refusal(push, own)
    if refusal is None and ecr_pushed_at(runtime.clients.ecr, push) is None:
        refusal = "ECR has no such image in ecspilot's registry"
    if refusal is not None:
        logger.warning("signature timer refused", extra={"reason": refusal})
        count("EventsUntrustedOrigin")
        return {"trigger": "signature", "ignored": refusal}
    names = {str(n) for n in event.get("services", [])}
    gated = [s for s in runtime.config.services if s.name in names and s.gates and s.gates.signature]
    scoped = runtime.config.model_copy(update={"services": gated, "jobs": []})
    logger.info(
        "signature re-check", extra={"services": sorted(names), "image_digest": short_digest(push.digest)}
    )
    result = deploy_push(
        push,
        scoped,
        runtime.clients,
        runtime.history,
        max_workers=runtime.settings.max_workers,
        topic_arn=runtime.settings.notify_topic_arn,
        sessions=_sessions(runtime, "reconcile"),
        own=(runtime.settings.account_id, runtime.settings.region),
    )
    return {"trigger": "signature", **result.as_dict()}


def _sessions(runtime: Runtime, function: str) -> AccountSessions:
    """The assumed-role clients of the accounts the config names (the promotions' too: one
    AssumeRole per account and region per process, until near expiry)."""
    settings = runtime.settings
    return sessions_of(runtime.clients, settings.region, function, settings.max_workers)


def _continuation(
    runtime: Runtime, context: Any, item: ContinuationItem | None = None
) -> Continuation | None:
    """With a continuation queue and a Lambda context, work beyond the time budget continues."""
    queue_url = runtime.settings.continuation_queue_url
    budget = Budget.of_context(context, runtime.settings.time_margin_seconds)
    if not queue_url or budget is None:
        return None
    return Continuation(queue_url, budget, item)


def handle_continuations(event: dict[str, Any], runtime: Runtime, context: Any = None) -> dict[str, Any]:
    """An SQS batch of continuation items: each continues its rollout (the same deploy core,
    restricted to its services); a failed item is reported in ``batchItemFailures`` so SQS
    delivers it again (idempotent), and after ``maxReceiveCount`` moves it to the DLQ.

    Nothing in a message is taken on trust (``deploy.continuation_trust``): records from anywhere
    but the continuation queue are ignored as a whole; a part whose image is not in ecspilot's
    registry, or that is not part of a rollout the first invocation recorded, is refused (logged,
    counted, reported failed so it ends in the dead-letter queue, whose alarm tells the operator);
    the push time is ECR's, never the body's."""
    # imported here: a push checks no continuation (cold start)
    from ecspilot.deploy.continuation_trust import queue_arn_of, source_refusal  # noqa: PLC0415

    settings = runtime.settings
    queue_arn = settings.continuation_queue_arn or queue_arn_of(settings.continuation_queue_url or "")
    records = event.get("Records")
    untrusted = source_refusal(records, queue_arn)
    if untrusted:
        logger.warning("continuation records ignored", reason=untrusted)
        count("EventsUntrustedOrigin")
        return {"ignored": untrusted, "batchItemFailures": []}
    failures, refused = [], []
    deferrals = deferrals_of(runtime)  # one read of the freezes for the whole batch
    for record in cast("list[dict[str, Any]]", records):  # source_refusal checked the shape
        message_id = str(record.get("messageId", ""))
        try:
            item = _verified(ContinuationItem.parse(str(record.get("body", ""))), runtime)
        except InvalidMessageError as exc:
            logger.error("continuation refused", message_id=message_id, reason=exc.reason)
            count("DeployContinuationsRefused")
            refused.append({"itemIdentifier": message_id, "reason": exc.reason})
            failures.append({"itemIdentifier": message_id})  # to the DLQ (and its alarm) as evidence
            continue
        except EcspilotError as exc:
            logger.error("continuation not verified", message_id=message_id, error=str(exc))
            count("DeployContinuationErrors")
            failures.append({"itemIdentifier": message_id})
            continue
        try:
            logger.info(
                "continuing a rollout",
                rollout_id=item.rollout_id,
                part=item.part,
                services=len(item.services),
                image_digest=short_digest(item.push.digest),
            )
            deploy_push(
                item.push,
                runtime.config,
                runtime.clients,
                runtime.history,
                max_workers=settings.max_workers,
                continuation=_continuation(runtime, context, item)
                or Continuation(settings.continuation_queue_url or "", None, item),
                topic_arn=settings.notify_topic_arn,
                sessions=_sessions(runtime, "deploy_on_push"),
                own=(settings.account_id, settings.region),
                deferrals=deferrals,
            )
        except EcspilotError as exc:
            logger.error("continuation failed", message_id=message_id, error=str(exc))
            count("DeployContinuationErrors")
            failures.append({"itemIdentifier": message_id})
    out: dict[str, Any] = {"batchItemFailures": failures}
    if refused:
        out["refused"] = refused
    return out


def _verified(item: ContinuationItem, runtime: Runtime) -> ContinuationItem:
    """``item`` with ECR's push time, once its image and its rollout are proven; raises
    :class:`InvalidMessageError` (refused for good) or :class:`AwsError` (a read failed: retry)."""
    from ecspilot.deploy.continuation_trust import (  # noqa: PLC0415 - continuations only
        ecr_pushed_at,
        item_refusal,
        read_rollout,
        rollout_refusal,
    )

    settings = runtime.settings
    reason = item_refusal(item.push, (settings.account_id, settings.region))
    if reason is None:
        reason = rollout_refusal(item, read_rollout(runtime.history, item.rollout_id))
    if reason is not None:
        raise InvalidMessageError(reason, rollout_id=item.rollout_id[:200])
    pushed_at = ecr_pushed_at(runtime.clients.ecr, item.push)
    if pushed_at is None:
        raise InvalidMessageError("the image is not in ECR", rollout_id=item.rollout_id)
    return replace(item, push=replace(item.push, time=pushed_at))


def reconcile_catch_up(runtime: Runtime, dry_run: bool = False) -> list[Action]:
    """The reconcile part: deploy what a missed push would have deployed (one action per
    followed service and job)."""
    from ecspilot.deploy.catchup import catch_up  # noqa: PLC0415 - reconcile's part, not a push's

    settings = runtime.settings
    return catch_up(
        runtime.config,
        runtime.clients,
        runtime.history,
        settings.max_workers,
        dry_run=dry_run,
        sessions=_sessions(runtime, "reconcile"),
        own=(settings.account_id, settings.region),
        notifier=Notifier(runtime.clients, settings.notify_topic_arn),
        deferrals=deferrals_of(runtime),
    )
