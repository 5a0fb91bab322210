"""The alarm gate's decision, table-tested (no AWS)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ecspilot.aws.alarms import AlarmHistory, AlarmState, decide

SINCE = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
BEFORE = SINCE - timedelta(hours=1)
DURING = SINCE + timedelta(minutes=5)


def _state(state: str, at: datetime | None) -> AlarmState:
    return AlarmState(name="a", state=state, transitioned_at=at)


@pytest.mark.parametrize(
    ("state", "history", "quiet", "reason"),
    [
        (_state("OK", BEFORE), None, True, None),
        (_state("INSUFFICIENT_DATA", BEFORE), None, True, None),
        (_state("ALARM", BEFORE), None, False, "alarm a in ALARM"),
        (_state("ALARM", DURING), None, False, "alarm a in ALARM"),
        # transitioned in the window: the history decides
        (
            _state("OK", DURING),
            AlarmHistory(entered_alarm_at=(DURING - timedelta(minutes=1),)),
            False,
            "alarm a went into ALARM at 2026-11-29T12:04:00Z",
        ),
        (_state("OK", DURING), AlarmHistory(entered_alarm_at=()), True, None),
        # in ALARM when the window began, OK since: it was not quiet over the window
        (
            _state("OK", DURING),
            AlarmHistory(alarm_at_start=True),
            False,
            "alarm a was in ALARM at 2026-11-29T12:00:00Z",
        ),
        # an entry before the window (outside StartDate) does not count by itself
        (_state("OK", DURING), AlarmHistory(entered_alarm_at=(BEFORE,)), True, None),
        (
            _state("OK", DURING),
            AlarmHistory(unreadable="its history could not be read (x)"),
            False,
            "alarm a changed state at 2026-11-29T12:05:00Z (now OK) and its history could not be read (x)",
        ),
        (
            _state("OK", None),
            AlarmHistory(unreadable="its history could not be read (x)"),
            False,
            "alarm a changed state at an unknown time (now OK) and its history could not be read (x)",
        ),
        (
            _state("OK", DURING),
            None,
            False,
            "alarm a changed state at 2026-11-29T12:05:00Z (now OK) and its history was not read",
        ),
    ],
)
def test_decide_one_alarm(
    state: AlarmState, history: AlarmHistory | None, quiet: bool, reason: str | None
) -> None:
    gate = decide(["a"], {"a": state}, SINCE, {"a": history} if history else None)
    assert gate.quiet is quiet
    assert gate.reasons == ([reason] if reason else [])
    assert gate.firing == (["a"] if state.state == "ALARM" else [])


def test_a_missing_alarm_blocks_and_every_reason_is_kept() -> None:
    gate = decide(["a", "gone", "a"], {"a": _state("ALARM", BEFORE)}, SINCE)
    assert not gate.quiet
    assert gate.reasons == ["alarm a in ALARM", "alarm gone does not exist"]
    assert gate.firing == ["a"]


def test_no_alarms_is_quiet() -> None:
    assert decide([], {}, SINCE).quiet
