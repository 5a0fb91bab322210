"""Chat (pure): the Amazon Q Developer in chat applications custom notification of an ecspilot
notification, and the answer a chat button sends back.

**Out.** Every notification is published with ``MessageStructure: json``: ``default`` is the
plain text email and SMS always got, ``https`` is :func:`custom_notification` (the schema is
``docs/schemas/chat-notification.schema.json``, written from AWS's documented event schema).
Its ``metadata.additionalContext`` carries what a button needs (``service``, ``kind``,
``status``, ``digest``, ``hook``, ``release``, ``freeze``) and ``metadata.threadId`` groups one
service's deployment (or hook, release, loop) in one thread.

**In.** A button runs ``lambda invoke`` of the answer path with a JSON payload built from those
variables; :func:`parse_answer` validates it strictly (:class:`~ecspilot.errors.ChatAnswerError`
naming what is wrong, never a ``KeyError``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ecspilot.domain.images import DIGEST_RE
from ecspilot.errors import ChatAnswerError
from ecspilot.records import dataclass

# The fields of metadata.additionalContext, in order; a button's variables read them.
CONTEXT_KEYS = ("kind", "status", "service", "digest", "hook", "release", "freeze", "deployment")
ACTIONS = ("approve", "reject", "rollback", "unfreeze")
ChatAction = Literal["approve", "reject", "rollback", "unfreeze"]

# What each action answers: the payload field naming it (besides the service).
SUBJECT_FIELD: dict[str, tuple[str, ...]] = {
    "approve": ("hook", "release", "digest"),  # a digest: a version awaiting approval (issue 27)
    "reject": ("hook", "release", "digest"),
    "rollback": ("release",),  # a deployment id, or (a crash loop) the image digest(s) it runs
    "unfreeze": ("freeze",),
}
SUBJECTS = ("hook", "release", "freeze", "digest")
# A configured name, CLUSTER/SERVICE, an id, an ARN, a digest, the globs a freeze covers
# (``web*``, ``*``): printable, no spaces, bounded.
_VALUE = re.compile(r"[A-Za-z0-9*?][A-Za-z0-9_.:/@+=,#*?-]{0,1023}")
_COMMAND = re.compile(r"(ecspilot (?:approve|reject|rollback|status|promote|history) [^\s]+)")
_ARN = re.compile(r"(?<![`\w])(arn:aws[\w-]*:[^\s`]+)")


def thread_id(context: Mapping[str, str]) -> str:
    """One thread per service and what it is about (a deployment, a hook's deployment, a
    release, a loop); an image refused threads by its digest."""
    what = (
        context.get("deployment")
        or context.get("release")
        or context.get("hook")
        or context.get("freeze")
        or ""
    )
    who = context.get("service") or context.get("job") or context.get("digest") or ""
    return "/".join(p for p in ("ecspilot", who, what) if p)[:200]


def chat_markdown(body: str) -> str:
    """The plain text as chat markdown: commands and ARNs as code, nothing else changed
    (bullets ``- `` are markdown already)."""
    text = _COMMAND.sub(r"`\1`", body)
    return _ARN.sub(r"`\1`", text)


def custom_notification(
    subject: str,
    body: str,
    context: Mapping[str, str],
    next_steps: Sequence[str] = (),
) -> dict[str, Any]:
    """The custom notification of one ecspilot notification (see the module docstring)."""
    extra = {k: str(v) for k, v in context.items() if v and k not in CONTEXT_KEYS}
    ctx = {k: str(context[k]) for k in CONTEXT_KEYS if context.get(k)} | extra
    keywords = [ctx[k] for k in ("kind", "status", "service") if ctx.get(k)]
    content: dict[str, Any] = {
        "textType": "client-markdown",
        "title": subject,
        "description": chat_markdown(body) or subject,
    }
    if next_steps:
        content["nextSteps"] = list(next_steps)
    if keywords:
        content["keywords"] = keywords
    return {
        "version": "1.0",
        "source": "custom",
        "content": content,
        "metadata": {
            "threadId": thread_id(ctx),
            "summary": subject,
            "eventType": ctx.get("kind", "ecspilot"),
            "additionalContext": ctx,
            "enableCustomActions": True,
        },
    }


def sns_message(subject: str, body: str, context: Mapping[str, str], next_steps: Sequence[str] = ()) -> str:
    """The ``Message`` of a ``MessageStructure: json`` publish: ``default`` the plain text
    (email, SMS), ``https`` the custom notification (Amazon Q Developer's subscription)."""
    card = custom_notification(subject, body, context, next_steps)
    return json.dumps({"default": body, "https": json.dumps(card)})


@dataclass(frozen=True)
class ChatAnswer:
    """A validated button press: what to do, to which service, answering what."""

    action: ChatAction
    service: str
    hook: str = ""
    release: str = ""
    freeze: str = ""
    digest: str = ""  # a version awaiting approval (``ecspilot approve SERVICE --digest``)

    @property
    def subject(self) -> str:
        """What it answers (the claim's key): the hook, release, digest or freeze id."""
        return self.hook or self.release or self.digest or self.freeze


def _text(payload: Mapping[str, Any], name: str, required: bool) -> str:
    value = payload.get(name)
    if value is None or value == "":
        if required:
            raise ChatAnswerError(f"{name} is missing")
        return ""
    if not isinstance(value, str):
        raise ChatAnswerError(f"{name} must be a string, not {type(value).__name__}")
    if not _VALUE.fullmatch(value):
        raise ChatAnswerError(f"{name} is not a valid value: {value[:60]!r}")
    return value


def parse_answer(payload: Any) -> ChatAnswer:
    """Validate a button's payload: ``{"action", "service", and the hook, release, digest or freeze it
    answers}``; an unknown field, a wrong type or a missing id raises :class:`ChatAnswerError`."""
    if isinstance(payload, str | bytes):
        try:
            payload = json.loads(payload)
        except ValueError as exc:
            raise ChatAnswerError("the payload is not JSON") from exc
    if not isinstance(payload, Mapping):
        raise ChatAnswerError(f"the payload must be a JSON object, not {type(payload).__name__}")
    unknown = sorted(str(k) for k in payload if k not in ("action", "service", *SUBJECTS))
    if unknown:
        raise ChatAnswerError(f"unknown field(s): {', '.join(unknown)[:120]}")
    action = payload.get("action")
    if action not in ACTIONS:
        raise ChatAnswerError(f"action must be one of {', '.join(ACTIONS)}, not {str(action)[:30]!r}")
    service = _text(payload, "service", required=True)
    ids = {name: _text(payload, name, required=False) for name in SUBJECTS}
    allowed = SUBJECT_FIELD[str(action)]
    given = [n for n, v in ids.items() if v]
    if not given:
        raise ChatAnswerError(f"{action} needs the {' or '.join(allowed)} it answers")
    if len(given) > 1 or given[0] not in allowed:
        raise ChatAnswerError(f"{action} answers a {' or '.join(allowed)}, not {', '.join(given)}")
    if ids["digest"] and not DIGEST_RE.fullmatch(ids["digest"]):
        raise ChatAnswerError(f"digest is not an image digest (sha256:<64 hex>): {ids['digest'][:80]!r}")
    return ChatAnswer(action=action, service=service, **ids)
