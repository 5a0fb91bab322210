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
    """``ecspilot approve SERVICE`` of a promoted service: approve the release it waits for."""
    dry_run = bool(getattr(args, "dry_run", False))
    try:
        done = approve_promotion(promoter(rt, "cli", "approval"), args.service, _who(), dry_run)
    except PromotionInputError as exc:
        say(f"error: {exc}", out=sys.stderr)
        return EXIT_BAD_INPUT
    head = f"{'dry run: would approve' if dry_run else 'approved'} {args.service}"
    _show([_row(p) for p in done], args.output, head)
    return EXIT_FAILED if any(p.error for p in done) else EXIT_OK


def approve_unless_paused(args: Any, rt: Any) -> int | None:
    """``ecspilot approve SERVICE``: None when it is the pause hooks' to answer (a service that
    is not promoted, or one with a paused deployment awaiting action: ``cli_hooks``), else the
    exit code of approving the promotion it waits for (:func:`approve_promotion`)."""
    from ecspilot.aws.hook_state import HookRecords  # noqa: PLC0415

    svc = next((s for s in rt.config.services if s.name == args.service and s.promote), None)
    if svc is None:
        return None
    if rt.history.enabled and HookRecords(rt.history).waiting(svc.cluster, svc.service_name):
        return None
    return cmd_approve(args, rt)


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


def answer(args: Any, rt: Any) -> int:
    """``approve`` / ``reject SERVICE``: a deployment paused at a pause hook is answered
    (``cli_hooks``); ``approve`` of a promoted service with none paused approves its release."""
    from ecspilot.interfaces.cli_hooks import answer_command  # noqa: PLC0415

    if getattr(args, "digest", None):  # a version awaiting approval (issue 27)
        from ecspilot.interfaces.cli_release import answer_release  # noqa: PLC0415

        return answer_release(args, rt)
    done = approve_unless_paused(args, rt) if args.command == "approve" else None
    return answer_command(args, rt) if done is None else done


def history(args: Any, rt: Any) -> int:
    """``ecspilot history NAME``: a promoted service's promotions and deployments, else
    ``cli_status``'s deployments or runs."""
    from ecspilot.interfaces.cli_status import print_history, require_table  # noqa: PLC0415

    if is_promoted(rt, args.name):
        require_table(rt)
        return print_promotion_history(rt, args.name, limit=args.limit, output=args.output)
    return print_history(rt, args.name, limit=args.limit, output=args.output)
