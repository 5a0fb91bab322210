"""Window and freeze arithmetic (domain/stops.py): days, midnight, zones, 2026's DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ecspilot.aws.freezes import freezes_of
from ecspilot.domain.config import IncidentsConfig, WindowConfig, parse_config
from ecspilot.domain.stops import Freeze, Stops, next_opening, opening_text, window_open
from ecspilot.errors import ConfigError, EventError
from ecspilot.interfaces.cli_freeze import parse_duration

OFFICE = WindowConfig(days=["MON", "TUE", "WED", "THU"], start="09:00", end="16:30", timezone="Europe/Rome")
NIGHT = WindowConfig(days=["FRI"], start="22:00", end="06:00", timezone="UTC")
ROME_NIGHT = WindowConfig(start="01:00", end="04:00", timezone="Europe/Rome")  # every day
NY_NIGHT = WindowConfig(start="01:00", end="03:30", timezone="America/New_York")
ROME_0230 = WindowConfig(start="02:30", end="05:00", timezone="Europe/Rome")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "at", "is_open"),
    [
        # days: Mon 2026-12-07 .. Sun 2026-12-13; Rome is UTC+1 in winter
        (OFFICE, "2026-12-07T08:00:00", True),  # Mon 09:00 Rome: opens (start included)
        (OFFICE, "2026-12-07T07:59:59", False),
        (OFFICE, "2026-12-07T15:29:59", True),
        (OFFICE, "2026-12-07T15:30:00", False),  # 16:30 Rome: closed (end excluded)
        (OFFICE, "2026-12-11T10:00:00", False),  # Friday is not a day of the window
        (OFFICE, "2026-12-13T10:00:00", False),  # Sunday
        # in summer Rome is UTC+2: 09:00 local is 07:00 UTC
        (OFFICE, "2026-07-06T07:00:00", True),
        (OFFICE, "2026-07-06T06:59:00", False),
        # crossing midnight: opens Friday 22:00, runs into Saturday 06:00
        (NIGHT, "2026-12-11T22:00:00", True),
        (NIGHT, "2026-12-12T05:59:59", True),  # Saturday morning: Friday's opening
        (NIGHT, "2026-12-12T06:00:00", False),
        (NIGHT, "2026-12-11T05:00:00", False),  # Friday morning: Thursday has no opening
        (NIGHT, "2026-12-12T23:00:00", False),  # Saturday night
        # Europe/Rome, 2026-03-29: 02:00 CET -> 03:00 CEST at 01:00 UTC
        (ROME_NIGHT, "2026-03-29T00:00:00", True),  # 01:00 CET
        (ROME_NIGHT, "2026-03-29T01:30:00", True),  # 03:30 CEST
        (ROME_NIGHT, "2026-03-29T02:00:00", False),  # 04:00 CEST: two hours of wall time, one real
        # Europe/Rome, 2026-10-25: 03:00 CEST -> 02:00 CET at 01:00 UTC
        (ROME_NIGHT, "2026-10-24T23:00:00", True),  # 01:00 CEST
        (ROME_NIGHT, "2026-10-25T02:59:00", True),  # 03:59 CET: four real hours
        (ROME_NIGHT, "2026-10-25T03:00:00", False),
        # America/New_York, 2026-03-08: 02:00 EST -> 03:00 EDT at 07:00 UTC
        (NY_NIGHT, "2026-03-08T06:00:00", True),  # 01:00 EST
        (NY_NIGHT, "2026-03-08T07:29:00", True),  # 03:29 EDT
        (NY_NIGHT, "2026-03-08T07:30:00", False),  # 03:30 EDT
        # America/New_York, 2026-11-01: 02:00 EDT -> 01:00 EST at 06:00 UTC
        (NY_NIGHT, "2026-11-01T05:00:00", True),  # 01:00 EDT
        (NY_NIGHT, "2026-11-01T08:29:00", True),  # 03:29 EST
        (NY_NIGHT, "2026-11-01T08:30:00", False),
        # a start inside the spring gap (02:30 does not exist on 2026-03-29 in Rome)
        (ROME_0230, "2026-03-29T01:29:00", False),  # 03:29 CEST: zoneinfo places 02:30 at 03:30
        (ROME_0230, "2026-03-29T01:30:00", True),
    ],
)
def test_window_is_open_exactly_inside_its_openings(window: WindowConfig, at: str, is_open: bool) -> None:
    assert window_open(window, utc(at)) is is_open


@pytest.mark.parametrize(
    ("window", "at", "opens"),
    [
        (OFFICE, "2026-12-11T16:55:00", "2026-12-14T08:00:00"),  # Friday evening -> Monday 09:00 Rome
        (OFFICE, "2026-12-07T10:00:00", "2026-12-07T10:00:00"),  # open now: now
        (OFFICE, "2026-12-07T06:00:00", "2026-12-07T08:00:00"),  # earlier the same day
        (OFFICE, "2026-03-26T16:00:00", "2026-03-30T07:00:00"),  # across the spring change: CEST
        (OFFICE, "2026-10-22T16:00:00", "2026-10-26T08:00:00"),  # across the autumn change: CET
        (NIGHT, "2026-12-12T07:00:00", "2026-12-18T22:00:00"),
        (NY_NIGHT, "2026-03-07T10:00:00", "2026-03-08T06:00:00"),  # 01:00 EST
        (NY_NIGHT, "2026-03-08T10:00:00", "2026-03-09T05:00:00"),  # 01:00 EDT
        (NY_NIGHT, "2026-10-31T10:00:00", "2026-11-01T05:00:00"),  # 01:00 EDT (the first 01:00)
        (NY_NIGHT, "2026-11-01T10:00:00", "2026-11-02T06:00:00"),  # 01:00 EST
    ],
)
def test_next_opening_is_the_first_open_instant(window: WindowConfig, at: str, opens: str) -> None:
    assert next_opening(window, utc(at)) == utc(opens)


def test_the_reason_names_the_window_and_its_local_opening() -> None:
    assert opening_text("office-hours", OFFICE, utc("2026-12-11T16:55:00")) == (
        "outside office-hours, opens Mon 09:00 Europe/Rome"
    )


BF = Freeze(
    "black-friday", "config", ("*",), utc("2026-11-27T00:00:00"), utc("2026-11-30T23:59:59"), "peak traffic"
)


@pytest.mark.parametrize(
    ("freezes", "window", "name", "at", "reason", "until"),
    [
        # no window, no freeze: go
        ((), None, "web", "2026-12-07T10:00:00", None, None),
        # a config freeze names itself and its end
        (
            (BF,),
            None,
            "web",
            "2026-11-28T10:00:00",
            "frozen: black-friday until 2026-11-30T23:59:59Z",
            "2026-11-30T23:59:59",
        ),
        ((BF,), None, "web", "2026-11-30T23:59:59", None, None),  # end excluded
        # a freeze on other services only
        (
            (Freeze("db", "config", ("db*",), None, utc("2026-12-08T00:00:00")),),
            None,
            "web",
            "2026-12-07T10:00:00",
            None,
            None,
        ),
        # a freeze inside an open window: frozen until the freeze ends, the window still open
        (
            (Freeze("lunch", "config", ("web",), utc("2026-12-07T10:00:00"), utc("2026-12-07T11:00:00")),),
            OFFICE,
            "web",
            "2026-12-07T10:30:00",
            "frozen: lunch until 2026-12-07T11:00:00Z",
            "2026-12-07T11:00:00",
        ),
        # a freeze that ends after the window closed: reopens at the next opening
        (
            (Freeze("late", "config", ("*",), utc("2026-12-07T15:00:00"), utc("2026-12-07T17:00:00")),),
            OFFICE,
            "web",
            "2026-12-07T15:10:00",
            "frozen: late until 2026-12-07T17:00:00Z",
            "2026-12-08T08:00:00",
        ),
        # overlapping freezes: the later end wins, whichever comes first
        (
            (
                Freeze("a", "config", ("*",), utc("2026-12-07T00:00:00"), utc("2026-12-07T12:00:00")),
                Freeze("b", "config", ("web",), utc("2026-12-07T11:00:00"), utc("2026-12-07T14:00:00")),
            ),
            None,
            "web",
            "2026-12-07T10:00:00",
            "frozen: a until 2026-12-07T12:00:00Z",
            "2026-12-07T14:00:00",
        ),
        # a CLI freeze without an end: until lifted
        (
            (
                Freeze(
                    "cli-1",
                    "cli",
                    ("*",),
                    utc("2026-12-07T00:00:00"),
                    None,
                    "bad release",
                    "arn:aws:iam::111111111111:user/alice",
                ),
            ),
            None,
            "web",
            "2026-12-07T10:00:00",
            "frozen by arn:aws:iam::111111111111:user/alice : bad release",
            None,
        ),
        # outside the window, no freeze
        (
            (),
            OFFICE,
            "web",
            "2026-12-11T16:55:00",
            "outside office-hours, opens Mon 09:00 Europe/Rome",
            "2026-12-14T08:00:00",
        ),
        # an incident
        (
            (Freeze("incident", "incident", ("web*",), reason="incident: prod-5xx in ALARM"),),
            None,
            "web-api",
            "2026-12-07T10:00:00",
            "incident: prod-5xx in ALARM",
            None,
        ),
    ],
)
def test_stops_answer_with_the_first_reason_and_when_everything_is_gone(
    freezes: tuple[Freeze, ...],
    window: WindowConfig | None,
    name: str,
    at: str,
    reason: str | None,
    until: str | None,
) -> None:
    stops = Stops(
        utc(at), {"office-hours": window} if window else {}, freezes, {name: "office-hours"} if window else {}
    )
    stop = stops.check(name)
    if reason is None:
        assert stop is None
    else:
        assert stop is not None
        assert stop.reason == reason
        assert stop.until == (utc(until) if until else None)


BASE = {
    "version": 1,
    "services": [{"name": "web", "cluster": "c", "containers": {"app": {"repository": "web"}}}],
}


@pytest.mark.parametrize(
    ("extra", "service", "path", "words"),
    [
        ({}, {"window": "nope"}, "services[0].window", "unknown window 'nope'"),
        ({"windows": {"w": {"start": "9:00", "end": "10:00"}}}, {}, "windows.w.start", "HH:MM"),
        ({"windows": {"w": {"start": "09:00", "end": "24:00"}}}, {}, "windows.w.end", "HH:MM"),
        (
            {"windows": {"w": {"start": "09:00", "end": "10:00", "timezone": "Mars/Base"}}},
            {},
            "windows.w.timezone",
            "IANA",
        ),
        (
            {"windows": {"w": {"days": ["MONDAY"], "start": "09:00", "end": "10:00"}}},
            {},
            "windows.w.days[0]",
            "",
        ),
        (
            {"freezes": [{"name": "f", "start": "2026-11-27T00:00:00", "end": "2026-11-28T00:00:00Z"}]},
            {},
            "freezes[0].start",
            "time zone",
        ),
        (
            {"freezes": [{"name": "f", "start": "2026-11-28T00:00:00Z", "end": "2026-11-27T00:00:00Z"}]},
            {},
            "freezes[0]",
            "end must be after start",
        ),
        ({"incidents": {"alarms": []}}, {}, "incidents.alarms", ""),
        ({"incidents": {"alarms": ["a"], "services": ["we b"]}}, {}, "incidents.services", "glob"),
    ],
)
def test_config_errors_name_their_path(extra: dict, service: dict, path: str, words: str) -> None:
    data = {**BASE, **extra, "services": [{**BASE["services"][0], **service}]}
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    problems = dict(caught.value.problems)
    assert path in problems, problems
    assert words in problems[path]


def test_a_full_stop_config_parses() -> None:
    config = parse_config(
        {
            **BASE,
            "services": [{**BASE["services"][0], "window": "office-hours"}],
            "windows": {
                "office-hours": {"days": ["MON"], "start": "09:00", "end": "16:30", "timezone": "Europe/Rome"}
            },
            "freezes": [
                {
                    "name": "black-friday",
                    "start": "2026-11-27T00:00:00Z",
                    "end": "2026-11-30T23:59:59Z",
                    "reason": "peak traffic",
                }
            ],
            "incidents": {"alarms": ["prod-5xx"], "services": ["web*"]},
        }
    )
    assert config.services[0].window == "office-hours"
    assert config.freezes[0].services == ["*"]
    assert config.windows["office-hours"].days == ["MON"]
    assert WindowConfig(start="09:00", end="10:00").timezone == "UTC"


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("30m", 30), ("2h", 120), ("1d", 1440), ("1h30m", 90), ("1d2h", 1560)],
)
def test_durations_read_as_people_write_them(text: str, minutes: int) -> None:
    assert parse_duration(text) == timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["", "2", "2 hours", "h", "0m", "-1h", "400d", "1m2h"])
def test_a_bad_duration_is_bad_input(text: str) -> None:
    with pytest.raises(EventError):
        parse_duration(text)


INCIDENTS = IncidentsConfig(alarms=["prod-5xx", "prod-p99"], services=["web*"])


@pytest.mark.parametrize(
    ("item", "reason", "end"),
    [
        (
            {"active": True, "alarm#prod-5xx": {"state": "ALARM", "at": "x"}},
            "incident: prod-5xx in ALARM",
            None,
        ),
        (
            {"active": True, "alarm#prod-5xx": {"state": "ALARM"}, "alarm#prod-p99": {"state": "ALARM"}},
            "incident: prod-5xx, prod-p99 in ALARM",
            None,
        ),
        (
            {"active": True, "alarm#prod-5xx": {"state": "OK"}, "ending_at": "2026-12-07T10:05:00Z"},
            "incident: alarms OK, lifts at 2026-12-07T10:05:00Z",
            "2026-12-07T10:05:00",
        ),
        ({"active": False, "alarm#prod-5xx": {"state": "ALARM"}}, None, None),
    ],
)
def test_the_incident_item_reads_as_one_freeze_while_active(
    item: dict, reason: str | None, end: str | None
) -> None:
    got = freezes_of([{"pk": "FREEZE", "sk": "INCIDENT", **item}], INCIDENTS)
    if reason is None:
        assert got == []
        return
    [freeze] = got
    assert (freeze.kind, freeze.services, freeze.text()) == ("incident", ("web*",), reason)
    assert freeze.end == (utc(end) if end else None)
    assert freezes_of([{"pk": "FREEZE", "sk": "INCIDENT", **item}], None) == []  # no incidents configured


def test_a_cli_freeze_item_reads_with_who_and_why_and_is_in_force_at_once() -> None:
    [freeze] = freezes_of(
        [
            {
                "pk": "FREEZE",
                "sk": "FREEZE#1",
                "type": "freeze",
                "name": "1",
                "services": ["web"],
                "reason": "bad release",
                "by": "arn:aws:sts::1:assumed-role/oncall/alice",
                "at": "2026-12-07T10:00:00Z",
            }
        ],
        None,
    )
    assert freeze.text() == "frozen by arn:aws:sts::1:assumed-role/oncall/alice : bad release"
    assert freeze.active(utc("2000-01-01T00:00:00"))  # no start: whatever a function's clock says
    assert freeze.covers("web")
    assert not freeze.covers("api")
