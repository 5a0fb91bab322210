"""EventBridge Scheduler expressions: ``cron(...)``, ``rate(...)``, ``at(...)``, and time zones.

Pure validation, so ``ecspilot validate`` catches a five-field cron or an
unknown time zone before AWS does (neither SAM nor cfn-lint checks them).
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_RATE_RE = re.compile(r"^rate\(([0-9]+) (minute|minutes|hour|hours|day|days)\)$")
_AT_RE = re.compile(r"^at\(([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})\)$")
_CRON_RE = re.compile(r"^cron\((.*)\)$")
_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"
# (name, low, high, extra tokens allowed in the field)
_FIELDS = (
    ("minutes", 0, 59, ""),
    ("hours", 0, 23, ""),
    ("day-of-month", 1, 31, "LW"),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 1, 7, _DAYS + "|L|#"),
    ("year", 1970, 2199, ""),
)


class ScheduleExpressionError(ValueError):
    """A schedule expression or time zone is invalid; the message says why."""


def _check_value(token: str, name: str, low: int, high: int, words: str) -> None:
    if token.isdigit():
        if not low <= int(token) <= high:
            raise ScheduleExpressionError(f"cron {name} value {token} is outside {low}-{high}")
        return
    if words and re.fullmatch(words.replace("|#", "").replace("|L", ""), token, flags=re.IGNORECASE):
        return
    raise ScheduleExpressionError(f"cron {name} value {token!r} is not valid")


def _check_field(text: str, name: str, low: int, high: int, words: str) -> None:
    if text in ("*", "?"):
        return
    for part in text.split(","):
        base, slash, step = part.partition("/")
        if slash and not (step.isdigit() and int(step) > 0):
            raise ScheduleExpressionError(f"cron {name} step {step!r} is not a positive number")
        if base == "*":
            continue
        if name == "day-of-month" and re.fullmatch(r"L|LW|\d{1,2}W", base):
            continue
        if name == "day-of-week" and re.fullmatch(r"(\d|[A-Za-z]{3})#[1-5]|\d?L|[A-Za-z]{3}L", base):
            continue
        first, dash, last = base.partition("-")
        _check_value(first, name, low, high, words)
        if dash:
            _check_value(last, name, low, high, words)


def validate_cron(body: str) -> None:
    """Validate the six fields inside ``cron(...)``."""
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleExpressionError(
            f"cron needs 6 fields (minutes hours day-of-month month day-of-week year), got {len(fields)}"
        )
    for text, (name, low, high, words) in zip(fields, _FIELDS, strict=True):
        _check_field(text, name, low, high, words)
    dom, dow = fields[2], fields[4]
    if (dom == "?") == (dow == "?"):
        raise ScheduleExpressionError("cron needs '?' in exactly one of day-of-month and day-of-week")


def validate_expression(expression: str) -> None:
    """Raise :class:`ScheduleExpressionError` unless ``expression`` is a valid Scheduler expression."""
    rate = _RATE_RE.fullmatch(expression)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        if value < 1:
            raise ScheduleExpressionError("rate value must be at least 1")
        if (value == 1) == unit.endswith("s"):
            raise ScheduleExpressionError(f"rate({value} {unit}): use the singular unit for 1, plural above")
        return
    at = _AT_RE.fullmatch(expression)
    if at:
        try:
            datetime.fromisoformat(at.group(1))
        except ValueError as exc:
            raise ScheduleExpressionError(f"at(...) is not a valid date and time: {exc}") from exc
        return
    cron = _CRON_RE.fullmatch(expression)
    if cron:
        validate_cron(cron.group(1))
        return
    raise ScheduleExpressionError(
        f"{expression!r} is not a schedule: use cron(m h dom mon dow year), rate(N unit) "
        "or at(YYYY-MM-DDThh:mm:ss)"
    )


def validate_timezone(name: str) -> None:
    """Raise :class:`ScheduleExpressionError` unless ``name`` is an IANA time zone."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleExpressionError(f"unknown time zone {name!r}") from exc
