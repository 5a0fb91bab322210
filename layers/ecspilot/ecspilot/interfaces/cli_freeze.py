"""``ecspilot freeze``, ``unfreeze`` and ``freezes`` (issue 25): stop the robot, and say who did.

A CLI freeze lives in the state table (``aws/freezes.py``), audited with the caller's identity
(STS ``GetCallerIdentity``), the time and the reason; every function sees it in its next
invocation. ``freeze --all`` is the kill switch. Exit codes: 0 done, 1 an AWS call failed, 2
bad input (no service or --all, an unknown service, a bad time or duration).
"""

from __future__ import annotations

import argparse
import fnmatch
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ecspilot.aws.freezes import FreezeStore
from ecspilot.domain.stops import Freeze, opening_text, stamp, stops_for, window_open
from ecspilot.errors import AwsError, EventError, SettingsError
from ecspilot.interfaces.present import as_json, say, table
from ecspilot.interfaces.runtime import Runtime

DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")
MAX_DURATION = timedelta(days=366)


def parse_duration(text: str) -> timedelta:
    """``30m``, ``2h``, ``1d``, ``1h30m`` (pure)."""
    match = DURATION_RE.fullmatch(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise EventError(f"--for takes a duration such as 30m, 2h, 1d or 1h30m, got {text!r}")
    days, hours, minutes = (int(g or 0) for g in match.groups())
    span = timedelta(days=days, hours=hours, minutes=minutes)
    if not timedelta(0) < span <= MAX_DURATION:
        raise EventError(f"--for must be between 1 minute and 366 days, got {text!r}")
    return span


def parse_until(text: str, now: datetime) -> datetime:
    """An ISO 8601 time in the future (UTC when it names no zone)."""
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise EventError(
            f"--until takes an ISO 8601 time such as 2026-12-14T09:00:00+01:00, got {text!r}"
        ) from exc
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    if at <= now:
        raise EventError(f"--until {text} is not in the future (now {stamp(now)})")
    return at.astimezone(UTC)


def _names(rt: Runtime) -> list[str]:
    return [s.name for s in rt.config.services] + [d.name for d in rt.config.daemons]


def _targets(args: argparse.Namespace, rt: Runtime, verb: str) -> list[str] | None:
    """The services named (None: --all); each must be (or match) a config service or daemon."""
    if args.all and args.services:
        raise EventError(f"{verb}: give services or --all, not both")
    if args.all:
        return None
    if not args.services:
        raise EventError(f"{verb}: name the services (config names or globs), or give --all")
    names = _names(rt)
    unknown = [s for s in args.services if not any(fnmatch.fnmatchcase(n, s) for n in names)]
    if unknown:
        raise EventError(f"{verb}: no configured service or daemon matches {', '.join(unknown)}")
    return list(dict.fromkeys(args.services))


def caller_arn(rt: Runtime) -> str:
    """Who is freezing: the caller's ARN (STS GetCallerIdentity)."""
    try:
        return str(rt.clients.get("sts").get_caller_identity()["Arn"])
    except (ClientError, BotoCoreError) as exc:
        raise AwsError(f"who are you? GetCallerIdentity failed: {exc}") from exc


def _row(freeze: Freeze, now: datetime) -> dict[str, Any]:
    return {
        "name": freeze.name,
        "kind": freeze.kind,
        "state": "active" if freeze.active(now) else "scheduled",
        "services": ",".join(freeze.services),
        "start": stamp(freeze.start) if freeze.start else freeze.at,
        "end": stamp(freeze.end) if freeze.end else "until lifted",
        "by": freeze.by,
        "reason": freeze.text()
        if freeze.kind != "config"
        else f"{freeze.text()}: {freeze.reason}".rstrip(": "),
    }


def freeze_rows(rt: Runtime, now: datetime, scheduled: bool = True) -> list[dict[str, Any]]:
    """The active (and ``scheduled``) freezes of every kind, as rows (``freezes``, ``status``)."""
    stops = stops_for(rt.config, FreezeStore(rt.history).read(rt.config.incidents), now)
    return [_row(f, now) for f in [*stops.active(), *(stops.scheduled() if scheduled else [])]]


def freeze(args: argparse.Namespace, rt: Runtime) -> int:
    now = rt.clock().astimezone(UTC)
    services = _targets(args, rt, "freeze")
    if not args.reason.strip():
        raise EventError("freeze: --reason must say why")
    until = (
        now + parse_duration(args.duration)
        if args.duration
        else parse_until(args.until, now)
        if args.until
        else None
    )
    by = caller_arn(rt)
    made = FreezeStore(rt.history).add(services or ["*"], args.reason.strip(), by, now, until)
    row = _row(made, now)
    if args.output == "json":
        as_json({"freeze": row})
    else:
        what = "everything (the kill switch)" if services is None else ", ".join(services)
        say(f"froze {what} {'until ' + row['end'] if until else 'until lifted'}: {made.text()}")
    return 0


def unfreeze(args: argparse.Namespace, rt: Runtime) -> int:
    now = rt.clock().astimezone(UTC)
    services = _targets(args, rt, "unfreeze")
    lifted, kept = FreezeStore(rt.history).lift(services, now)
    if args.output == "json":
        as_json({"lifted": [_row(f, now) for f in lifted], "still_frozen_by": [_row(f, now) for f in kept]})
        return 0
    if not lifted:
        say("no CLI freeze to lift")
    for f in lifted:
        say(f"lifted {f.name} ({', '.join(f.services)}): {f.text()}")
    for f in kept:
        say(f"still frozen by {f.name} ({', '.join(f.services)}): lift it with unfreeze --all")
    if lifted:
        say("what they deferred deploys at the next reconcile (or run: ecspilot reconcile)")
    return 0


def list_freezes(args: argparse.Namespace, rt: Runtime) -> int:
    now = rt.clock().astimezone(UTC)
    rows = freeze_rows(rt, now)
    window_of = {s.name: s.window for s in rt.config.services if s.window}
    window_of.update({d.name: d.window for d in rt.config.daemons if d.window})
    closed = [
        {
            "window": name,
            "services": ",".join(sorted(s for s, w in window_of.items() if w == name)),
            "opens": opening_text(name, window, now),
        }
        for name, window in sorted(rt.config.windows.items())
        if not window_open(window, now)
    ]
    if args.output == "json":
        as_json({"freezes": rows, "closed_windows": closed, "now": stamp(now)})
        return 0
    if rows:
        table(rows, ["name", "kind", "state", "services", "start", "end", "by", "reason"])
    else:
        say("no active or scheduled freeze")
    for w in closed:
        say(f"{w['opens']} ({w['services'] or 'no service uses it'})")
    return 0


def run(args: argparse.Namespace, rt: Runtime) -> int:
    """Dispatch ``freeze``, ``unfreeze`` and ``freezes``. ``freeze`` and ``unfreeze`` need the
    state table (where the freezes live): without it, exit 2 before any AWS call."""
    if args.command != "freezes" and not rt.settings.table_name:
        raise SettingsError(
            f"{args.command}: no state table: set ECSPILOT_TABLE to the stack's state table (output StateTableName)"
        )
    verbs = {"freeze": freeze, "unfreeze": unfreeze, "freezes": list_freezes}
    return verbs[args.command](args, rt)


__all__ = ["freeze_rows", "parse_duration", "parse_until", "run"]
