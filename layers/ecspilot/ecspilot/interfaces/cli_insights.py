"""``ecspilot insights [--since 30d] [--service NAME ...] [--output table|json] [--html FILE]``:
the four DORA keys per service and promotion chain, from the state table (presentation only;
the keys are :mod:`ecspilot.insights`)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecspilot.errors import ConfigError, EventError
from ecspilot.interfaces.insights_html import duration
from ecspilot.interfaces.present import as_json, say, table

if TYPE_CHECKING:
    from ecspilot.domain.config import EcspilotConfig


def service_names(config: EcspilotConfig, given: Sequence[str]) -> list[str]:
    """The configured names ``--service`` names (a configured name, or an ECS service name or
    CLUSTER/SERVICE that is one configured service); an unknown one is bad input."""
    out: list[str] = []
    for name in given:
        exact = [s.name for s in config.services if s.name == name]
        matches = exact or [
            s.name for s in config.services if name in (s.service_name, f"{s.cluster}/{s.service_name}")
        ]
        if not matches:
            raise ConfigError(f"{name!r} is not a configured service")
        if len(matches) > 1:
            raise ConfigError(f"{name!r} names several configured services ({', '.join(matches)})")
        if matches[0] not in out:
            out.append(matches[0])
    return out


def insights_report(rt: Any, since: datetime, names: Sequence[str], now: datetime) -> dict[str, Any]:
    """Read the period's records (one Query per service and 1 MB page) and compute the report."""
    # imported here: `cli` imports this module for every verb, and these pull in the AWS edge
    from ecspilot.domain.keys import state_keys  # noqa: PLC0415
    from ecspilot.insights.keys import Period  # noqa: PLC0415
    from ecspilot.insights.reads import read_period  # noqa: PLC0415
    from ecspilot.insights.report import build, selected  # noqa: PLC0415
    from ecspilot.interfaces.cli_status import own_origin  # noqa: PLC0415

    wanted, picked = selected(rt.config, names)
    stages = [s for chain in picked for s in chain if s not in wanted]
    keys = state_keys(rt.config, own_origin(rt))
    started = time.perf_counter()
    records, reads = read_period(
        rt.history,
        keys,
        [*wanted, *dict.fromkeys(stages)],
        since,
        first_stages=[c[0] for c in picked],
        max_workers=rt.settings.max_workers,
    )
    report = build(rt.config, records, Period(since, now), wanted)
    report["reads"] = {
        "queries": reads.queries,
        "records": reads.records,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return report


def row(name: str, keys: Mapping[str, Any]) -> dict[str, str]:
    freq, lead = keys["deployment_frequency"], keys["lead_time"]
    cfr, ttr = keys["change_failure_rate"], keys["time_to_restore"]
    rate = "-" if cfr["rate"] is None else f"{cfr['rate'] * 100:.1f}% ({cfr['failed']}/{cfr['deployments']})"
    bands = [freq["band"], lead["band"], cfr["band"], ttr["band"]]
    return {
        "name": name,
        "per week": f"{freq['per_week']:.2f}",
        "lead p50": duration(lead["p50_seconds"]),
        "lead p90": duration(lead["p90_seconds"]),
        "failure rate": rate,
        "restore p50": duration(ttr["p50_seconds"]),
        "restore p90": duration(ttr["p90_seconds"])
        + (f" ({ttr['unrestored']} open)" if ttr["unrestored"] else ""),
        "bands": "/".join(b or "-" for b in bands),
    }


COLUMNS = ["name", "per week", "lead p50", "lead p90", "failure rate", "restore p50", "restore p90", "bands"]


def print_report(report: Mapping[str, Any]) -> None:
    days = report["days"]
    say(f"delivery insights {report['since']} .. {report['until']} ({days:g} day{'' if days == 1 else 's'})")
    table([row(s["name"], s) for s in report["services"]], COLUMNS)
    for chain in report["chains"]:
        releases = chain["releases"]
        say()
        say(
            f"chain {chain['name']}: {releases['reached_last_stage']} of {releases['started']} release(s) "
            f"reached the last stage"
        )
        table([row(s["service"], s) for s in chain["stages"]] + [row("(chain)", chain)], COLUMNS)
    say()
    say(
        "bands: deployment frequency/lead time/change failure rate/time to restore "
        f"(thresholds: {report['bands']['source']})"
    )
    reads = report["reads"]
    say(f"read {reads['records']} record(s) in {reads['queries']} Query request(s), {reads['seconds']:g} s")


def writable(path: str) -> None:
    """``--html FILE``: its folder must exist (and FILE must not be a folder), else exit 2
    before anything is read."""
    target = Path(path)
    if target.is_dir() or not target.parent.is_dir():
        missing = "is a folder" if target.is_dir() else f"no folder {target.parent}"
        raise EventError(f"cannot write {path}: {missing}")


def run_insights(rt: Any, args: argparse.Namespace) -> int:
    from ecspilot.interfaces.cli_status import require_table  # noqa: PLC0415

    names = service_names(rt.config, args.service or [])
    if args.html:
        writable(args.html)  # bad input is said before any AWS call
    require_table(rt)
    now = datetime.now(UTC)
    since: datetime = args.since if isinstance(args.since, datetime) else now
    report = insights_report(rt, since, names, now)
    if args.html:
        from ecspilot.interfaces.insights_html import render  # noqa: PLC0415

        try:
            Path(args.html).write_text(render(report), encoding="utf-8")
        except OSError as exc:
            raise EventError(f"cannot write {args.html}: {exc.strerror or exc}") from exc
    if args.output == "json":
        as_json(report)
        return 0
    print_report(report)
    if args.html:
        say(f"wrote {args.html}")
    return 0
