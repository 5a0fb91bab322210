"""``ecspilot promote``, ``ecspilot approve`` and the promotion part of ``ecspilot history`` (issue 13).

Exit codes as every verb (README "Exit codes"): 0 done (promoted, approved, already in sync, or
a dry run), 1 the promotion did not happen (a gate holds it, an AWS call failed), 2 bad input
(not a promoted service, a digest its source never COMPLETED without ``--force``, nothing awaits
approval).
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

from ecspilot.domain.images import short_digest
from ecspilot.errors import PromotionInputError
from ecspilot.interfaces.cli_parser import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from ecspilot.interfaces.present import as_json, say, table
from ecspilot.promotion.handler import promoter
from ecspilot.promotion.manual import approve_promotion, promote_by_hand, promoted_service
from ecspilot.promotion.records import PromotionRecords
from ecspilot.promotion.runbook import Promotion


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no user name in this environment
        return "cli"


def _row(p: Promotion) -> dict[str, Any]:
    action = p.action()
    release = p.release
    return {
        "target": p.target.name,
        "source": release.source if release else "-",
        "source_deployment": release.deployment_id if release else "-",
        "digest": short_digest(release.digest) if release else "-",
        "change": action.change,
        "applied": action.applied,
        "detail": action.detail,
        "deployment": p.deployment_id or "-",
        "gates": [f"{g}: {r}" for g, r in p.verdict.gates],
    }


def _show(rows: list[dict[str, Any]], output: str, head: str) -> None:
    if output == "json":
        as_json(rows)
        return
    say(head)
    table(rows, ["target", "source", "source_deployment", "digest", "detail", "deployment"])
    for row in rows:
        for gate in row["gates"]:
            say(f"  {row['target']}: {gate}")


def cmd_promote(args: Any, rt: Any) -> int:
    """``ecspilot promote TARGET --digest sha256:... [--force] [--dry-run]``."""
    try:
        p = promote_by_hand(
            promoter(rt, "cli", "manual"), args.target, args.digest, _who(), args.force, args.dry_run
        )
    except PromotionInputError as exc:
        say(f"error: {exc}", out=sys.stderr)
        return EXIT_BAD_INPUT
    _show([_row(p)], args.output, f"{'dry run: ' if args.dry_run else ''}promote {args.target}")
    if p.error:
        return EXIT_FAILED
    done = p.verdict.word == "in-sync" or (p.verdict.word == "promote" and (p.applied or args.dry_run))
    return EXIT_OK if done else EXIT_FAILED


def cmd_approve(args: Any, rt: Any) -> int:
    """``ecspilot approve TARGET [--dry-run]``: approve the release TARGET waits for."""
    try:
        done = approve_promotion(promoter(rt, "cli", "approval"), args.target, _who(), args.dry_run)
    except PromotionInputError as exc:
        say(f"error: {exc}", out=sys.stderr)
        return EXIT_BAD_INPUT
    head = f"{'dry run: would approve' if args.dry_run else 'approved'} {args.target}"
    _show([_row(p) for p in done], args.output, head)
    return EXIT_FAILED if any(p.error for p in done) else EXIT_OK


def is_promoted(rt: Any, name: str) -> bool:
    return any(s.name == name and s.promote is not None for s in rt.config.services)


def print_promotion_history(rt: Any, name: str, limit: int = 20, output: str = "table") -> int:
    """``ecspilot history TARGET`` of a promoted service: each promotion with its source
    deployment and gate results, then the target's deployments (keyed in its account)."""
    pr = promoter(rt, "cli")
    target = promoted_service(pr, name)
    runs = PromotionRecords(rt.history).runs(name, limit=limit)
    deployments = rt.history.deployments(*pr.keys[target.name], limit=limit)
    if output == "json":
        as_json({"promotions": runs, "deployments": deployments})
        return EXIT_OK
    say(
        f"promotions of {name} (from {target.promote.source if target.promote else '-'}), newest release first"
    )
    table(
        [
            {
                "completed": r.get("completed_at", ""),
                "outcome": r.get("outcome", ""),
                "source_deployment": r.get("source_deployment_id", ""),
                "tag": r.get("image_tag", ""),
                "digest": short_digest(str(r.get("image_digest", ""))),
                "deployment": r.get("deployment_id") or "-",
                "trigger": r.get("trigger", ""),
                "detail": r.get("detail", ""),
            }
            for r in runs
        ],
        ["completed", "outcome", "source_deployment", "tag", "digest", "deployment", "trigger", "detail"],
    )
    for r in runs:
        for gate in r.get("gates", []):
            say(f"  {r.get('source_deployment_id', '')}: {gate}")
    say(f"deployments of {target.cluster}/{target.service_name}, newest first")
    table(
        [
            {
                "started": d.get("started_at", ""),
                "status": d.get("status", ""),
                "trigger": d.get("trigger", ""),
                "digest": short_digest(str(d.get("image_digest") or "")),
                "deployment": d.get("deployment_id", ""),
            }
            for d in deployments
        ],
        ["started", "status", "trigger", "digest", "deployment"],
    )
    return EXIT_OK
