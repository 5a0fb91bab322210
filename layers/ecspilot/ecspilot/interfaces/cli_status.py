"""``ecspilot history`` and ``ecspilot status`` (text, JSON, and ``status --html FILE``)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ecspilot.domain.images import short_digest
from ecspilot.domain.keys import state_keys
from ecspilot.errors import ConfigError, SettingsError
from ecspilot.interfaces.present import as_json, say, table
from ecspilot.interfaces.status import history_rows, job_status, resolve, service_status
from ecspilot.interfaces.status_health import detail_lines, health_row, service_health
from ecspilot.interfaces.status_places import Place, service_places

NO_TABLE = (
    "no state table: set ECSPILOT_TABLE to the stack's state table (output StateTableName) "
    "to see deployments and runs"
)


def own_origin(rt: Any) -> tuple[str | None, str | None]:
    """ecspilot's (account id, region): a service elsewhere is keyed with its account and region."""
    return rt.settings.account_id, rt.settings.region


def places(rt: Any, services: Any = None) -> dict[str, Place]:
    """Where each service is read (its account's assumed-role clients, one AssumeRole per account
    and region for the whole run) and keyed (:mod:`.status_places`)."""
    from ecspilot.aws.accounts import sessions_of  # noqa: PLC0415 - only configs with accounts use it

    settings = rt.settings
    sessions = sessions_of(rt.clients, settings.region, "cli", settings.max_workers)
    return service_places(rt.config, rt.clients, sessions, own_origin(rt), services)


def require_table(rt: Any) -> None:
    """``history`` has nothing to show without the state table: say so in one line (exit 2)."""
    if not rt.settings.table_name:
        raise SettingsError(NO_TABLE)


def print_history(rt: Any, name: str, limit: int = 20, output: str = "table") -> int:
    """``ecspilot history NAME``: the newest deployments of a service, or runs of a job."""
    kind, _, _ = resolve(rt.config, name)  # an unknown name is bad input before any AWS call
    require_table(rt)
    kind, rows = history_rows(rt.config, rt.history, name, limit, own_origin(rt))
    if output == "json":
        as_json([r["record"] for r in rows])
        return 0
    _, cluster, target = resolve(rt.config, name, own_origin(rt))
    if kind == "job":
        say(f"job {target} (cluster {cluster}): last {len(rows)} run(s), newest first")
        table(rows, ["started", "status", "trigger", "task", "exit", "duration", "reason"])
    else:
        say(f"service {cluster}/{target}: last {len(rows)} deployment(s), newest first")
        table(rows, ["started", "status", "trigger", "tag", "digest", "to", "duration", "stage", "reason"])
    return 0


def print_status(rt: Any, output: str = "table", html: str | None = None, service: str | None = None) -> int:
    """``ecspilot status``: what each configured service runs and how its last deployment went,
    its health, and each job's last run; ``html``: also write the page with the deployment
    timelines; ``service``: that one service in detail (:mod:`.status_health`)."""
    if service is not None:
        return print_service_health(rt, service, output)
    if not rt.settings.table_name:
        # what runs is still worth showing; the history columns stay empty, said once on stderr
        say(f"note: {NO_TABLE}", out=sys.stderr)
    from ecspilot.interfaces.cli_freeze import freeze_rows  # noqa: PLC0415 - issue 25

    frozen = freeze_rows(rt, datetime.now(UTC), scheduled=False)  # at the top: automation is stopped
    where = places(rt)
    services = service_status(rt.config, rt.clients.ecs, rt.history, where)
    jobs = job_status(rt.config, rt.history)
    health = service_health(rt.config, rt.clients, rt.history, datetime.now(UTC), places=where)
    if html:
        write_html(rt, services, jobs, html, frozen)
    if output == "json":
        as_json(
            {
                "freezes": frozen,
                "services": [s.as_dict() for s in services],
                "jobs": [j.as_dict() for j in jobs],
                "health": [h.as_dict() for h in health],
            }
        )
        return _partial(services)
    if frozen:
        say("FROZEN: automated changes are deferred (rollbacks and job runs still work)")
        table(frozen, ["name", "kind", "services", "end", "by", "reason"])
    say("services")
    table(
        [
            {
                "service": s.label,
                "task def": s.task_definition or "-",
                "image": ", ".join(f"{c}={t}" for c, t in s.images.items()) or "-",
                "digest": ", ".join(
                    short_digest(d) + (f" ({s.versions[c]})" if s.versions.get(c) else "")
                    for c, d in s.digests.items()
                )
                or "-",
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
    say("health")
    table([health_row(h) for h in health], ["service", "tasks", "targets", "replaced 1h", "note"])
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
    return _partial(services)


def _partial(services: Any) -> int:
    """1 when some services could not be read (their rows say why; the rest showed), else 0."""
    failed = [s.label for s in services if s.failed]
    if failed:
        say(f"error: {len(failed)} service(s) could not be read: {', '.join(failed)}", out=sys.stderr)
    return 1 if failed else 0


def print_service_health(rt: Any, name: str, output: str = "table") -> int:
    """``ecspilot status SERVICE``: one configured service's health in detail."""
    own = own_origin(rt)
    kind, cluster, target = resolve(rt.config, name, own)
    keys = state_keys(rt.config, own)
    chosen = [s for s in rt.config.services if keys[s.name] == (cluster, target)][:1]
    if kind != "service" or not chosen:
        raise ConfigError(f"{name!r} is not a configured service")
    where = places(rt, chosen)
    [health] = service_health(rt.config, rt.clients, rt.history, datetime.now(UTC), chosen, where)
    if output == "json":
        as_json(health.as_dict())
        return 0
    for line in detail_lines(health):
        say(line)
    return 0


def write_html(rt: Any, services: Any, jobs: Any, path: str, frozen: Any = ()) -> None:
    from ecspilot.errors import EventError  # noqa: PLC0415
    from ecspilot.interfaces.status_html import render  # noqa: PLC0415

    deployments = {
        s.label: rt.history.deployments(s.cluster, s.state_service or s.service, limit=50) for s in services
    }
    try:
        Path(path).write_text(render(services, jobs, deployments, freezes=frozen), encoding="utf-8")
    except OSError as exc:
        raise EventError(f"cannot write {path}: {exc.strerror or exc}") from exc
