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
from ecspilot.errors import EcspilotError
from ecspilot.interfaces.cli_parser import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from ecspilot.interfaces.present import as_json, say
from ecspilot.records import dataclass


@dataclass(frozen=True)
class VersionAnswer:
    """How an approve / reject of a waiting version ended: the CLI's exit code, the row it
    shows (when it got that far) or the error line."""

    code: int
    row: dict[str, Any] | None = None
    error: str = ""


def answer_release(args: argparse.Namespace, rt: Any) -> int:
    """Run ``approve`` / ``reject SERVICE --digest`` with the CLI's runtime ``rt``."""
    done = answer_version(rt, args.service, str(args.digest), args.command == "approve", _who())
    if done.error:
        say(f"error: {done.error}", out=sys.stderr)
    if done.row is not None:
        _show(args, done.row)
    return done.code


def answer_version(rt: Any, name: str, digest: str, approve: bool, who: str) -> VersionAnswer:
    """The core of ``approve`` / ``reject SERVICE --digest`` (the CLI and the chat's buttons):
    the record moves once (AWAITING -> APPROVED or REJECTED), then an approved digest deploys."""
    svc = next((s for s in rt.config.services if s.name == name), None)
    if svc is None:
        return VersionAnswer(EXIT_BAD_INPUT, error=f"no service named {name} in the config")
    if not DIGEST_RE.fullmatch(digest):
        return VersionAnswer(EXIT_BAD_INPUT, error=f"{digest!r} is not an image digest (sha256:<64 hex>)")
    if not rt.history.enabled:
        return VersionAnswer(
            EXIT_BAD_INPUT, error="no state table (ECSPILOT_TABLE): waiting versions are recorded there"
        )
    own = (rt.settings.account_id, rt.settings.region)
    cluster, service = state_keys(rt.config, own).get(svc.name, (svc.cluster, svc.service_name))
    was = ReleaseRecords(rt.history).answer(
        cluster,
        service,
        digest,
        "APPROVED" if approve else "REJECTED",
        ("AWAITING", "APPROVED") if approve else ("AWAITING",),
        who,
    )
    if was is None:
        return VersionAnswer(EXIT_FAILED, error=f"no version of {name} with {digest} awaits approval")
    if not approve:
        row = {"service": svc.name, "digest": digest, "tag": was.get("image_tag", ""), "outcome": "rejected"}
        return VersionAnswer(EXIT_OK, row)
    return _deploy(rt, svc.name, was, digest, own)


def _deploy(rt: Any, name: str, item: dict[str, Any], digest: str, own: Any) -> VersionAnswer:
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
    except EcspilotError as exc:  # DeployFailuresError too
        return VersionAnswer(EXIT_FAILED, error=f"approved, but the deployment failed: {exc}")
    [o] = result.outcomes or [None]  # type: ignore[list-item]
    if o is None:
        return VersionAnswer(EXIT_FAILED, error=f"{name} does not follow {push.repository}:{push.tag}")
    row = {"service": name, "digest": digest, "tag": push.tag, "outcome": o.outcome, "reason": o.reason}
    return VersionAnswer(EXIT_OK if o.outcome in ("deployed", "unchanged") else EXIT_FAILED, row)


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
