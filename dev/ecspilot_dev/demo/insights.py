"""The demo's last chapter: ``ecspilot insights`` over the push and tracking chapters' story."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ecspilot.interfaces.present import say
from ecspilot_dev.demo.base import Demo


def chapter_insights(demo: Demo) -> None:
    """The four DORA keys of what the push and tracking chapters did to web and web-canary."""
    say("\n=== Insights: the four DORA keys of this story ===")
    demo.step("$ ecspilot insights --since 1d  (the push and tracking chapters' deployments)")
    code, out = demo.cli(["insights", "--since", "1d"])
    demo.check(code == 0, f"exit code 0, got {code}")
    demo.check(all(s in out for s in ("web-canary", "LEAD P50", "FAILURE RATE")), "a row per service")
    with demo.silenced():
        code, out = demo.cli(["insights", "--since", "1d", "--service", "web", "--output", "json"])
    report = json.loads(out)
    [web] = report["services"]
    cfr, freq = web["change_failure_rate"], web["deployment_frequency"]
    demo.note(
        f"web: {freq['completed']} change(s) COMPLETED; {cfr['failed']} of {cfr['deployments']} failed "
        f"(v3, rolled back by the circuit breaker), restored in "
        f"{web['time_to_restore']['p50_seconds']} s by the rollback's COMPLETED; "
        f"{report['reads']['queries']} Query, no Scan"
    )
    demo.check(code == 0, f"exit code 0, got {code}")
    demo.check((freq["completed"], cfr["failed"], cfr["deployments"]) == (2, 1, 3), f"web: {freq}, {cfr}")
    demo.check(web["time_to_restore"]["restored"] == 1, f"v3's failure restored: {web['time_to_restore']}")
    demo.check(report["reads"]["queries"] == 1, f"one Query for one service: {report['reads']}")
    demo.step("$ ecspilot insights --since 1d --html insights.html: the same as one self-contained page")
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "insights.html"
        code, out = demo.cli(["insights", "--since", "1d", "--html", str(page)])
        html = page.read_text(encoding="utf-8")
    demo.check(code == 0, f"exit code 0, got {code}")
    demo.check("<script" not in html and html.count("<svg") == 3, "inline SVG charts, no script")
    demo.end_chapter()
