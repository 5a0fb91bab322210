"""The alarm gate: were these CloudWatch alarms quiet over a window?

Promotion (a release baked in the source stage) and the pause-hook gates (alarms quiet for N
minutes) ask the same question: is any of these alarms in ALARM now, or did one go into ALARM
since ``since``? A gate that cannot rule it out says so and blocks: a promotion waits, it is never
let through on a guess.

What AWS tells us, per alarm:

* ``DescribeAlarms``: the state now and when it last *transitioned*
  (``StateTransitionedTimestamp``; older answers only carry ``StateUpdatedTimestamp``, which also
  moves when only the reason changes, so it can only make the gate stricter). An alarm whose last
  transition is before ``since`` was in its present state for the whole window.
* ``DescribeAlarmHistory`` (``StateUpdate`` items in the window): asked only for an alarm that
  transitioned inside the window and is not in ALARM now, to tell "went OK <- INSUFFICIENT_DATA"
  (quiet) from "went into ALARM and back" (not quiet). When the history cannot be read (moto does
  not implement it; AccessDenied), the gate blocks with the reason.

An alarm that does not exist blocks too (a misspelt name must not pass as quiet). The decision is
:func:`decide`, pure; :func:`alarm_gate` reads AWS and calls it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.errors import AwsError, error_code
from ecspilot.obs import logger
from ecspilot.records import dataclass

#: DescribeAlarms takes at most 100 names per call
_NAMES_PER_CALL = 100


class AlarmReadError(AwsError):
    """The alarms' states could not be read: the gate cannot decide (the caller blocks)."""


@dataclass(frozen=True)
class AlarmState:
    """One alarm as DescribeAlarms reports it."""

    name: str
    state: str  # OK | ALARM | INSUFFICIENT_DATA
    transitioned_at: datetime | None


@dataclass(frozen=True)
class AlarmHistory:
    """The ALARM transitions of one alarm within the window, or why they could not be read."""

    entered_alarm_at: tuple[datetime, ...] = ()
    #: the state the window's first transition left: ALARM means it was in ALARM when it began
    alarm_at_start: bool = False
    unreadable: str | None = None


@dataclass(frozen=True)
class AlarmGate:
    """The verdict: ``quiet`` when every alarm was out of ALARM over the whole window."""

    quiet: bool
    reasons: list[str] = field(default_factory=list)
    firing: list[str] = field(default_factory=list)


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def needs_history(state: AlarmState, since: datetime) -> bool:
    """True when the alarm transitioned within the window and is not in ALARM now: only its
    history can tell whether it was in ALARM meanwhile."""
    return state.state != "ALARM" and (state.transitioned_at is None or state.transitioned_at >= since)


def decide(
    names: Sequence[str],
    found: Mapping[str, AlarmState],
    since: datetime,
    history: Mapping[str, AlarmHistory] | None = None,
) -> AlarmGate:
    """The gate for ``names``, from their states and (for those that need it) their history."""
    reasons: list[str] = []
    firing: list[str] = []
    history = history or {}
    for name in dict.fromkeys(names):
        state = found.get(name)
        if state is None:
            reasons.append(f"alarm {name} does not exist")
            continue
        if state.state == "ALARM":
            firing.append(name)
            reasons.append(f"alarm {name} in ALARM")
            continue
        if not needs_history(state, since):
            continue
        past = history.get(name, AlarmHistory(unreadable="its history was not read"))
        entered = [t for t in past.entered_alarm_at if t >= since]
        if entered:
            reasons.append(f"alarm {name} went into ALARM at {_stamp(max(entered))}")
        elif past.alarm_at_start:
            reasons.append(f"alarm {name} was in ALARM at {_stamp(since)}")
        elif past.unreadable is not None:
            when = _stamp(state.transitioned_at) if state.transitioned_at else "an unknown time"
            reasons.append(f"alarm {name} changed state at {when} (now {state.state}) and {past.unreadable}")
    return AlarmGate(quiet=not reasons, reasons=reasons, firing=firing)


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _chunks(names: Sequence[str]) -> Iterable[list[str]]:
    unique = list(dict.fromkeys(names))
    for i in range(0, len(unique), _NAMES_PER_CALL):
        yield unique[i : i + _NAMES_PER_CALL]


def read_states(cloudwatch: Any, names: Sequence[str]) -> dict[str, AlarmState]:
    """Metric and composite alarms named ``names``, as they are now (absent names are missing)."""
    found: dict[str, AlarmState] = {}
    try:
        for chunk in _chunks(names):
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {
                    "AlarmNames": chunk,
                    "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
                }
                if token:
                    kwargs["NextToken"] = token
                page = cloudwatch.describe_alarms(**kwargs)
                for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                    moved = alarm.get("StateTransitionedTimestamp") or alarm.get("StateUpdatedTimestamp")
                    found[alarm["AlarmName"]] = AlarmState(
                        name=alarm["AlarmName"],
                        state=alarm.get("StateValue", "INSUFFICIENT_DATA"),
                        transitioned_at=_as_datetime(moved),
                    )
                token = page.get("NextToken")
                if not token:
                    break
    except (ClientError, BotoCoreError) as exc:
        raise AlarmReadError(f"DescribeAlarms failed: {error_code(exc) or exc}") from exc
    return found


def read_history(cloudwatch: Any, name: str, since: datetime, now: datetime) -> AlarmHistory:
    """The times ``name`` went into ALARM between ``since`` and ``now``; a failure to read it is
    returned as ``unreadable`` (the gate then blocks), not raised."""
    entered: list[datetime] = []
    first: tuple[datetime, str | None] | None = None
    try:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "AlarmName": name,
                "HistoryItemType": "StateUpdate",
                "StartDate": since,
                "EndDate": now,
            }
            if token:
                kwargs["NextToken"] = token
            page = cloudwatch.describe_alarm_history(**kwargs)
            for item in page.get("AlarmHistoryItems", []):
                try:
                    data = json.loads(item.get("HistoryData") or "{}")
                except ValueError:
                    data = {}
                new_state = (data.get("newState") or {}).get("stateValue")
                old_state = (data.get("oldState") or {}).get("stateValue")
                when = _as_datetime(item.get("Timestamp"))
                if when is None:
                    continue
                if new_state == "ALARM":
                    entered.append(when)
                if first is None or when < first[0]:
                    first = (when, old_state)
            token = page.get("NextToken")
            if not token:
                break
    except (ClientError, BotoCoreError, NotImplementedError) as exc:
        code = error_code(exc) or type(exc).__name__
        logger.warning("alarm history unreadable", alarm=name, error_code=code)
        return AlarmHistory(unreadable=f"its history could not be read ({code})")
    return AlarmHistory(
        entered_alarm_at=tuple(entered), alarm_at_start=first is not None and first[1] == "ALARM"
    )


def alarm_gate(cloudwatch: Any, names: Sequence[str], since: datetime, now: datetime) -> AlarmGate:
    """Were ``names`` quiet from ``since`` to ``now``? No names: quiet, and no call is made.

    Raises :class:`AlarmReadError` when the states cannot be read at all (the caller blocks and
    reports it); an unreadable history only blocks the alarm that needed it.
    """
    if not names:
        return AlarmGate(quiet=True)
    found = read_states(cloudwatch, names)
    history = {
        name: read_history(cloudwatch, name, since, now)
        for name, state in found.items()
        if needs_history(state, since)
    }
    return decide(names, found, since, history)
