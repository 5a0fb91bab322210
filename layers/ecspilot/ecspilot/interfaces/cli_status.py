"""``ecspilot history`` and ``ecspilot status`` (text, JSON, and ``status --html FILE``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ecspilot.domain.images import short_digest
from ecspilot.errors import SettingsError
from ecspilot.interfaces.present import as_json, say, table
from ecspilot.interfaces.status import history_rows, job_status, resolve, service_status

NO_TABLE = (
    "no state table: set ECSPILOT_TABLE to the stack's state table (output StateTableName) "
    "to see deployments and runs"
)


def require_table(rt: Any) -> None:
    """``history`` has nothing to show without the state table: say so in one line (exit 2)."""
    if not rt.settings.table_name:
        raise SettingsError(NO_TABLE)


def print_history(rt: Any, name: str, limit: int = 20, output: str = "table") -> int:
    """``ecspilot history NAME``: the newest deployments of a service, or runs of a job."""
    kind, _, _ = resolve(rt.config, name)  # an unknown name is bad input before any AWS call
    require_table(rt)
    kind, rows = history_rows(rt.config, rt.history, name, limit)
    if output == "json":
        as_json([r["record"] for r in rows])
        return 0
    _, cluster, target = resolve(rt.config, name)
    if kind == "job":
        say(f"job {target} (cluster {cluster}): last {len(rows)} run(s), newest first")
        table(rows, ["started", "status", "trigger", "task", "exit", "duration", "reason"])
    else:
        say(f"service {cluster}/{target}: last {len(rows)} deployment(s), newest first")
        table(rows, ["started", "status", "trigger", "tag", "digest", "to", "duration", "stage", "reason"])
    return 0


def print_status(rt: Any, output: str = "table", html: str | None = None) -> int:
    """``ecspilot status``: what each configured service runs and how its last deployment went,
    and each job's last run; ``html``: also write the page with the deployment timelines."""
    if not rt.settings.table_name:
        # what runs is still worth showing; the history columns stay empty, said once on stderr
        say(f"note: {NO_TABLE}", out=sys.stderr)
    services, jobs = service_status(rt.config, rt.clients.ecs, rt.history), job_status(rt.config, rt.history)
    if html:
        write_html(rt, services, jobs, html)
    if output == "json":
        as_json({"services": [s.as_dict() for s in services], "jobs": [j.as_dict() for j in jobs]})
        return 0
    say("services")
    table(
        [
            {
                "service": f"{s.cluster}/{s.service}",
                "task def": s.task_definition or "-",
                "image": ", ".join(f"{c}={t}" for c, t in s.images.items()) or "-",
                "digest": ", ".join(short_digest(d) for d in s.digests.values()) or "-",
                "last deployment": s.last_deployment
                + (f" ({s.last_deployment_tag})" if s.last_deployment_tag else ""),
                "at": s.last_deployment_at,
                "stage": s.stage,
                "note": s.problem or (s.last_deployment_reason if s.last_deployment != "COMPLETED" else ""),
            }
            for s in services
        ],
        ["service", "task def", "image", "digest", "last deployment", "at", "stage", "note"],
    )
    say("jobs")
    table(
        [
            {
                "job": j.name,
                "last run": j.last_run,
                "at": j.last_run_at,
                "trigger": j.trigger,
                "exit": ",".join(f"{k}={v}" for k, v in j.exit_codes.items()),
                "note": j.reason if j.last_run not in ("SUCCEEDED", "-") else "",
            }
            for j in jobs
        ],
        ["job", "last run", "at", "trigger", "exit", "note"],
    )
    if html:
        say(f"wrote {html}")
    return 0


def write_html(rt: Any, services: Any, jobs: Any, path: str) -> None:
    from ecspilot.errors import EventError  # noqa: PLC0415
    from ecspilot.interfaces.status_html import render  # noqa: PLC0415

    deployments = {
        f"{s.cluster}/{s.service}": rt.history.deployments(s.cluster, s.service, limit=50) for s in services
    }
    try:
        Path(path).write_text(render(services, jobs, deployments), encoding="utf-8")
    except OSError as exc:
        raise EventError(f"cannot write {path}: {exc.strerror or exc}") from exc
