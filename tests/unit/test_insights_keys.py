"""The four keys on hand-computed histories (``ecspilot.insights``: pure, no AWS)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecspilot.domain.config import EcspilotConfig
from ecspilot.insights.bands import failure_rate_band, frequency_band, lead_time_band, restore_band
from ecspilot.insights.keys import (
    Deployment,
    Period,
    four_keys,
    parse_since,
    percentile,
    pooled_keys,
    push_times,
    weekly,
)
from ecspilot.insights.report import build, chains

T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
PERIOD = Period(T0, T0 + timedelta(days=14))


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def record(
    n: int,
    status: str,
    start: float,
    minutes: float = 10,
    trigger: str = "push",
    digest: str = "",
    pushed: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A deployment record as the state table holds it: ``start`` hours after T0, finished
    ``minutes`` later (no finish while IN_PROGRESS), pushed ``pushed`` hours after T0."""
    item: dict[str, Any] = {
        "type": "deployment",
        "deployment_id": f"ecs-svc/{n}",
        "status": status,
        "started_at": at(start),
        "trigger": trigger,
        "image_digest": digest or f"sha256:{n:064x}",
    }
    if status != "IN_PROGRESS":
        item["finished_at"] = at(start + minutes / 60)
    if pushed is not None:
        item["image_pushed_at"] = at(pushed)
    return {**item, **extra}


def keys_of(items: list[dict[str, Any]], period: Period = PERIOD) -> dict[str, Any]:
    deployments = [d for d in (Deployment.from_item(i) for i in items) if d is not None]
    return four_keys(deployments, period, push_times(deployments))


def test_an_empty_period_has_no_lead_time_no_failure_rate_and_no_restore() -> None:
    keys = keys_of([])
    assert keys["deployment_frequency"] == {"completed": 0, "per_day": 0.0, "per_week": 0.0, "band": "low"}
    assert keys["lead_time"] == {
        "p50_seconds": None,
        "p90_seconds": None,
        "count": 0,
        "unknown": 0,
        "band": None,
    }
    assert keys["change_failure_rate"] == {"rate": None, "failed": 0, "deployments": 0, "band": None}
    assert keys["time_to_restore"]["p50_seconds"] is None
    assert keys["time_to_restore"]["band"] is None


def test_frequency_counts_completed_changes_in_the_period_not_rollbacks_nor_failures() -> None:
    # GIVEN 7 COMPLETED pushes in 14 days, a FAILED one, a rollback, one before and one after
    items = [record(i, "COMPLETED", 24 * 2 * i + 1) for i in range(7)]
    items += [
        record(10, "FAILED", 5),
        record(11, "COMPLETED", 6, trigger="rollback"),
        record(12, "COMPLETED", -30),
        record(13, "COMPLETED", 24 * 14 + 1),
    ]
    freq = keys_of(items)["deployment_frequency"]
    # THEN 7 / 14 days = 0.5 a day, 3.5 a week: high (at least once a month, under daily)
    assert freq == {"completed": 7, "per_day": 0.5, "per_week": 3.5, "band": "high"}


def test_lead_time_is_push_to_completed_with_nearest_rank_percentiles() -> None:
    # GIVEN lead times of 10, 20, 50 and 120 minutes (push -> finished)
    items = [
        record(1, "COMPLETED", 1, minutes=5, pushed=1 - 5 / 60),  # 5 + 5 = 10 min
        record(2, "COMPLETED", 2, minutes=10, pushed=2 - 10 / 60),  # 20 min
        record(3, "COMPLETED", 3, minutes=20, pushed=3 - 0.5),  # 50 min
        record(4, "COMPLETED", 4, minutes=60, pushed=3),  # 120 min
    ]
    lead = keys_of(items)["lead_time"]
    # THEN p50 = the 2nd of 4 (20 min), p90 = the 4th (120 min); the median is under an hour: elite
    assert lead == {"p50_seconds": 1200.0, "p90_seconds": 7200.0, "count": 4, "unknown": 0, "band": "elite"}


def test_a_record_without_its_push_time_takes_its_digests_then_its_start_else_is_unknown() -> None:
    digest = "sha256:" + "a" * 64
    items = [
        record(1, "COMPLETED", 10, minutes=30, digest=digest, pushed=9),  # 1.5 h
        record(2, "COMPLETED", 12, minutes=60, trigger="promotion", digest=digest),  # 4 h from 9
        record(3, "COMPLETED", 20, minutes=15),  # an older push record: from its start, 15 min
        record(4, "COMPLETED", 30, minutes=15, trigger="promotion"),  # unknown digest: unknown
    ]
    lead = keys_of(items)["lead_time"]
    assert lead["count"] == 3
    assert lead["unknown"] == 1
    assert lead["p50_seconds"] == 1.5 * 3600
    assert lead["p90_seconds"] == 4 * 3600


def test_change_failure_rate_counts_each_kind_of_failure_over_the_changes() -> None:
    items = [
        record(1, "COMPLETED", 1),
        record(2, "FAILED", 2),
        record(3, "ROLLED_BACK", 3),
        record(4, "COMPLETED", 4, rolled_back_at=at(5)),  # `ecspilot rollback`
        record(5, "COMPLETED", 6, minutes=10, crash_loop_at=at(6 + 10 / 60 + 0.5)),  # loop 30 min later
        record(6, "COMPLETED", 8, minutes=10, crash_loop_at=at(8 + 10 / 60 + 2)),  # 2 h later: not it
        record(7, "COMPLETED", 10),
        record(8, "COMPLETED", 11),
        record(9, "IN_PROGRESS", 12),  # not over: not counted yet
        record(10, "COMPLETED", 3.5, trigger="rollback"),  # a restore, not a change
        record(11, "IN_PROGRESS", 13, rollback_requested_at=at(13.2)),  # rolled back while running
    ]
    cfr = keys_of(items)["change_failure_rate"]
    # 9 changes (1-8 and 11), 5 failed (2, 3, 4, 5, 11): 55.56 %: low (above 30 %)
    assert cfr == {"rate": 0.5556, "failed": 5, "deployments": 9, "band": "low"}


def test_time_to_restore_runs_from_the_failure_to_the_next_completed_and_counts_the_unrestored() -> None:
    items = [
        record(1, "FAILED", 10, minutes=6),  # failed at 10:06
        record(2, "COMPLETED", 10.2, minutes=18, trigger="rollback"),  # completed 10:30: 24 min
        record(3, "COMPLETED", 20, rolled_back_at=at(30)),  # rolled back by hand at +30h
        record(4, "COMPLETED", 31, minutes=60),  # +32h: 2 h after
        record(5, "FAILED", 100, minutes=0),  # never restored
    ]
    ttr = keys_of(items)["time_to_restore"]
    assert ttr == {
        "p50_seconds": 24 * 60.0,
        "p90_seconds": 2 * 3600.0,
        "restored": 2,
        "unrestored": 1,
        "band": "elite",
    }


def test_weekly_rows_cover_every_week_of_the_period_even_empty_ones() -> None:
    items = [record(1, "COMPLETED", 1, pushed=0), record(2, "FAILED", 2)]
    deployments = [d for d in (Deployment.from_item(i) for i in items) if d is not None]
    rows = weekly(deployments, Period(T0, T0 + timedelta(days=21)), push_times(deployments))
    assert [r["week"] for r in rows] == ["2026-11-02", "2026-11-09", "2026-11-16"]
    assert [(r["completed"], r["failed"], r["deployments"]) for r in rows] == [
        (1, 1, 2),
        (0, 0, 0),
        (0, 0, 0),
    ]
    assert rows[0]["lead_time_p50_seconds"] == 3600 + 600
    assert rows[1]["lead_time_p50_seconds"] is None


CHAIN_CONFIG = EcspilotConfig.model_validate(
    {
        "version": 1,
        "services": [
            {
                "name": "web-dev",
                "cluster": "dev",
                "service": "web",
                "containers": {"app": {"repository": "web"}},
            },
            {"name": "web-staging", "cluster": "staging", "service": "web", "promote": {"from": "web-dev"}},
            {"name": "web-prod", "cluster": "prod", "service": "web", "promote": {"from": "web-staging"}},
            {"name": "api", "cluster": "prod", "containers": {"app": {"repository": "api"}}},
        ],
    }
)


def test_chains_run_from_the_service_with_containers_to_the_last_promoted_one() -> None:
    assert chains(CHAIN_CONFIG) == [["web-dev", "web-staging", "web-prod"]]


def test_a_chain_measures_push_to_its_last_stage_and_counts_releases_that_never_reached_it() -> None:
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    records = {
        # release a: pushed at 0, dev done at 0.5, staging at 2, prod at 6 (lead time 6 h)
        "web-dev": [
            record(1, "COMPLETED", 0.25, 15, digest=a, pushed=0),
            record(2, "COMPLETED", 30, digest=b, pushed=29),
        ],
        "web-staging": [
            record(3, "COMPLETED", 1.5, 30, "promotion", a),
            record(4, "FAILED", 31, 10, "promotion", b),
        ],
        "web-prod": [record(5, "COMPLETED", 5, 60, "promotion", a)],
        "api": [],
    }
    report = build(CHAIN_CONFIG, records, PERIOD)
    [chain] = report["chains"]
    assert chain["name"] == "web-dev -> web-staging -> web-prod"
    assert [s["service"] for s in chain["stages"]] == ["web-dev", "web-staging", "web-prod"]
    assert chain["lead_time"]["p50_seconds"] == 6 * 3600
    assert chain["deployment_frequency"]["completed"] == 1
    # release b failed in staging: it never reached prod
    assert chain["releases"] == {"started": 2, "reached_last_stage": 1, "not_reached": 1}
    assert chain["stages"][1]["change_failure_rate"]["rate"] == 0.5
    assert chain["change_failure_rate"]["rate"] == 0.0
    # the prod service's own lead time is the same push -> its COMPLETED
    prod = next(s for s in report["services"] if s["name"] == "web-prod")
    assert prod["lead_time"]["p50_seconds"] == 6 * 3600
    assert prod["promoted_from"] == "web-staging"
    assert next(s for s in report["services"] if s["name"] == "api")["deployment_frequency"]["completed"] == 0


def test_only_the_named_services_and_their_chains_are_reported() -> None:
    report = build(CHAIN_CONFIG, {"api": []}, PERIOD, ["api"])
    assert [s["name"] for s in report["services"]] == ["api"]
    assert report["chains"] == []


@pytest.mark.parametrize(
    ("per_day", "band"),
    [
        (3.0, "elite"),
        (1.0, "elite"),
        (0.5, "high"),
        (1 / 30, "high"),
        (1 / 31, "medium"),
        (1 / 182, "medium"),
        (0.0, "low"),
        (None, None),
    ],
)
def test_frequency_bands(per_day: float | None, band: str | None) -> None:
    assert frequency_band(per_day) == band


@pytest.mark.parametrize(
    ("seconds", "lead", "restore"),
    [
        (59 * 60, "elite", "elite"),
        (3600, "high", "high"),
        (23 * 3600, "high", "high"),
        (2 * 86400, "high", "medium"),
        (8 * 86400, "medium", "low"),
        (200 * 86400, "low", "low"),
    ],
)
def test_lead_time_and_restore_bands(seconds: float, lead: str, restore: str) -> None:
    assert lead_time_band(seconds) == lead
    assert restore_band(seconds) == restore


@pytest.mark.parametrize(
    ("rate", "band"), [(0.0, "elite"), (0.15, "elite"), (0.16, "high"), (0.30, "high"), (0.31, "low")]
)
def test_failure_rate_bands(rate: float, band: str) -> None:
    assert failure_rate_band(rate) == band


NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", NOW - timedelta(days=30)),
        ("12w", NOW - timedelta(weeks=12)),
        ("48h", NOW - timedelta(hours=48)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T06:00:00+01:00", datetime(2026, 11, 1, 5, tzinfo=UTC)),
    ],
)
def test_since_takes_a_duration_or_an_iso_date(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "30",
        "0d",
        "-3d",
        "30 days",
        "3m",
        "2027-01-01",
        "yesterday",
        "2026-13-01",
        "0001-01-01",
        "99999w",
        "\x00",
    ],
)
def test_since_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match=r"since|past|duration|too far back"):
        parse_since(text, NOW)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 90) == 5.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 11)], 90) == 9.0


def test_pooled_keys_restore_a_failure_only_by_its_own_services_next_completion() -> None:
    # GIVEN web failed at +10h and was never restored; api completed at +11h
    web = [Deployment.from_item(record(1, "FAILED", 10, minutes=0))]
    api = [Deployment.from_item(record(2, "COMPLETED", 11, pushed=10.5))]
    groups = [[d for d in web if d], [d for d in api if d]]
    keys = pooled_keys(groups, PERIOD, {})
    # THEN api's completion does not restore web: one unrestored failure, no restore time
    assert keys["time_to_restore"]["unrestored"] == 1
    assert keys["time_to_restore"]["p50_seconds"] is None
    assert keys["change_failure_rate"] == {"rate": 0.5, "failed": 1, "deployments": 2, "band": "low"}
    assert keys["deployment_frequency"]["completed"] == 1
