"""May automation change this service now? Windows, freezes and incidents (issue 25). Pure.

One question for every flow that changes a service or daemon (a push, its continuation,
catch-up, promotion, daemon updates): :meth:`Stops.check` answers None (go) or a :class:`Stop`
(defer) with the reason people read and ``until``, the first moment every stop is gone (None
when a person or an alarm decides). Config freezes, CLI freezes (the state table) and the
incident freeze are one :class:`Freeze` each.

Arithmetic, all in UTC once a wall time has been placed in its zone (aware datetimes of one
zone compare by wall time in Python, which is wrong across a DST change):

- a window opens on each of its ``days`` at ``start`` local time and closes at ``end`` the same
  day, or the next day when ``end`` is before ``start`` (crossing midnight); ``end == start``
  is the whole day;
- a local time that a DST change skips (02:30 on the spring-forward night) means the instant
  after the gap, as zoneinfo places it (fold 0); a repeated one (autumn) its first occurrence;
- a freeze stops from ``start`` (included) to ``end`` (excluded).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from ecspilot.domain.config import EcspilotConfig
from ecspilot.domain.config.stops import DAYS, FreezeConfig, WindowConfig
from ecspilot.records import dataclass

FreezeKind = Literal["config", "cli", "incident"]
MAX_STEPS = 64  # a bounded walk: freezes and windows alternate at most this often


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC)


def _occurrence(window: WindowConfig, day: date) -> tuple[datetime, datetime]:
    """The window's opening that starts on local ``day``, as UTC instants ``[start, end)``."""
    zone = window.zone
    start = datetime.combine(day, window.start_time, tzinfo=zone)
    end_day = day if window.end_time > window.start_time else day + timedelta(days=1)
    end = datetime.combine(end_day, window.end_time, tzinfo=zone)
    return _utc(start), _utc(end)


def _days_of(window: WindowConfig) -> set[int]:
    return {DAYS.index(d) for d in window.days}


def window_open(window: WindowConfig, at: datetime) -> bool:
    """True when ``at`` is inside one of the window's openings."""
    return window_close(window, at) is not None


def window_close(window: WindowConfig, at: datetime) -> datetime | None:
    """When the opening ``at`` is in closes (UTC), or None when the window is closed at ``at``."""
    at = _utc(at)
    local = at.astimezone(window.zone).date()
    days = _days_of(window)
    for day in (local - timedelta(days=1), local):  # yesterday's opening may run past midnight
        if day.weekday() not in days:
            continue
        start, end = _occurrence(window, day)
        if start <= at < end:
            return end
    return None


def next_opening(window: WindowConfig, at: datetime) -> datetime:
    """The first instant at or after ``at`` when the window is open (UTC)."""
    at = _utc(at)
    if window_open(window, at):
        return at
    local = at.astimezone(window.zone).date()
    days = _days_of(window)
    for offset in range(0, 9):
        day = local + timedelta(days=offset)
        if day.weekday() in days:
            start, _ = _occurrence(window, day)
            if start > at:
                return start
    raise AssertionError("a window with days opens within a week")  # pragma: no cover


def opening_text(name: str, window: WindowConfig, at: datetime) -> str:
    """``outside office-hours, opens Mon 09:00 Europe/Rome``."""
    opens = next_opening(window, at).astimezone(window.zone)
    return f"outside {name}, opens {opens.strftime('%a %H:%M')} {window.timezone}"


def stamp(at: datetime) -> str:
    """An instant as people read it in reasons: ``2026-11-30T23:59:59Z``."""
    return _utc(at).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Freeze:
    """No automated change to ``services`` (names or globs) from ``start`` to ``end``; an open
    ``end`` (None) lasts until lifted (a CLI freeze without ``--until``, an incident)."""

    name: str
    kind: FreezeKind
    services: tuple[str, ...] = ("*",)
    start: datetime | None = None
    end: datetime | None = None
    reason: str = ""
    by: str = ""  # who: the caller's ARN (CLI freezes)
    at: str = ""  # when it was made (CLI freezes)

    def covers(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.services)

    def active(self, at: datetime) -> bool:
        at = _utc(at)
        return (self.start is None or _utc(self.start) <= at) and (self.end is None or at < _utc(self.end))

    def scheduled(self, at: datetime) -> bool:
        """Not active yet, but will be."""
        return self.start is not None and _utc(self.start) > _utc(at)

    def text(self) -> str:
        """The reason people read: ``frozen: black-friday until ...``, ``frozen by ARN : why``,
        ``incident: prod-5xx in ALARM``."""
        if self.kind == "incident":
            return self.reason
        if self.kind == "cli":
            return f"frozen by {self.by or 'unknown'} : {self.reason}"
        until = f" until {stamp(self.end)}" if self.end is not None else ""
        return f"frozen: {self.name}{until}"


def config_freezes(freezes: Iterable[FreezeConfig]) -> list[Freeze]:
    return [Freeze(f.name, "config", tuple(f.services), f.start, f.end, f.reason) for f in freezes]


@dataclass(frozen=True)
class Stop:
    """Why automation must not change a service now, and when it may again (None: unknown)."""

    reason: str
    until: datetime | None
    freeze: Freeze | None = None  # the freeze that stops it (None: a closed window)


@dataclass
class Stops:
    """The one answer every flow asks: windows by name, every kind of freeze, and now."""

    now: datetime
    windows: dict[str, WindowConfig] = field(default_factory=dict)
    freezes: Sequence[Freeze] = ()
    window_of: dict[str, str] = field(default_factory=dict)  # service or daemon name -> window

    def check(self, name: str, at: datetime | None = None) -> Stop | None:
        """None when ``name`` (a config service or daemon name) may be changed at ``at``
        (default now); else the first reason and the first instant every stop is gone."""
        at = _utc(at or self.now)
        reason = self._reason(name, at)
        if reason is None:
            return None
        freeze = next((f for f in self.freezes if f.covers(name) and f.active(at)), None)
        return Stop(reason, self.reopens(name, at), freeze)

    def _reason(self, name: str, at: datetime) -> str | None:
        for freeze in self.freezes:
            if freeze.covers(name) and freeze.active(at):
                return freeze.text()
        window_name = self.window_of.get(name)
        window = self.windows.get(window_name) if window_name else None
        if window is not None and window_name is not None and not window_open(window, at):
            return opening_text(window_name, window, at)
        return None

    def reopens(self, name: str, at: datetime) -> datetime | None:
        """The first instant at or after ``at`` with no active freeze on ``name`` and its
        window open; None when an open-ended freeze holds it."""
        at = _utc(at)
        window_name = self.window_of.get(name)
        window = self.windows.get(window_name) if window_name else None
        for _ in range(MAX_STEPS):
            holding = [f for f in self.freezes if f.covers(name) and f.active(at)]
            if holding:
                ends = [f.end for f in holding]
                if any(e is None for e in ends):
                    return None
                at = max(_utc(e) for e in ends if e is not None)
                continue
            if window is not None and not window_open(window, at):
                at = next_opening(window, at)
                continue
            return at
        return None

    def active(self) -> list[Freeze]:
        return [f for f in self.freezes if f.active(self.now)]

    def scheduled(self) -> list[Freeze]:
        return [f for f in self.freezes if f.scheduled(self.now)]


def deferred_detail(reason: str, until: str) -> str:
    """A deferred action's detail in a plan: why, and when it happens."""
    return f"{reason}; deploys {'at ' + until if until else 'when lifted'}"


def stops_for(config: EcspilotConfig, stored: Iterable[Freeze], now: datetime) -> Stops:
    """The config's windows and freezes with the stored ones (CLI, incident) at ``now``."""
    window_of = {s.name: s.window for s in config.services if s.window}
    window_of.update({d.name: d.window for d in config.daemons if d.window})
    return Stops(_utc(now), dict(config.windows), [*config_freezes(config.freezes), *stored], window_of)


__all__ = [
    "Freeze",
    "Stop",
    "Stops",
    "config_freezes",
    "deferred_detail",
    "next_opening",
    "opening_text",
    "stamp",
    "stops_for",
    "window_close",
    "window_open",
]
