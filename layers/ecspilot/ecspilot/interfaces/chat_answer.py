"""The chat answer path: a button pressed in Slack or Microsoft Teams (Amazon Q Developer in chat
applications runs ``lambda invoke`` of the ``chat_answer`` function with the channel's IAM role)
-> the same core as the CLI verbs -> one line the chat shows.

The runbook of a press:

1. validate the payload (:func:`ecspilot.domain.chat.parse_answer`) and find the service in the
   config (its configured name, or CLUSTER/SERVICE as the notifications name it);
2. claim what it answers in the state table (:mod:`ecspilot.aws.chat_claims`): a double click,
   two people, a redelivery -> one press answers, the others read "already answered";
3. answer through the CLI's core: ``approve`` / ``reject`` of a hook ->
   :func:`ecspilot.tracking.hooks.approve_paused` (that hook only); ``approve`` of a release ->
   :func:`ecspilot.promotion.manual.approve_promotion`; ``reject`` of a release records the
   refusal (the release stays unpromoted, and no chat press approves it afterwards); ``rollback``
   -> :func:`ecspilot.deploy.rollback.rollback`, only while the deployment (or image) the
   notification named is still the service's newest; ``approve`` / ``reject`` of a version
   (``digest``: issue 27's ``awaiting approval``) -> :func:`ecspilot.interfaces.cli_release.answer_version`
   (an approved digest deploys, that one only); ``unfreeze`` -> the CLI freeze it names ends on
   every service it holds (:meth:`ecspilot.aws.freezes.FreezeStore.lift_one`, the store
   ``ecspilot unfreeze`` lifts through), refused when it is no longer active, and for a config
   freeze (the config owns it) or the incident freeze (it lifts when its alarms are OK);
4. record the answer (ANSWERED, with who and the line) or let go (refused, failed) so a later
   press may try again; an answered press is notified into the notification's thread.

Who pressed: a Lambda invocation does not carry its caller, and the function's resource policy
lets only the roles of ``ChatChannelRoleArns`` invoke it, so the record names that role (or the
roles, when several channels share the function); CloudTrail's Invoke event names the one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, Literal

from ecspilot.aws.chat_claims import ChatAnswers
from ecspilot.aws.hooks import Answer
from ecspilot.aws.notify import Notifier
from ecspilot.domain.chat import ChatAnswer, parse_answer
from ecspilot.domain.config import EcspilotConfig, ServiceConfig
from ecspilot.domain.images import short_digest
from ecspilot.errors import ChatAnswerError, ChatAnswerStoreError, EcspilotError, PromotionInputError
from ecspilot.interfaces.runtime import Runtime
from ecspilot.obs import count, logger
from ecspilot.records import dataclass

Outcome = Literal["answered", "already-answered", "refused", "failed", "invalid"]


@dataclass(frozen=True)
class ChatReply:
    """What the chat shows (``answer``, one line) and how it ended."""

    outcome: Outcome
    answer: str
    thread: Mapping[str, str] | None = None  # the answered notification's thread, when answered

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if k != "thread"}


def chat_identity(role_arns: tuple[str, ...]) -> str:
    """Who pressed, as far as the function knows: the chat channel role that may invoke it."""
    if len(role_arns) == 1:
        return f"chat role {role_arns[0]}"
    if role_arns:
        return f"a chat channel role ({', '.join(role_arns)})"
    return "chat"


def resolve_service(config: EcspilotConfig, name: str) -> ServiceConfig:
    """The configured service ``name`` names: its configured name, else CLUSTER/SERVICE or the
    ECS service name when that is one configured service only."""
    exact = [s for s in config.services if s.name == name]
    matches = exact or [
        s for s in config.services if name in (f"{s.cluster}/{s.service_name}", s.service_name)
    ]
    if len(matches) != 1:
        why = "names several configured services" if matches else "is not a configured service"
        raise ChatAnswerError(f"{name!r} {why}")
    return matches[0]


def answer_from_chat(payload: Any, rt: Runtime, by: str | None = None) -> ChatReply:
    """Answer one press (see the module docstring). Invalid input raises
    :class:`~ecspilot.errors.ChatAnswerError`; everything else is a reply."""
    press = parse_answer(payload)
    # a freeze is one for every service it holds: its presses share one claim, whichever
    # service's notification they came from (the service only says where it was pressed)
    svc = None if press.action == "unfreeze" else resolve_service(rt.config, press.service)
    scope = svc.name if svc is not None else "FREEZE"
    who = by or chat_identity(rt.settings.chat_role_arns)
    log = {"action": press.action, "service": scope, "answers": press.subject, "by": who}
    if not rt.history.enabled:
        return _refused("no state table (ECSPILOT_TABLE): nothing waits for an answer", log)
    answers = ChatAnswers(rt.history)
    claim = answers.claim(scope, press.subject, press.action, who)
    if not claim.won:
        held = claim.held
        if held.get("status") == "ANSWERING":
            line = f"already being answered: {held.get('action')} by {held.get('by')}"
        else:
            line = f"already answered: {held.get('answer') or held.get('action')}"
        count("ChatAnswersRepeated")
        logger.info("chat answer repeated", extra={**log, "held_by": held.get("by")})
        return ChatReply("already-answered", line)
    try:
        reply = _dispatch(press, svc, rt, who)
    except EcspilotError as exc:
        answers.finish(claim, False, f"failed: {exc}")
        count("ChatAnswerErrors")
        logger.error("chat answer failed", extra={**log, "error": str(exc)})
        return ChatReply("failed", f"failed, nothing answered (press again): {exc}"[:300])
    try:
        answers.finish(claim, reply.outcome == "answered", reply.answer)
    except ChatAnswerStoreError as exc:  # answered or not, it happened: the claim expires by itself
        logger.error("chat answer not recorded", extra={**log, "error": str(exc)})
        count("ChatAnswerErrors")
    if reply.outcome != "answered":
        logger.info("chat answer refused", extra={**log, "answer": reply.answer})
        count("ChatAnswersRefused")
        return reply
    count("ChatAnswers")
    logger.info("answered from chat", extra={**log, "answer": reply.answer})
    _notify(rt, press, svc, reply)
    return reply


def handle_chat_answer(event: Any, rt: Runtime) -> dict[str, str]:
    """The ``chat_answer`` function: a press -> ``{"outcome", "answer"}`` (invalid input is a
    refusal the chat shows, not a failure to retry)."""
    try:
        return answer_from_chat(event, rt).as_dict()
    except ChatAnswerError as exc:
        count("ChatAnswersInvalid")
        logger.warning("chat answer refused: invalid", extra={"error": str(exc)})
        return ChatReply("invalid", f"refused: {exc}").as_dict()


def _refused(line: str, log: Mapping[str, Any]) -> ChatReply:
    logger.info("chat answer refused", extra={**log, "answer": line})
    count("ChatAnswersRefused")
    return ChatReply("refused", line)


def _dispatch(press: ChatAnswer, svc: ServiceConfig | None, rt: Runtime, who: str) -> ChatReply:
    if svc is None:
        return _unfreeze(press, rt, who)
    if press.digest:
        return _version(press, svc, rt, who)
    if press.action == "rollback":
        return _rollback(press, svc, rt, who)
    if press.hook:
        return _hook(press, svc, rt, who)
    return _release(press, svc, rt, who)


def _hook(press: ChatAnswer, svc: ServiceConfig, rt: Runtime, who: str) -> ChatReply:
    from ecspilot.tracking.hooks import approve_paused  # noqa: PLC0415 - the tracker's edge

    action: Answer = "CONTINUE" if press.action == "approve" else "ROLLBACK"
    origin = f"chat ({who})"
    done = approve_paused(
        rt.config, rt.clients, rt.history, svc.name, action, hook_id=press.hook, origin=origin
    )
    if done is None:
        return ChatReply("refused", f"{svc.name}: hook {press.hook} no longer waits for an answer")
    verb = "continued" if action == "CONTINUE" else "rolled back"
    stage = done.get("lifecycle_stage") or "its pause hook"
    arn = str(done.get("service_deployment_arn") or "")
    thread = {"service": svc.name, "deployment": arn.rsplit("/", 1)[-1]}
    return ChatReply(
        "answered",
        f"{verb} {svc.name}: the deployment paused at {stage} ({press.action} from {origin})",
        thread,
    )


def _release(press: ChatAnswer, svc: ServiceConfig, rt: Runtime, who: str) -> ChatReply:
    from ecspilot.promotion.handler import promoter  # noqa: PLC0415 - promotion needs its sessions
    from ecspilot.promotion.manual import approve_promotion  # noqa: PLC0415

    if svc.promote is None:
        return ChatReply("refused", f"{svc.name} is not a promoted service: no release waits for it")
    pr = promoter(rt, "chat", "approval")
    try:
        waiting = approve_promotion(pr, svc.name, f"chat:{who}", dry_run=True)
    except PromotionInputError as exc:
        return ChatReply("refused", f"{exc}")
    ids = [p.release.deployment_id for p in waiting if p.release is not None]
    if press.release not in ids:
        return ChatReply(
            "refused",
            f"{svc.name}: release {press.release} no longer waits (waiting: {', '.join(ids) or 'none'})",
        )
    thread = {"service": svc.name, "deployment": press.release}
    if press.action == "reject":
        line = f"rejected {svc.name}: release {press.release} stays unpromoted (reject from chat ({who}))"
        return ChatReply("answered", line, thread)
    done = approve_promotion(pr, svc.name, f"chat:{who}")
    failed = [p.error for p in done if p.error]
    if failed:
        return ChatReply("failed", f"{svc.name}: approved, the promotion failed: {failed[0]}"[:300])
    digest = next((short_digest(p.release.digest) for p in done if p.release), "")
    result = "; ".join(p.verdict.text for p in done) or "evaluated"
    line = f"approved {svc.name}: release {press.release} ({digest}): {result} (approve from chat ({who}))"
    return ChatReply("answered", line, thread)


def _rollback(press: ChatAnswer, svc: ServiceConfig, rt: Runtime, who: str) -> ChatReply:
    from ecspilot.deploy.rollback import rollback  # noqa: PLC0415
    from ecspilot.interfaces.cli_rollback import configured_service  # noqa: PLC0415

    try:
        configured_service(rt.config, svc.name)  # the CLI's refusals (another account)
    except EcspilotError as exc:
        return ChatReply("refused", str(exc))
    newest = rt.history.deployments(svc.cluster, svc.service_name, limit=1)
    current = newest[0] if newest else {}
    named = press.release
    # a failed deployment names its deployment id, a crash loop the image(s) it loops on
    still = (
        str(current.get("image_digest") or "") in named.split(",")
        if named.startswith("sha256:")
        else current.get("deployment_id") == named
    )
    if not still:
        what = "image" if named.startswith("sha256:") else "deployment"
        return ChatReply(
            "refused",
            f"{svc.name}: {what} {named[:80]} is no longer the newest deployed: roll back from the CLI",
        )
    result = rollback(svc, rt.clients, rt.history, reason=f"rollback from chat ({who})")
    thread = {"service": f"{svc.cluster}/{svc.service_name}", "deployment": named}
    return ChatReply("answered", f"{result.summary()} (rollback from chat ({who}))", thread)


def _unfreeze(press: ChatAnswer, rt: Runtime, who: str) -> ChatReply:
    from ecspilot.aws.freezes import INCIDENT_FREEZE, FreezeStore  # noqa: PLC0415

    name = press.freeze
    if name == INCIDENT_FREEZE and rt.config.incidents is not None:
        alarms = ", ".join(rt.config.incidents.alarms)
        return ChatReply("refused", f"the incident freeze lifts by itself when every alarm ({alarms}) is OK")
    if any(f.name == name for f in rt.config.freezes):
        return ChatReply(
            "refused", f"{name} is a freeze of the config: it ends when the config says (or edit it)"
        )
    origin = f"chat ({who})"
    lifted = FreezeStore(rt.history).lift_one(name, rt.clock(), origin)
    if lifted is None:
        return ChatReply("refused", f"freeze {name} is no longer active: nothing to lift")
    services = ", ".join(lifted.services)
    line = (
        f"lifted {name} ({services}): {lifted.text()} (unfreeze from {origin}); "
        "what it deferred deploys at the next reconcile"
    )
    return ChatReply("answered", line, {"service": press.service, "freeze": name})


def _version(press: ChatAnswer, svc: ServiceConfig, rt: Runtime, who: str) -> ChatReply:
    from ecspilot.interfaces.cli_release import answer_version  # noqa: PLC0415

    origin = f"chat ({who})"
    done = answer_version(rt, svc.name, press.digest, press.action == "approve", origin)
    thread = {"service": svc.name, "digest": press.digest}
    row = done.row or {}
    if done.code != 0 and row.get("outcome") is None:
        if done.error.startswith("approved, but"):  # APPROVED stays: a later press deploys again
            return ChatReply("failed", f"{svc.name}: {done.error}"[:300])
        return ChatReply("refused", f"{svc.name}: {done.error}"[:300])
    tag = f"{row.get('tag') or '?'} ({short_digest(press.digest)})"
    reason = f": {row['reason']}" if row.get("reason") else ""
    if done.code != 0:
        return ChatReply("failed", f"{svc.name}: approved {tag}, {row['outcome']}{reason}"[:300])
    verb = "approved" if press.action == "approve" else "rejected"
    line = f"{verb} {svc.name} {tag}: {row['outcome']}{reason} ({press.action} from {origin})"
    return ChatReply("answered", line[:300], thread)


def _notify(rt: Runtime, press: ChatAnswer, svc: ServiceConfig | None, reply: ChatReply) -> None:
    """Tell the channel (and email) what was answered, in the notification's thread."""
    thread = dict(reply.thread or {})
    kinds = {"rollback": "rollback", "unfreeze": "unfreeze"}  # not "freeze": no Unfreeze on it
    kind = kinds.get(press.action) or ("hook" if press.hook else "version" if press.digest else "promotion")
    name = svc.name if svc is not None else press.freeze
    Notifier(rt.clients, rt.settings.notify_topic_arn).notify(
        f"ecspilot: {name} {press.action} answered from chat"[:99],
        reply.answer,
        {"kind": kind, "status": "ANSWERED", "service": thread.pop("service", name)},
        chat={"hook": press.hook, "release": press.release, **thread},
    )
