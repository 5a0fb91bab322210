"""``python -m bench insights``: the delivery insights over a generated history.

90 days of 50 services (16 three-stage chains dev -> staging -> prod, and 2 single services),
written into the state table on moto's server (``ecspilot_dev.delivery_history``: every change
fails at known rates: ECS's circuit breaker, ``ecspilot rollback``, a crash loop within the
hour). Then ``ecspilot insights``'s core reads it as the CLI does, over 30 and over 90 days:

- the figures against the rates put in (and against the generator's own count of what it put
  in, which must match exactly: a failed check fails the benchmark);
- the cost: Query requests (and no Scan) and seconds, per service and per 1,000 records.
"""

from __future__ import annotations

import collections
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from bench.harness import check
from bench.server import moto_server
from ecspilot.aws.clients import Clients
from ecspilot.aws.history import History as StateTable
from ecspilot.domain.config import parse_config
from ecspilot.interfaces.cli_insights import insights_report
from ecspilot.interfaces.runtime import Runtime
from ecspilot.interfaces.settings import Settings
from ecspilot_dev.delivery_history import Rates, generate
from ecspilot_dev.local import CallRecorder
from ecspilot_dev.sandbox import ACCOUNT, REGION, create_state_table

TABLE = "ecspilot-bench-insights"
RATES = Rates(failed=0.06, rolled_back=0.03, crash_loop=0.02)
PER_DAY = 3.5  # pushes a day into each chain's first stage: about 10,000 records in 90 days


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.2f} h"


def main() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    history = generate(chains=16, singles=2, days=90, per_day=PER_DAY, rates=RATES, now=now)
    with moto_server():
        session = boto3.Session(region_name=REGION)
        recorder = CallRecorder().attach(session)
        clients = Clients(session=session, region=REGION)
        create_state_table(clients, TABLE)
        started = time.perf_counter()
        written = history.write(StateTable(clients.dynamodb, TABLE))
        write_seconds = time.perf_counter() - started
        rt = Runtime.build(
            settings=Settings(table_name=TABLE, region=REGION, account_id=ACCOUNT),
            config=parse_config(history.config()),
            clients=clients,
        )
        rows: list[dict[str, Any]] = []
        for days in (30, 90):
            recorder.reset()
            report = insights_report(rt, now - timedelta(days=days), [], now)
            ops = collections.Counter(recorder.ops())
            check(ops.get("Scan", 0) == 0, f"insights scanned: {dict(ops)}")
            check(ops["Query"] == report["reads"]["queries"], f"queries: {dict(ops)} vs {report['reads']}")
            since = datetime.fromisoformat(report["since"].replace("Z", "+00:00"))
            pushes = history.pushes()
            for svc in report["services"]:
                truth = history.truth(svc["name"], since, now, pushes)
                cfr = svc["change_failure_rate"]
                check(
                    (cfr["failed"], cfr["deployments"]) == (truth["failed"], truth["changes"]),
                    f"{svc['name']}: {cfr} vs {truth}",
                )
                lead = (svc["lead_time"]["p50_seconds"], truth["lead_p50"])
                # within rounding: the records keep milliseconds, the report tenths of a second
                check(None not in lead and abs(lead[0] - lead[1]) < 1, f"{svc['name']}: lead time {lead}")
            rows.append({"days": days, "report": report, "ops": ops})
    print(
        f"\n## insights: 50 services, 90 days, {written} records written in {write_seconds:.1f} s (moto server)\n"
    )
    print("| key | put in | measured (90 days, all services) |")
    print("| --- | --- | --- |")
    overall = rows[-1]["report"]["overall"]
    kinds = collections.Counter(
        e.failure for es in history.entries.values() for e in es if e.trigger != "rollback"
    )
    changes = sum(kinds.values())
    print(
        f"| change failure rate | {_pct(RATES.total)} (circuit breaker {_pct(RATES.failed)}, "
        f"`ecspilot rollback` {_pct(RATES.rolled_back)}, crash loop {_pct(RATES.crash_loop)}) | "
        f"{_pct(overall['change_failure_rate']['rate'])} (drawn: {_pct(kinds['failed'] / changes)}, "
        f"{_pct(kinds['rolled_back'] / changes)}, {_pct(kinds['crash_loop'] / changes)}) |"
    )
    stages = collections.defaultdict(list)
    for svc in rows[-1]["report"]["services"]:
        stages[
            svc["name"].rsplit("-", 1)[-1] if svc["promoted_from"] or "app" in svc["name"] else "single"
        ].append(svc["deployment_frequency"]["per_day"])
    for stage, expected in (("dev", PER_DAY), ("staging", PER_DAY / 2), ("prod", PER_DAY / 4)):
        measured = sum(stages[stage]) / len(stages[stage])
        print(
            f"| deployments a day, {stage} | about {expected:.2f} (every 2nd release promoted, less "
            f"failures) | {measured:.2f} |"
        )
    lead, restore = overall["lead_time"], overall["time_to_restore"]
    print(
        f"| lead time p50 / p90 | push -> 5-15 min (+1 h bake a stage) | {_hours(lead['p50_seconds'])} / {_hours(lead['p90_seconds'])} |"
    )
    print(
        f"| time to restore p50 / p90 | minutes (rollbacks) to hours (crash loops) | "
        f"{_hours(restore['p50_seconds'])} / {_hours(restore['p90_seconds'])} |"
    )
    print("\n| period | records read | Query requests | Scan | per service | per 1,000 records | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        reads = row["report"]["reads"]
        per_k = reads["queries"] / max(reads["records"], 1) * 1000
        print(
            f"| {row['days']} days | {reads['records']} | {reads['queries']} | {row['ops'].get('Scan', 0)} | "
            f"{reads['queries'] / len(row['report']['services']):.2f} | {per_k:.1f} | {reads['seconds']:.2f} |"
        )


if __name__ == "__main__":
    main()
