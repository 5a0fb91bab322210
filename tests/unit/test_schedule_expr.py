"""EventBridge Scheduler expressions and time zones."""

from __future__ import annotations

import pytest

from ecspilot.domain.schedule_expr import ScheduleExpressionError, validate_expression, validate_timezone


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 3 * * ? *)",
        "cron(15 10 ? * 6L 2026-2030)",
        "cron(0/15 * * * ? *)",
        "cron(0 8 1 * ? *)",
        "cron(0 18 ? * MON-FRI *)",
        "cron(0 9 ? * 2#1 *)",
        "cron(0 0 L * ? *)",
        "cron(0 0 15W * ? *)",
        "cron(5,35 14 * JAN-MAR ? *)",
        "rate(1 minute)",
        "rate(15 minutes)",
        "rate(2 hours)",
        "rate(1 day)",
        "at(2026-12-01T03:00:00)",
    ],
)
def test_valid_expressions(expression: str) -> None:
    validate_expression(expression)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("cron(0 3 * * *)", "6 fields"),
        ("cron(0 3 * * * *)", "exactly one"),
        ("cron(0 3 ? * ? *)", "exactly one"),
        ("cron(60 3 * * ? *)", "outside 0-59"),
        ("cron(0 24 * * ? *)", "outside 0-23"),
        ("cron(0 3 32 * ? *)", "outside 1-31"),
        ("cron(0 3 ? FOO * *)", "not valid"),
        ("cron(0/0 3 * * ? *)", "positive"),
        ("rate(1 minutes)", "singular"),
        ("rate(5 minute)", "singular"),
        ("rate(0 minutes)", "at least 1"),
        ("rate(5 weeks)", "is not a schedule"),
        ("at(2026-13-01T03:00:00)", "not a valid date"),
        ("daily", "is not a schedule"),
    ],
)
def test_invalid_expressions(expression: str, reason: str) -> None:
    with pytest.raises(ScheduleExpressionError, match=reason):
        validate_expression(expression)


@pytest.mark.parametrize(("zone", "valid"), [("Europe/Rome", True), ("UTC", True), ("Mars/Olympus", False)])
def test_time_zones(zone: str, valid: bool) -> None:
    if valid:
        validate_timezone(zone)
    else:
        with pytest.raises(ScheduleExpressionError):
            validate_timezone(zone)
