"""The four keys of one service's (or one chain stage's) deployments. Pure, table-tested.

Definitions (README "Insights"; ``docs/INSIGHTS.md`` has why):

- a **change** is a deployment record whose trigger is not ``rollback``: a push, a catch-up, a
  promotion or a deployment ecspilot did not start (``external``). A rollback (``ecspilot
  rollback``'s redeploy, a circuit breaker's return) restores; it is not a change;
- **deployment frequency**: the changes COMPLETED in the period (by their ``finished_at``), per
  day and per week of the period;
- **lead time**: for each of those, image pushed -> ``finished_at``. The push time is ECR's
  ``imagePushedAt``, written on the record by the deployer (``image_pushed_at``); a record
  without it (a promotion, an older record) takes the earliest push time recorded for its
  digest, and a push-triggered record without any takes its own ``started_at`` (the deploy
  starts seconds after the push event); otherwise its lead time is unknown and counted so;
- **change failure rate**: failed changes / changes started in the period and over (or failed).
  A change failed when its record is FAILED or ROLLED_BACK, when ``ecspilot rollback`` rolled it
  back (``rolled_back_at``, ``rollback_requested_at``), or when the service started a crash loop
  within an hour of it (``crash_loop_at``, written by the tracker when a loop starts);
- **time to restore**: from each failure (the earliest of those moments) to the service's next
  COMPLETED deployment of any trigger; a failure not restored yet is counted as unrestored.

Percentiles are nearest-rank: the p-th percentile of n sorted values is the ceil(p/100*n)-th.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ecspilot.insights.bands import (
    Band,
    failure_rate_band,
    frequency_band,
    lead_time_band,
    restore_band,
)
from ecspilot.records import dataclass

CRASH_LOOP_WINDOW = timedelta(hours=1)
CLOSED = ("COMPLETED", "FAILED", "ROLLED_BACK")


def when(value: Any) -> datetime | None:
    """An ISO 8601 text (``Z`` or an offset; a date alone is midnight UTC) as an aware datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Deployment:
    """What the keys read of one deployment record."""

    deployment_id: str
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    trigger: str = "push"
    digest: str = ""
    pushed_at: datetime | None = None
    rolled_back_at: datetime | None = None  # by `ecspilot rollback`
    crash_loop_at: datetime | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Deployment | None:
        """The record as the keys read it; None for a record without a start time."""
        started = when(item.get("started_at"))
        if started is None:
            return None
        return cls(
            deployment_id=str(item.get("deployment_id", "")),
            status=str(item.get("status", "")),
            started_at=started,
            finished_at=when(item.get("finished_at")),
            trigger=str(item.get("trigger") or "push"),
            digest=str(item.get("image_digest", "")),
            pushed_at=when(item.get("image_pushed_at")),
            rolled_back_at=when(item.get("rolled_back_at")) or when(item.get("rollback_requested_at")),
            crash_loop_at=when(item.get("crash_loop_at")),
        )

    @property
    def is_change(self) -> bool:
        return self.trigger != "rollback"

    @property
    def failed_at(self) -> datetime | None:
        """When this change failed (the earliest signal), or None when it did not."""
        moments = []
        if self.status in ("FAILED", "ROLLED_BACK"):
            moments.append(self.finished_at or self.started_at)
        if self.rolled_back_at is not None:
            moments.append(self.rolled_back_at)
        landed = self.finished_at or self.started_at
        if self.crash_loop_at is not None and self.crash_loop_at <= landed + CRASH_LOOP_WINDOW:
            moments.append(max(self.crash_loop_at, self.started_at))
        return min(moments) if moments else None


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def push_times(deployments: Iterable[Deployment]) -> dict[str, datetime]:
    """The earliest recorded push time of each digest (the chain's first stage carries it)."""
    out: dict[str, datetime] = {}
    for d in deployments:
        if d.digest and d.pushed_at is not None and (d.digest not in out or d.pushed_at < out[d.digest]):
            out[d.digest] = d.pushed_at
    return out


def pushed_at(d: Deployment, pushes: Mapping[str, datetime]) -> datetime | None:
    """When ``d``'s image was pushed: its own record, else its digest's, else (a push) its start."""
    if d.pushed_at is not None:
        return d.pushed_at
    if d.digest in pushes:
        return pushes[d.digest]
    return d.started_at if d.trigger == "push" else None


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime

    @property
    def days(self) -> float:
        return max((self.until - self.since).total_seconds() / 86400, 1 / 24)

    def holds(self, at: datetime | None) -> bool:
        """``since <= at < until``: each moment falls in one week of a period."""
        return at is not None and self.since <= at < self.until


SINCE_RE = re.compile(r"(?P<n>[1-9]\d{0,4})(?P<unit>[hdw])")
UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
#: the longest period (weekly rows stay few; records expire long before: ``retention_days``)
MAX_PERIOD = timedelta(days=5 * 366)


def parse_since(text: str, now: datetime) -> datetime:
    """``--since``: ``30d``, ``12w``, ``48h`` before ``now``, or an ISO date or time (UTC unless
    it says otherwise). ValueError for anything else, for a time not before ``now``, or for one
    more than :data:`MAX_PERIOD` before it."""
    match = SINCE_RE.fullmatch(text.strip())
    if match:
        return _bounded(now - int(match["n"]) * UNITS[match["unit"]], now, text)
    at = (
        when(text.strip())
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?", text.strip())
        else None
    )
    if at is None:
        raise ValueError(f"{text!r} is neither a duration (30d, 12w, 48h) nor an ISO date (2026-11-01)")
    if at >= now:
        raise ValueError(f"{text!r} is not in the past")
    return _bounded(at, now, text)


def _bounded(at: datetime, now: datetime, text: str) -> datetime:
    if now - at > MAX_PERIOD:
        raise ValueError(f"{text!r} is too far back: the period is at most {MAX_PERIOD.days} days")
    return at


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _spread(values: Sequence[float]) -> dict[str, float | None]:
    return {
        "p50_seconds": _rounded(percentile(values, 50), 1),
        "p90_seconds": _rounded(percentile(values, 90), 1),
    }


def completed_changes(deployments: Iterable[Deployment], period: Period) -> list[Deployment]:
    return [d for d in deployments if d.is_change and d.status == "COMPLETED" and period.holds(d.finished_at)]


def lead_times(
    deployments: Iterable[Deployment], period: Period, pushes: Mapping[str, datetime]
) -> tuple[list[tuple[datetime, float]], int]:
    """``([(completed at, lead time seconds)], how many had no known push time)``."""
    known: list[tuple[datetime, float]] = []
    unknown = 0
    for d in completed_changes(deployments, period):
        at = pushed_at(d, pushes)
        if at is None or d.finished_at is None:
            unknown += 1
            continue
        known.append((d.finished_at, max(0.0, (d.finished_at - at).total_seconds())))
    return known, unknown


def failures(deployments: Iterable[Deployment], period: Period) -> tuple[list[Deployment], int]:
    """``(the failed changes, the changes)`` started in the period (a change still running and
    not failed is not counted yet)."""
    changes = [
        d
        for d in deployments
        if d.is_change and period.holds(d.started_at) and (d.status in CLOSED or d.failed_at is not None)
    ]
    return [d for d in changes if d.failed_at is not None], len(changes)


def restore_times(
    deployments: Sequence[Deployment], period: Period
) -> tuple[list[tuple[datetime, float]], int]:
    """``([(failed at, seconds to the next COMPLETED)], how many are not restored yet)``."""
    failed, _ = failures(deployments, period)
    completions = sorted(
        d.finished_at for d in deployments if d.status == "COMPLETED" and d.finished_at is not None
    )
    restored: list[tuple[datetime, float]] = []
    open_ = 0
    for d in failed:
        at = d.failed_at
        assert at is not None
        after = next((c for c in completions if c > at), None)
        if after is None:
            open_ += 1
        else:
            restored.append((at, (after - at).total_seconds()))
    return restored, open_


def four_keys(
    deployments: Sequence[Deployment], period: Period, pushes: Mapping[str, datetime]
) -> dict[str, Any]:
    """The four keys of one service's deployments in ``period``, with their bands."""
    return pooled_keys([deployments], period, pushes)


def pooled_keys(
    groups: Sequence[Sequence[Deployment]], period: Period, pushes: Mapping[str, datetime]
) -> dict[str, Any]:
    """The four keys of several services together: each service's values pooled (a failure is
    restored by its own service's next completion, never another's)."""
    completed = sum(len(completed_changes(g, period)) for g in groups)
    per_day = completed / period.days
    leads: list[float] = []
    restores: list[float] = []
    unknown = failed = changes = unrestored = 0
    for g in groups:
        known, missing = lead_times(g, period, pushes)
        leads += [s for _, s in known]
        unknown += missing
        bad, total = failures(g, period)
        failed, changes = failed + len(bad), changes + total
        restored, still = restore_times(g, period)
        restores += [s for _, s in restored]
        unrestored += still
    rate = failed / changes if changes else None
    lead_spread = _spread(leads)
    restore_spread = _spread(restores)
    bands: dict[str, Band | None] = {
        "deployment_frequency": frequency_band(per_day),
        "lead_time": lead_time_band(lead_spread["p50_seconds"]),
        "change_failure_rate": failure_rate_band(rate),
        "time_to_restore": restore_band(restore_spread["p50_seconds"]),
    }
    return {
        "deployment_frequency": {
            "completed": completed,
            "per_day": _rounded(per_day),
            "per_week": _rounded(per_day * 7),
            "band": bands["deployment_frequency"],
        },
        "lead_time": {**lead_spread, "count": len(leads), "unknown": unknown, "band": bands["lead_time"]},
        "change_failure_rate": {
            "rate": _rounded(rate),
            "failed": failed,
            "deployments": changes,
            "band": bands["change_failure_rate"],
        },
        "time_to_restore": {
            **restore_spread,
            "restored": len(restores),
            "unrestored": unrestored,
            "band": bands["time_to_restore"],
        },
    }


def week_start(at: datetime) -> datetime:
    """Monday 00:00 UTC of ``at``'s week."""
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def weekly(
    deployments: Sequence[Deployment], period: Period, pushes: Mapping[str, datetime]
) -> list[dict[str, Any]]:
    """One row per week of the period (empty weeks included): COMPLETED changes, failed changes
    and changes, lead time p50/p90 of the week's completions."""
    return pooled_weekly([deployments], period, pushes)


def pooled_weekly(
    groups: Sequence[Sequence[Deployment]], period: Period, pushes: Mapping[str, datetime]
) -> list[dict[str, Any]]:
    """:func:`weekly` of several services together."""
    rows: list[dict[str, Any]] = []
    start = week_start(period.since)
    while start < period.until:
        week = Period(max(start, period.since), min(start + timedelta(days=7), period.until))
        keys = pooled_keys(groups, week, pushes)
        cfr, lead = keys["change_failure_rate"], keys["lead_time"]
        rows.append(
            {
                "week": start.date().isoformat(),
                "completed": keys["deployment_frequency"]["completed"],
                "failed": cfr["failed"],
                "deployments": cfr["deployments"],
                "lead_time_p50_seconds": lead["p50_seconds"],
                "lead_time_p90_seconds": lead["p90_seconds"],
            }
        )
        start += timedelta(days=7)
    return rows
