"""``ecspilot status --html FILE``: one self-contained page (inline CSS, no script, no external
asset) with the status tables and a deployment timeline per service, bars coloured by outcome.

Pure: it takes what :mod:`ecspilot.interfaces.status` read and returns the page's text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from ecspilot.domain.images import short_digest
from ecspilot.interfaces.status import JobStatus, ServiceStatus

#: deployment status -> bar colour (the legend shows them)
COLOURS = {
    "COMPLETED": "#2e7d32",
    "IN_PROGRESS": "#1565c0",
    "FAILED": "#c62828",
    "ROLLED_BACK": "#ef6c00",
}
OTHER_COLOUR = "#757575"
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin-bottom:2em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:13px}
th{background:#f0f0f0}
.lane{position:relative;height:22px;background:#fafafa;border:1px solid #ddd;margin:4px 0 14px}
.bar{position:absolute;top:2px;height:18px;min-width:3px;border-radius:3px}
.legend span{display:inline-block;padding:2px 8px;margin-right:6px;color:#fff;border-radius:3px}
.axis{display:flex;justify-content:space-between;font-size:11px;color:#666}
"""


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body or '<tr><td>(none)</td></tr>'}</tbody></table>"


def _timeline(name: str, records: Sequence[Mapping[str, Any]], now: datetime) -> str:
    spans = []
    for r in records:
        start = _when(r.get("started_at"))
        if start is not None:
            end = _when(r.get("finished_at")) or (now if r.get("status") == "IN_PROGRESS" else start)
            spans.append((start, max(end, start), str(r.get("status", "")), r))
    if not spans:
        return f"<h3>{escape(name)}</h3><p>no deployments recorded</p>"
    first = min(s for s, _, _, _ in spans)
    last = max(e for _, e, _, _ in spans)  # every end is at or after its start
    width = max((last - first).total_seconds(), 1.0)
    bars = []
    for start, end, status, r in sorted(spans, key=lambda s: s[0]):
        left = (start - first).total_seconds() / width * 97
        size = max((end - start).total_seconds() / width * 97, 0.6)
        title = f"{status} {r.get('image_tag') or r.get('trigger') or ''} {r.get('started_at', '')}".strip()
        colour = COLOURS.get(status, OTHER_COLOUR)
        bars.append(
            f'<div class="bar" data-status="{escape(status)}" title="{escape(title)}" '
            f'style="left:{left:.2f}%;width:{size:.2f}%;background:{colour}"></div>'
        )
    return (
        f'<h3>{escape(name)}</h3><div class="lane">{"".join(bars)}</div>'
        f'<div class="axis"><span>{escape(first.isoformat(timespec="seconds"))}</span>'
        f"<span>{escape(last.isoformat(timespec='seconds'))}</span></div>"
    )


def _frozen(freezes: Sequence[Mapping[str, Any]]) -> str:
    """The active freezes, at the top (issue 25): automation is stopped for these."""
    if not freezes:
        return ""
    rows = [[str(f.get(k, "")) for k in ("name", "kind", "services", "end", "by", "reason")] for f in freezes]
    return '<h2 class="frozen">Frozen</h2>' + _table(
        ["name", "kind", "services", "end", "by", "reason"], rows
    )


def render(
    services: Sequence[ServiceStatus],
    jobs: Sequence[JobStatus],
    deployments: Mapping[str, Sequence[Mapping[str, Any]]],
    now: datetime | None = None,
    freezes: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The page: services and jobs tables, then one timeline per service (``deployments``:
    ``cluster/service`` -> its records, any order)."""
    now = now or datetime.now(UTC)
    service_rows = [
        [
            s.label,
            s.task_definition or "-",
            ", ".join(f"{c}={t}" for c, t in s.images.items()) or "-",
            ", ".join(
                short_digest(d) + (f" ({s.versions[c]})" if s.versions.get(c) else "")
                for c, d in s.digests.items()
            )
            or "-",
            s.last_deployment + (f" ({s.last_deployment_tag})" if s.last_deployment_tag else ""),
            s.last_deployment_at,
            s.problem or (s.last_deployment_reason if s.last_deployment != "COMPLETED" else ""),
        ]
        for s in services
    ]
    job_rows = [
        [
            j.name,
            j.last_run,
            j.last_run_at,
            j.trigger,
            ",".join(f"{k}={v}" for k, v in j.exit_codes.items()),
            j.reason if j.last_run not in ("SUCCEEDED", "-") else "",
        ]
        for j in jobs
    ]
    legend = "".join(
        f'<span style="background:{c}">{escape(s)}</span>'
        for s, c in [*COLOURS.items(), ("other", OTHER_COLOUR)]
    )
    timelines = "".join(_timeline(name, records, now) for name, records in deployments.items())
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>ecspilot status</title>'
        f"<style>{STYLE}</style></head><body><h1>ecspilot status</h1>"
        f"<p>generated {escape(now.isoformat(timespec='seconds'))}</p>"
        + _frozen(freezes)
        + "<h2>Services</h2>"
        + _table(["service", "task def", "image", "digest", "last deployment", "at", "note"], service_rows)
        + "<h2>Jobs</h2>"
        + _table(["job", "last run", "at", "trigger", "exit", "note"], job_rows)
        + f'<h2>Deployment timeline</h2><p class="legend">{legend}</p>{timelines}</body></html>'
    )
