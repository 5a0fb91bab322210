"""``ecspilot insights`` against moto: a generated delivery history in the state table, the CLI's
JSON equal to what the generator put in, the requests it takes, its exit codes and its page."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecspilot.interfaces.cli import main
from ecspilot_dev.delivery_history import History, Rates, generate
from ecspilot_dev.local import CallRecorder
from tests.conftest import TABLE, MakeRuntime
from tests.faults import Faults
from tests.rendered import CHROMIUM, NO_CHROMIUM, printed_text

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def generated(
    make_runtime: MakeRuntime, clients: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> History:
    """Two three-stage chains and one single service, 25 days of history ending now, at
    failure rates high enough that every kind occurs."""
    history = generate(chains=2, singles=1, days=25, per_day=2, rates=Rates(0.1, 0.06, 0.06), seed=3, now=NOW)
    rt = make_runtime(history.config())
    history.write(rt.history)
    path = tmp_path / "ecspilot.yaml"
    path.write_text(yaml.safe_dump(history.config()), encoding="utf-8")
    monkeypatch.setenv("ECSPILOT_CONFIG", str(path))
    monkeypatch.setenv("ECSPILOT_TABLE", TABLE)
    return history


def insights_json(argv: list[str], capsys: pytest.CaptureFixture[str], session: Any = None) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["insights", "--output", "json", *argv], session=session) == 0
    return dict(json.loads(capsys.readouterr().out))


def assert_matches(keys: dict[str, Any], truth: dict[str, Any]) -> None:
    assert keys["deployment_frequency"]["completed"] == truth["completed"]
    assert keys["deployment_frequency"]["per_day"] == pytest.approx(truth["per_day"], abs=1e-3)
    assert keys["lead_time"]["p50_seconds"] == pytest.approx(truth["lead_p50"], abs=0.1)
    assert keys["lead_time"]["p90_seconds"] == pytest.approx(truth["lead_p90"], abs=0.1)
    assert keys["lead_time"]["unknown"] == 0
    cfr = keys["change_failure_rate"]
    assert (cfr["failed"], cfr["deployments"]) == (truth["failed"], truth["changes"])
    assert cfr["rate"] == pytest.approx(truth["rate"], abs=1e-4)
    ttr = keys["time_to_restore"]
    assert ttr["p50_seconds"] == pytest.approx(truth["restore_p50"], abs=0.1)
    assert ttr["p90_seconds"] == pytest.approx(truth["restore_p90"], abs=0.1)
    assert ttr["unrestored"] == truth["unrestored"]


def test_insights_json_equals_the_generated_history_for_every_service_and_chain(
    generated: History, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN insights reads the last 21 days
    report = insights_json(["--since", "21d"], capsys)
    since = datetime.fromisoformat(report["since"].replace("Z", "+00:00"))
    until = datetime.fromisoformat(report["until"].replace("Z", "+00:00"))
    pushes = generated.pushes()
    # THEN each service's four keys are what the generator put in
    names = [s["name"] for s in report["services"]]
    assert names == [n for chain in generated.chains for n in chain]
    for svc in report["services"]:
        assert_matches(svc, generated.truth(svc["name"], since, until, pushes))
    # AND failures of every kind happened, and were counted
    assert sum(s["change_failure_rate"]["failed"] for s in report["services"]) > 5
    # AND each chain is its last stage's keys, from the push into its first stage
    assert [c["name"] for c in report["chains"]] == [" -> ".join(c) for c in generated.chains[:2]]
    for chain, stages in zip(report["chains"], generated.chains, strict=False):
        assert_matches(chain, generated.truth(stages[-1], since, until, pushes))
        assert [s["service"] for s in chain["stages"]] == stages
        releases = chain["releases"]
        # every second release is promoted (and some fail on the way): many never reach prod
        assert 0 < releases["reached_last_stage"] < releases["started"]
    # AND the overall keys pool every service
    total = sum(s["deployment_frequency"]["completed"] for s in report["services"])
    assert report["overall"]["deployment_frequency"]["completed"] == total
    assert len(report["overall"]["weekly"]) in (3, 4)


def test_insights_reads_one_query_per_service_and_never_scans(
    generated: History, clients: Any, recorder: CallRecorder, capsys: pytest.CaptureFixture[str]
) -> None:
    recorder.reset()
    report = insights_json(["--since", "14d"], capsys, session=clients.base_session())
    services = len(report["services"])
    assert recorder.count("Scan") == 0
    assert recorder.count("Query") == services == report["reads"]["queries"]
    assert report["reads"]["records"] > 0


def test_a_service_filter_reports_that_service_and_reads_its_chain_only(
    generated: History, clients: Any, recorder: CallRecorder, capsys: pytest.CaptureFixture[str]
) -> None:
    recorder.reset()
    report = insights_json(["--service", "app01-prod"], capsys, session=clients.base_session())
    assert [s["name"] for s in report["services"]] == ["app01-prod"]
    assert [c["name"] for c in report["chains"]] == ["app01-dev -> app01-staging -> app01-prod"]
    assert recorder.count("Query") == 3
    # several names after one option, or the option repeated (the ECS name of a unique service too)
    for argv in (
        ["--service", "app00-dev", "solo00-prod"],
        ["--service", "app00-dev", "--service", "prod/solo00"],
    ):
        report = insights_json(argv, capsys)
        assert [s["name"] for s in report["services"]] == ["app00-dev", "solo00-prod"]
        assert [c["name"] for c in report["chains"]] == ["app00-dev -> app00-staging -> app00-prod"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--service", "nope"], "'nope' is not a configured service"),
        (["--since", "30"], "neither a duration"),
        (["--since", "2999-01-01"], "not in the past"),
        (["--output", "yaml"], "invalid choice"),
    ],
)
def test_bad_input_is_exit_2(
    generated: History, argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["insights", *argv])
    except SystemExit as exc:  # argparse refuses the option itself
        code = int(str(exc.code))
    assert code == 2
    err = capsys.readouterr().err
    assert "error: " in err
    assert says in err


def test_a_failed_read_is_exit_1_with_one_error_line(
    generated: History, clients: Any, faults: Faults, capsys: pytest.CaptureFixture[str]
) -> None:
    faults.fail("Query")
    assert main(["insights"], session=clients.base_session()) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: reading the deployment records failed")
    assert len(err.strip().splitlines()) == 1


def test_an_empty_table_reports_zero_deployments_and_no_other_key(
    make_runtime: MakeRuntime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = generate(chains=1, singles=0, days=1).config()
    make_runtime(config)
    path = tmp_path / "ecspilot.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setenv("ECSPILOT_CONFIG", str(path))
    monkeypatch.setenv("ECSPILOT_TABLE", TABLE)
    report = insights_json([], capsys)
    for svc in report["services"]:
        assert svc["deployment_frequency"]["completed"] == 0
        assert svc["lead_time"]["p50_seconds"] is None
        assert svc["change_failure_rate"]["rate"] is None
    assert report["chains"][0]["releases"] == {"started": 0, "reached_last_stage": 0, "not_reached": 0}
    capsys.readouterr()
    assert main(["insights"]) == 0
    out = capsys.readouterr().out
    assert "app00-prod" in out
    assert "0.00" in out


def test_the_table_names_each_service_chain_and_band(
    generated: History, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["insights", "--since", "21d"]) == 0
    out = capsys.readouterr().out
    for column in ("NAME", "PER WEEK", "LEAD P50", "LEAD P90", "FAILURE RATE", "RESTORE P50", "BANDS"):
        assert column in out
    assert "chain app00-dev -> app00-staging -> app00-prod:" in out
    assert "Accelerate State of DevOps Report 2021" in out
    assert re.search(r"(elite|high|medium|low)/(elite|high|medium|low|-)/", out)


def test_the_html_page_is_self_contained_with_a_chart_per_key(
    generated: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "insights.html"
    assert main(["insights", "--since", "21d", "--html", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"\b(src|href)\s*=|url\(|<script|<link", html)
    for title in (
        "Deployments per week",
        "Lead time over time (hours)",
        "Change failure rate per week (%)",
        "Lead time from the push, by stage (hours)",
    ):
        assert f'aria-label="{title}"' in html
    assert html.count("<svg") == 3 + 2 * 2
    assert "Chain app01-dev -&gt; app01-staging -&gt; app01-prod" in html


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_the_html_page_renders_in_headless_chromium_with_each_keys_value(
    generated: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "insights.html"
    report = insights_json(["--since", "21d", "--html", str(page)], capsys)
    text = printed_text(page)
    flat = re.sub(r"\s+", "", text)
    overall = report["overall"]
    rate = overall["change_failure_rate"]
    for expected in (
        "ecspilot insights",
        "Deployments per week",
        "Lead time over time",
        "Change failure rate per week",
        f"{overall['deployment_frequency']['per_week']:.2f}",
        f"{rate['rate'] * 100:.1f}% ({rate['failed']} of {rate['deployments']})",
        "app00-staging",
        "Performance bands",
    ):
        assert re.sub(r"\s+", "", expected) in flat, expected
