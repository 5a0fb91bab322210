"""``ecspilot approve SERVICE --digest sha256:...`` / ``ecspilot reject SERVICE --digest ...``:
answer a version that waits (issue 27: ``awaiting approval`` or ``conflict``, recorded by
``deploy.versions`` in ``aws.release_state``).

approve: the record moves AWAITING -> APPROVED (one conditional write: two people approving at
once deploy once), then that digest, and only it, goes through the deploy core for that one
service (trigger ``approval``): the order (never backwards), the rolled-back hold and the gates
(scan, signature) still apply. An approve whose deploy failed can be run again (APPROVED stays).
reject: AWAITING -> REJECTED; the digest is ``refused`` on that service from then on.

Exit codes: 0 done; 1 nothing waits with that digest, or the deploy failed; 2 bad input
(unknown service, malformed digest, no state table).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from ecspilot.aws.release_state import ReleaseRecords
from ecspilot.domain.images import DIGEST_RE, ImagePush
from ecspilot.domain.keys import state_keys
from ecspilot.errors import DeployFailuresError, EcspilotError
from ecspilot.interfaces.cli_parser import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from ecspilot.interfaces.present import as_json, say


def answer_release(args: argparse.Namespace, rt: Any) -> int:
    """Run ``approve`` / ``reject SERVICE --digest`` with the CLI's runtime ``rt``."""
    svc = next((s for s in rt.config.services if s.name == args.service), None)
    if svc is None:
        say(f"error: no service named {args.service} in the config", out=sys.stderr)
        return EXIT_BAD_INPUT
    digest = str(args.digest)
    if not DIGEST_RE.fullmatch(digest):
        say(f"error: {digest!r} is not an image digest (sha256:<64 hex>)", out=sys.stderr)
        return EXIT_BAD_INPUT
    if not rt.history.enabled:
        say("error: no state table (ECSPILOT_TABLE): waiting versions are recorded there", out=sys.stderr)
        return EXIT_BAD_INPUT
    own = (rt.settings.account_id, rt.settings.region)
    cluster, service = state_keys(rt.config, own).get(svc.name, (svc.cluster, svc.service_name))
    records = ReleaseRecords(rt.history)
    approve = args.command == "approve"
    was = records.answer(
        cluster,
        service,
        digest,
        "APPROVED" if approve else "REJECTED",
        ("AWAITING", "APPROVED") if approve else ("AWAITING",),
        _who(),
    )
    if was is None:
        say(f"error: no version of {args.service} with {digest} awaits approval", out=sys.stderr)
        return EXIT_FAILED
    if not approve:
        _show(
            args,
            {"service": svc.name, "digest": digest, "tag": was.get("image_tag", ""), "outcome": "rejected"},
        )
        return EXIT_OK
    return _deploy(args, rt, svc.name, was, digest, own)


def _deploy(args: argparse.Namespace, rt: Any, name: str, item: dict[str, Any], digest: str, own: Any) -> int:
    from ecspilot.deploy.targets import deploy_push  # noqa: PLC0415 - approve only

    push = ImagePush(
        account=str(item.get("registry_id") or rt.settings.account_id or ""),
        region=str(item.get("region") or rt.settings.region or ""),
        repository=str(item["repository"]),
        tag=str(item.get("image_tag", "")),
        digest=digest,
        event_id=f"approval-{digest[7:19]}",
    )
    scoped = rt.config.model_copy(
        update={"services": [s for s in rt.config.services if s.name == name], "jobs": []}
    )
    try:
        result = deploy_push(
            push,
            scoped,
            rt.clients,
            rt.history,
            max_workers=rt.settings.max_workers,
            topic_arn=rt.settings.notify_topic_arn,
            own=own,
        )
    except DeployFailuresError as exc:
        say(f"error: approved, but the deployment failed: {exc}", out=sys.stderr)
        return EXIT_FAILED
    except EcspilotError as exc:
        say(f"error: approved, but the deployment failed: {exc}", out=sys.stderr)
        return EXIT_FAILED
    [o] = result.outcomes or [None]  # type: ignore[list-item]
    if o is None:
        say(f"error: {name} does not follow {push.repository}:{push.tag}", out=sys.stderr)
        return EXIT_FAILED
    row = {"service": name, "digest": digest, "tag": push.tag, "outcome": o.outcome, "reason": o.reason}
    _show(args, row)
    return EXIT_OK if o.outcome in ("deployed", "unchanged") else EXIT_FAILED


def _show(args: argparse.Namespace, row: dict[str, Any]) -> None:
    if getattr(args, "output", "table") == "json":
        as_json(row)
        return
    tail = f": {row['reason']}" if row.get("reason") else ""
    say(f"{row['outcome']} {row['service']} {row['tag']} ({row['digest']}){tail}")


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"
