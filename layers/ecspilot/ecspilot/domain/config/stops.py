"""Stopping the robot (issue 25): named ``windows`` when automation may change services,
dated ``freezes``, and the ``incidents`` alarms that freeze while any is in ALARM. Pure models;
the arithmetic is :mod:`ecspilot.domain.stops`, the cross-checks (an unknown ``window``) are in
:func:`stop_problems`, called by the loader with the whole file."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, time
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from pydantic import Field, field_validator, model_validator
else:
    from ecspilot.domain.modeling import Field, field_validator, model_validator

from ecspilot.domain.config.base import Model

Day = Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
DAYS: tuple[Day, ...] = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
CLOCK_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
GLOB_RE = re.compile(r"^[A-Za-z0-9_.\-*?\[\]!]{1,255}$")


def _clock(value: str) -> str:
    if not CLOCK_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a time of day (HH:MM, 00:00 to 23:59)")
    return value


def _globs(value: list[str]) -> list[str]:
    for pattern in value:
        if not GLOB_RE.fullmatch(pattern):
            raise ValueError(f"{pattern!r} is not a service name or glob")
    return value


class WindowConfig(Model):
    """When automation may change a service: from ``start`` to ``end`` (local time in
    ``timezone``) on ``days``; an ``end`` before ``start`` runs past midnight into the next day,
    an ``end`` equal to ``start`` is the whole day."""

    days: list[Day] = Field(default_factory=lambda: list(DAYS), min_length=1)
    start: str
    end: str
    timezone: str = "UTC"

    @field_validator("start", "end")
    @classmethod
    def _clocks(cls, value: str) -> str:
        return _clock(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415 - a cold start reads no zone

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone (such as Europe/Rome)") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        from zoneinfo import ZoneInfo  # noqa: PLC0415 - only a window's check needs its zone

        return ZoneInfo(self.timezone)

    @property
    def start_time(self) -> time:
        return time.fromisoformat(self.start)

    @property
    def end_time(self) -> time:
        return time.fromisoformat(self.end)


class FreezeConfig(Model):
    """A dated blackout: no automated change to ``services`` (config names or globs of services
    and daemons; default every one) from ``start`` to ``end``."""

    name: str = Field(min_length=1, max_length=128)
    start: datetime
    end: datetime
    services: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    reason: str = Field(default="", max_length=1024)

    @field_validator("services")
    @classmethod
    def _services(cls, value: list[str]) -> list[str]:
        return _globs(value)

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give a time zone (such as 2026-11-27T00:00:00Z or +01:00)")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> FreezeConfig:
        if self.end <= self.start:
            raise ValueError(f"freeze {self.name}: end must be after start")
        return self


class IncidentsConfig(Model):
    """Freeze ``services`` (default every one) while any of ``alarms`` is in ALARM."""

    alarms: list[str] = Field(min_length=1, max_length=100)
    services: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    # the freeze lifts once every alarm has stayed OK this long: a flapping alarm makes one
    # freeze (and two notifications), not one per flap; 0 lifts it at the first all-OK
    quiet_minutes: int = Field(default=5, ge=0, le=1440)

    @field_validator("services")
    @classmethod
    def _services(cls, value: list[str]) -> list[str]:
        return _globs(value)

    @field_validator("alarms")
    @classmethod
    def _alarms(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name or len(name) > 255:
                raise ValueError(f"{name!r} is not a CloudWatch alarm name (1 to 255 characters)")
        return value


def stop_problems(
    windows: Mapping[str, WindowConfig],
    freezes: Sequence[FreezeConfig],
    users: Sequence[tuple[str, str | None]],
) -> Iterator[tuple[str, str]]:
    """Problems only the whole file shows: an unknown window (``users``: each service's or
    daemon's path and ``window``), a duplicate freeze name."""
    known = ", ".join(sorted(windows)) or "none configured"
    for path, window in users:
        if window is not None and window not in windows:
            yield f"{path}.window", f"unknown window {window!r} (windows: {known})"
    seen: dict[str, int] = {}
    for i, freeze in enumerate(freezes):
        if freeze.name in seen:
            yield (
                f"freezes[{i}].name",
                f"duplicate freeze {freeze.name!r} (first at freezes[{seen[freeze.name]}])",
            )
        seen.setdefault(freeze.name, i)


__all__ = ["DAYS", "FreezeConfig", "IncidentsConfig", "WindowConfig", "stop_problems"]
