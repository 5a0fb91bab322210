"""``ecspilot status --html FILE``: a self-contained page, rendered by headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ecspilot.interfaces.cli import main
from ecspilot.interfaces.runtime import Runtime
from tests.functional.test_history_and_status_cli import _ecs_deployment_ids, filled  # noqa: F401
from tests.rendered import CHROMIUM, NO_CHROMIUM, printed_text


@pytest.mark.parametrize("output", ["table", "json"])
def test_status_html_is_self_contained_with_tables_and_a_coloured_timeline(
    filled: Runtime,  # noqa: F811
    tmp_path: Path,
    output: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    page = tmp_path / "status.html"
    assert main(["status", "--output", output, "--html", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    # no external asset: no src/href, no url(), no script
    assert not re.search(r"\b(src|href)\s*=|url\(|<script|<link", html)
    # the timeline has one bar per deployment record, coloured by outcome
    statuses = re.findall(r'class="bar" data-status="(\w+)"', html)
    assert sorted(statuses) == ["COMPLETED", "COMPLETED", "ROLLED_BACK"]
    assert "background:#c62828" not in html.split("<h2>Deployment timeline")[1].split("</p>", 1)[1]
    assert "prod/web" in html
    assert "nightly-report" in html
    assert "report=1,log-router=137" in html


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_status_html_renders_in_headless_chromium(filled: Runtime, tmp_path: Path) -> None:  # noqa: F811
    page = tmp_path / "status.html"
    assert main(["status", "--html", str(page)]) == 0
    text = printed_text(page)
    flat = re.sub(r"[^\w/()]", "", text)  # table cells wrap (and hyphenate) in print
    for expected in (
        "ecspilot status",
        "Services",
        "prod/web",
        "ROLLED_BACK",
        "(v2)",
        "Jobs",
        "nightly-report",
    ):
        assert re.sub(r"[^\w/()]", "", expected) in flat
    assert "Deploymenttimeline" in flat
