"""The performance band of each key: elite, high, medium or low. Pure.

The thresholds are the Accelerate State of DevOps Report 2021's (DORA, Google Cloud), the last
report that published the four bands with a range for each key (2022 had three clusters and no
elite; 2023 changed the restore key to "failed deployment recovery time"). The report gives
ranges with gaps between them (elite lead time "less than one hour", high "between one day and
one week"); here each band ends where its published range ends, so a value in a gap falls to
the next worse band (the conservative reading). ``docs/INSIGHTS.md`` has the table.
"""

from __future__ import annotations

from typing import Literal

Band = Literal["elite", "high", "medium", "low"]

HOUR = 3600.0
DAY = 24 * HOUR
WEEK = 7 * DAY
MONTH = 30 * DAY
SIX_MONTHS = 182 * DAY

REPORT = "Accelerate State of DevOps Report 2021 (DORA, Google Cloud)"

#: deployments per day: the least each band needs (elite: on demand, several a day, read as at
#: least daily; high: between once a week and once a month, and the gap up to daily; medium:
#: between once a month and once every six months; low: fewer than once every six months)
FREQUENCY_AT_LEAST: tuple[tuple[Band, float], ...] = (
    ("elite", 1.0),
    ("high", 1 / (MONTH / DAY)),
    ("medium", 1 / (SIX_MONTHS / DAY)),
)
#: lead time in seconds: the most each band allows (elite: less than an hour; high: between a
#: day and a week; medium: between a month and six months; low: more than six months)
LEAD_TIME_UNDER: tuple[tuple[Band, float], ...] = (
    ("elite", HOUR),
    ("high", WEEK),
    ("medium", SIX_MONTHS),
)
#: time to restore in seconds (elite: less than an hour; high: less than a day; medium:
#: between a day and a week; low: more than six months, and the gap up to it)
RESTORE_UNDER: tuple[tuple[Band, float], ...] = (
    ("elite", HOUR),
    ("high", DAY),
    ("medium", WEEK),
)
#: change failure rate (elite: 0-15 %; high, medium and low: 16-30 %, so a rate up to 30 % is
#: high; above 30 % is outside every published range: low)
FAILURE_RATE_AT_MOST: tuple[tuple[Band, float], ...] = (
    ("elite", 0.15),
    ("high", 0.30),
)


def frequency_band(per_day: float | None) -> Band | None:
    """The band of a deployment frequency (COMPLETED per day); None without a value."""
    if per_day is None:
        return None
    return next((band for band, least in FREQUENCY_AT_LEAST if per_day >= least), "low")


def lead_time_band(seconds: float | None) -> Band | None:
    """The band of a lead time (the median, in seconds)."""
    if seconds is None:
        return None
    return next((band for band, most in LEAD_TIME_UNDER if seconds < most), "low")


def restore_band(seconds: float | None) -> Band | None:
    """The band of a time to restore (the median, in seconds)."""
    if seconds is None:
        return None
    return next((band for band, most in RESTORE_UNDER if seconds < most), "low")


def failure_rate_band(rate: float | None) -> Band | None:
    """The band of a change failure rate (0 to 1)."""
    if rate is None:
        return None
    return next((band for band, most in FAILURE_RATE_AT_MOST if rate <= most), "low")


def thresholds() -> dict[str, object]:
    """The thresholds as data (the JSON output and the HTML page show them)."""
    return {
        "source": REPORT,
        "deployment_frequency_per_day_at_least": dict(FREQUENCY_AT_LEAST),
        "lead_time_seconds_under": dict(LEAD_TIME_UNDER),
        "time_to_restore_seconds_under": dict(RESTORE_UNDER),
        "change_failure_rate_at_most": dict(FAILURE_RATE_AT_MOST),
        "otherwise": "low",
    }
