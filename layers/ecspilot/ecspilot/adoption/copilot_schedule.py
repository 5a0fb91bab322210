"""Copilot's ``on.schedule`` -> an EventBridge Scheduler expression (pure).

Copilot takes ``@hourly @daily @weekly @monthly @yearly @annually``, ``@every <duration>``
(Go durations: ``1h30m``), a 5-field cron (minute hour day-of-month month day-of-week, Sunday 0 or 7,
day-of-month and day-of-week OR-ed), and AWS's own ``rate(...)`` / ``cron(...)``, kept as they are.
Scheduler wants ``cron(m h dom mon dow year)`` with ``?`` in exactly one of dom and dow, Sunday 1.
"""

from __future__ import annotations

import re

from ecspilot.domain.schedule_expr import ScheduleExpressionError, validate_expression
from ecspilot.errors import CopilotImportError

_PREDEFINED = {
    "@hourly": "cron(0 * * * ? *)",
    "@daily": "cron(0 0 * * ? *)",
    "@midnight": "cron(0 0 * * ? *)",
    "@weekly": "cron(0 0 ? * 1 *)",
    "@monthly": "cron(0 0 1 * ? *)",
    "@yearly": "cron(0 0 1 1 ? *)",
    "@annually": "cron(0 0 1 1 ? *)",
}
_DURATION_PART = re.compile(r"([0-9]+)(h|m|s)")
_DOW_NUMBER = re.compile(r"[0-7]")


def _every(duration: str) -> str:
    """``@every 1h30m`` -> ``rate(90 minutes)``; whole minutes only, as Scheduler's rate."""
    text = duration.strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise CopilotImportError(f"@every {duration!r} is not a duration such as 30m, 1h or 1h30m")
    seconds = sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if seconds < 60 or seconds % 60:
        raise CopilotImportError(f"@every {duration!r}: Scheduler's rate counts whole minutes (at least 1)")
    minutes = seconds // 60
    if minutes % 1440 == 0:
        value, unit = minutes // 1440, "day"
    elif minutes % 60 == 0:
        value, unit = minutes // 60, "hour"
    else:
        value, unit = minutes, "minute"
    return f"rate({value} {unit}{'s' if value > 1 else ''})"


def _shift_dow(field: str) -> str:
    """Unix day-of-week numbers (0-7, Sunday 0 and 7) -> Scheduler's (1-7, Sunday 1); names kept."""

    def one(token: str) -> str:
        if _DOW_NUMBER.fullmatch(token):
            return str(int(token) % 7 + 1)
        if token.isdigit():
            raise CopilotImportError(f"cron day-of-week value {token} is outside 0-7")
        return token.upper()

    out = []
    for part in field.split(","):
        base, slash, step = part.partition("/")
        if base == "*":
            out.append(part)
            continue
        first, dash, last = base.partition("-")
        if dash and last == "7" and first != "0":
            # 5-7 (Fri..Sun) would become 6-1: a wrapped range; Scheduler wants it spelled out.
            shifted = f"{one(first)}-7,1"
            if slash:
                raise CopilotImportError(f"cron day-of-week {part!r}: a step over a range ending on Sunday")
            out.append(shifted)
            continue
        out.append(one(first) + (f"-{one(last)}" if dash else "") + (f"/{step}" if slash else ""))
    return ",".join(out)


def _cron5(expression: str) -> str:
    fields = expression.split()
    minute, hour, dom, month, dow = fields
    if dom != "*" and dow != "*":
        # Unix cron runs when EITHER matches; Scheduler cannot say "or" across the two fields.
        raise CopilotImportError(
            f"cron {expression!r} restricts both day-of-month and day-of-week (Unix cron ORs them): "
            "Scheduler cannot express it, split it into two jobs"
        )
    if dow == "*":
        dow = "?"
    else:
        dom, dow = "?", _shift_dow(dow)
    return f"cron({minute} {hour} {dom} {month.upper()} {dow} *)"


def translate_schedule(schedule: str) -> str:
    """Copilot's ``on.schedule`` as an EventBridge Scheduler expression.

    Raises :class:`CopilotImportError` when the schedule has no Scheduler equivalent.
    """
    text = schedule.strip()
    lowered = text.lower()
    if lowered in _PREDEFINED:
        out = _PREDEFINED[lowered]
    elif lowered.startswith("@every "):
        out = _every(text[len("@every ") :])
    elif lowered.startswith(("rate(", "cron(")):
        out = text
    elif len(text.split()) == 5:
        out = _cron5(text)
    else:
        raise CopilotImportError(f"schedule {schedule!r} is not a Copilot schedule")
    try:
        validate_expression(out)
    except ScheduleExpressionError as exc:
        raise CopilotImportError(f"schedule {schedule!r} -> {out!r}: {exc}") from exc
    return out
