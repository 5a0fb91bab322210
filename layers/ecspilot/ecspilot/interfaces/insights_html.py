"""``ecspilot insights --html FILE``: one self-contained page (inline CSS and SVG, no script, no
external asset): the four keys with their bands, deployments per week, lead time over time
(p50 and p90), the change failure rate per week, each service, and each promotion chain's
stages side by side.

Pure: it takes the report (``insights --output json``'s shape) and returns the page's text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

GREEN, RED, BLUE, ORANGE, GREY = "#2e7d32", "#c62828", "#1565c0", "#ef6c00", "#9e9e9e"
BAND_COLOURS = {"elite": "#1b5e20", "high": "#2e7d32", "medium": "#f9a825", "low": "#c62828"}
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin-bottom:1.5em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:13px}
th{background:#f0f0f0}
.band{color:#fff;padding:1px 6px;border-radius:3px;font-size:12px}
.charts{display:flex;flex-wrap:wrap;gap:1.5em}
svg{background:#fafafa;border:1px solid #ddd}
svg text{font-size:11px;fill:#333}
"""
W, H, PAD_L, PAD_B, PAD_T = 460, 220, 48, 36, 28


def duration(seconds: float | None) -> str:
    """``42s``, ``12m``, ``3.5h``, ``2.1d`` (``-`` when unknown): the table's and the page's."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _band(band: str | None) -> str:
    if not band:
        return "-"
    return f'<span class="band" style="background:{BAND_COLOURS[band]}">{escape(band)}</span>'


def _frame(title: str, body: str, top: float, legend: Sequence[tuple[str, str]] = ()) -> str:
    plot_h = H - PAD_B - PAD_T
    keys = "".join(
        f'<rect x="{PAD_L + 120 * i}" y="{H - 12}" width="10" height="10" fill="{c}"/>'
        f'<text x="{PAD_L + 14 + 120 * i}" y="{H - 3}">{escape(n)}</text>'
        for i, (n, c) in enumerate(legend)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        f'role="img" aria-label="{escape(title)}"><text x="{PAD_L}" y="16" style="font-weight:bold">'
        f"{escape(title)}</text>"
        f'<line x1="{PAD_L}" y1="{PAD_T + plot_h}" x2="{W - 10}" y2="{PAD_T + plot_h}" stroke="#999"/>'
        f'<text x="4" y="{PAD_T + 8}">{escape(_num(top))}</text><text x="4" y="{PAD_T + plot_h}">0</text>'
        f"{body}{keys}</svg>"
    )


def _short(label: str) -> str:
    """A week's label without its year (``11-02``); any other label as it is."""
    return label[5:] if len(label) == 10 and label[4] == "-" and label[:4].isdigit() else label


def _num(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def bars(title: str, labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[float]]]) -> str:
    """A bar chart, one group per label, one bar per series (values >= 0)."""
    top = max([v for _, _, vs in series for v in vs] + [1.0])
    plot_h, plot_w = H - PAD_B - PAD_T, W - PAD_L - 10
    slot = plot_w / max(len(labels), 1)
    width = max(slot * 0.8 / max(len(series), 1), 1.0)
    parts = []
    for i, label in enumerate(labels):
        x0 = PAD_L + i * slot + slot * 0.1
        for j, (name, colour, values) in enumerate(series):
            h = values[i] / top * plot_h
            parts.append(
                f'<rect x="{x0 + j * width:.1f}" y="{PAD_T + plot_h - h:.1f}" width="{width:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(f"{label} {name}: {values[i]:g}")}</title></rect>'
            )
        if len(labels) <= 8 or i % max(1, len(labels) // 6) == 0:
            parts.append(f'<text x="{x0:.1f}" y="{H - PAD_B + 13}">{escape(_short(label))}</text>')
    return _frame(title, "".join(parts), top, [(n, c) for n, c, _ in series])


def lines(
    title: str, labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[float | None]]]
) -> str:
    """A line chart (a None value breaks the line), one point per label."""
    top = max([v for _, _, vs in series for v in vs if v is not None] + [1.0])
    plot_h, plot_w = H - PAD_B - PAD_T, W - PAD_L - 10
    step = plot_w / max(len(labels) - 1, 1)
    parts = []
    for name, colour, values in series:
        runs: list[list[str]] = [[]]
        for i, v in enumerate(values):
            if v is None:
                runs.append([])
                continue
            x, y = PAD_L + i * step, PAD_T + plot_h - v / top * plot_h
            runs[-1].append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"><title>{escape(name)} {v:g}</title></circle>'
            )
        parts += [
            f'<polyline points="{" ".join(r)}" fill="none" stroke="{colour}" stroke-width="2"/>'
            for r in runs
            if r
        ]
    for i, label in enumerate(labels):
        if len(labels) <= 8 or i % max(1, len(labels) // 6) == 0:
            parts.append(
                f'<text x="{PAD_L + i * step - 12:.1f}" y="{H - PAD_B + 13}">{escape(label[5:])}</text>'
            )
    return _frame(title, "".join(parts), top, [(n, c) for n, c, _ in series])


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body or '<tr><td>(none)</td></tr>'}</tbody></table>"


KEY_COLUMNS = [
    "deployments per week",
    "lead time p50 / p90",
    "change failure rate",
    "time to restore p50 / p90",
]


def key_cells(keys: Mapping[str, Any]) -> list[str]:
    """The four keys of a service, a stage or the whole, each with its band (escaped HTML)."""
    freq, lead = keys["deployment_frequency"], keys["lead_time"]
    cfr, ttr = keys["change_failure_rate"], keys["time_to_restore"]
    rate = (
        "-" if cfr["rate"] is None else f"{cfr['rate'] * 100:.1f}% ({cfr['failed']} of {cfr['deployments']})"
    )
    open_ = f", {ttr['unrestored']} not restored" if ttr["unrestored"] else ""
    return [
        f"{freq['per_week']:.2f} ({freq['per_day']:.2f} a day) {_band(freq['band'])}",
        f"{duration(lead['p50_seconds'])} / {duration(lead['p90_seconds'])} {_band(lead['band'])}",
        f"{escape(rate)} {_band(cfr['band'])}",
        f"{duration(ttr['p50_seconds'])} / {duration(ttr['p90_seconds'])}{escape(open_)} {_band(ttr['band'])}",
    ]


def weekly_charts(rows: Sequence[Mapping[str, Any]]) -> str:
    labels = [str(r["week"]) for r in rows]
    hours = [
        ("lead time p50", BLUE, [_hours(r["lead_time_p50_seconds"]) for r in rows]),
        ("lead time p90", ORANGE, [_hours(r["lead_time_p90_seconds"]) for r in rows]),
    ]
    rates = [100 * r["failed"] / r["deployments"] if r["deployments"] else 0.0 for r in rows]
    return (
        '<div class="charts">'
        + bars(
            "Deployments per week",
            labels,
            [
                ("completed", GREEN, [r["completed"] for r in rows]),
                ("failed", RED, [r["failed"] for r in rows]),
            ],
        )
        + lines("Lead time over time (hours)", labels, hours)
        + bars("Change failure rate per week (%)", labels, [("failure rate", RED, rates)])
        + "</div>"
    )


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def chain_section(chain: Mapping[str, Any]) -> str:
    stages = chain["stages"]
    releases = chain["releases"]
    names = [str(s["service"]) for s in stages]
    side_by_side = bars(
        "Lead time from the push, by stage (hours)",
        names,
        [
            ("p50", BLUE, [_hours(s["lead_time"]["p50_seconds"]) or 0.0 for s in stages]),
            ("p90", ORANGE, [_hours(s["lead_time"]["p90_seconds"]) or 0.0 for s in stages]),
        ],
    )
    per_stage = bars(
        "Deployments per week and failure rate (%), by stage",
        names,
        [
            ("per week", GREEN, [float(s["deployment_frequency"]["per_week"]) for s in stages]),
            ("failure %", RED, [100 * (s["change_failure_rate"]["rate"] or 0.0) for s in stages]),
        ],
    )
    rows = [[escape(str(s["service"])), *key_cells(s)] for s in stages]
    rows.append(["<b>chain (last stage, from the push)</b>", *key_cells(chain)])
    return (
        f"<h3>Chain {escape(str(chain['name']))}</h3>"
        f"<p>{releases['reached_last_stage']} of {releases['started']} release(s) completed in the first stage "
        f"reached the last stage ({releases['not_reached']} did not)</p>"
        + _table(["stage", *KEY_COLUMNS], rows)
        + f'<div class="charts">{side_by_side}{per_stage}</div>'
    )


def thresholds_table(bands: Mapping[str, Any]) -> str:
    freq = bands["deployment_frequency_per_day_at_least"]
    lead = bands["lead_time_seconds_under"]
    restore = bands["time_to_restore_seconds_under"]
    rate = bands["change_failure_rate_at_most"]
    rows = [
        [
            _band(band),
            f"at least {freq[band]:.3g} a day" if band in freq else "less",
            f"under {duration(lead[band])}" if band in lead else "longer",
            f"at most {rate[band] * 100:.0f}%" if band in rate else ("higher" if band == "low" else "-"),
            f"under {duration(restore[band])}" if band in restore else "longer",
        ]
        for band in ("elite", "high", "medium", "low")
    ]
    return _table(["band", *KEY_COLUMNS], rows) + f"<p>thresholds: {escape(str(bands['source']))}</p>"


def render(report: Mapping[str, Any]) -> str:
    """The page of one insights report."""
    overall = report["overall"]
    services = [[escape(str(s["name"])), *key_cells(s)] for s in report["services"]]
    chains = "".join(chain_section(c) for c in report["chains"]) or "<p>no promotion chain configured</p>"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>ecspilot insights</title>'
        f"<style>{STYLE}</style></head><body><h1>ecspilot insights</h1>"
        f"<p>{escape(str(report['since']))} to {escape(str(report['until']))} ({report['days']:g} days), "
        f"{len(report['services'])} service(s)</p><h2>The four keys</h2>"
        + _table(["", *KEY_COLUMNS], [["all services", *key_cells(overall)]])
        + weekly_charts(overall["weekly"])
        + "<h2>Services</h2>"
        + _table(["service", *KEY_COLUMNS], services)
        + "<h2>Promotion chains</h2>"
        + chains
        + "<h2>Performance bands</h2>"
        + thresholds_table(report["bands"])
        + "</body></html>"
    )
