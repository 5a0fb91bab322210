"""The promotion's decisions, pure (no AWS): which release a target should run and whether its
gates let it through. Table-tested in ``tests/unit/test_promotion_decisions.py``.

A *release* is the source's newest COMPLETED deployment record of a repository the chain's root
follows (records without an image, such as the tracker's ``external`` ones, are not releases).
:func:`judge` walks the gates in order over the :class:`Facts` read so far; when it needs a fact
not read yet it says which (``needs``), so the runbook reads only what decides:

1. a release exists (else ``waiting``);
2. the target already runs it (``in-sync``), or a newer forced promotion pinned it (``in-sync``);
3. the digest FAILED or was ROLLED_BACK on the target: held there (``blocked``);
4. the bake: COMPLETED for ``bake_minutes`` (else ``waiting (bake ends at ...)``);
5. the source still runs the digest (else ``blocked``);
6. the source's alarms were quiet since the completion (else ``blocked (alarm X in ALARM)``);
7. an approval naming this release when ``approval: true`` (else ``awaiting approval``);
8. then ``promote``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from ecspilot.domain.config import ServiceConfig
from ecspilot.domain.images import short_digest
from ecspilot.records import dataclass

# "deferred": a promote a window or a freeze holds back (issue 25)
Word = Literal["promote", "waiting", "blocked", "awaiting approval", "in-sync", "deferred"]
Need = Literal["target", "source", "alarms", "approval"]


@dataclass(frozen=True)
class Release:
    """One COMPLETED deployment of the source: what a target may be promoted to."""

    source: str  # the source service's logical name
    deployment_id: str
    repository: str
    tag: str
    digest: str
    started_at: str
    completed_at: datetime
    containers: tuple[str, ...]  # the containers (of the chain's root) that follow its repository


@dataclass(frozen=True)
class Facts:
    """What is known about one promotion; None: not read yet."""

    release: Release | None
    bake_minutes: int
    alarms: tuple[str, ...] = ()
    approval_required: bool = False
    force: bool = False
    target_digests: Mapping[str, str | None] | None = None  # container -> digest the target runs
    held: str | None = None  # why the digest is held on the target ('' when it is not)
    pinned_at: datetime | None = None  # a forced promotion of another digest, by hand
    source_runs: str | None = None  # '' when the source runs the digest, else why not
    alarm_reasons: tuple[str, ...] | None = None
    approved: bool | None = None


@dataclass(frozen=True)
class Verdict:
    """The plan word, its detail (``waiting (bake ends at ...)``), the gates passed so far, and
    the fact to read next when the word is not decided yet."""

    word: Word
    detail: str = ""
    gates: tuple[tuple[str, str], ...] = ()
    needs: Need | None = None
    bake_ends: datetime | None = None

    @property
    def text(self) -> str:
        return f"{self.word} ({self.detail})" if self.detail else self.word


@dataclass
class _Walk:
    gates: list[tuple[str, str]] = field(default_factory=list)

    def stop(self, word: Word, detail: str = "", **kw: Any) -> Verdict:
        return Verdict(word, detail, tuple(self.gates), **kw)


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def bake_end(release: Release, bake_minutes: int) -> datetime:
    return release.completed_at + timedelta(minutes=bake_minutes)


def judge(facts: Facts, now: datetime) -> Verdict:
    """The first gate that decides, or the fact needed next (see the module docstring)."""
    walk = _Walk()
    release = facts.release
    if release is None:
        return walk.stop("waiting", "the source has no COMPLETED deployment yet")
    digest = short_digest(release.digest)
    walk.gates.append(("completed", f"{release.deployment_id} COMPLETED at {stamp(release.completed_at)}"))
    if facts.target_digests is None:
        return walk.stop("waiting", needs="target")
    if all(facts.target_digests.get(c) == release.digest for c in release.containers):
        return walk.stop("in-sync", f"runs {digest}")
    if not facts.force and facts.pinned_at is not None and facts.pinned_at >= release.completed_at:
        return walk.stop("in-sync", f"pinned by hand at {stamp(facts.pinned_at)}; {digest} is not newer")
    if facts.held:
        walk.gates.append(("hold", facts.held))
        return walk.stop("blocked", f"{digest} {facts.held}")
    ends = bake_end(release, facts.bake_minutes)
    if facts.force:
        walk.gates.append(("forced", "gates skipped (--force)"))
        return walk.stop("promote", digest)
    if now < ends:
        walk.gates.append(("bake", f"ends at {stamp(ends)}"))
        return walk.stop("waiting", f"bake ends at {stamp(ends)}", bake_ends=ends)
    walk.gates.append(("bake", f"ended at {stamp(ends)}"))
    if facts.source_runs is None:
        return walk.stop("waiting", needs="source")
    if facts.source_runs:
        walk.gates.append(("source runs it", facts.source_runs))
        return walk.stop("blocked", facts.source_runs)
    walk.gates.append(("source runs it", "yes"))
    if facts.alarms:
        if facts.alarm_reasons is None:
            return walk.stop("waiting", needs="alarms")
        if facts.alarm_reasons:
            walk.gates.append(("alarms", "; ".join(facts.alarm_reasons)))
            return walk.stop("blocked", "; ".join(facts.alarm_reasons))
        walk.gates.append(("alarms", "quiet since the completion"))
    if facts.approval_required:
        if facts.approved is None:
            return walk.stop("waiting", needs="approval")
        if not facts.approved:
            walk.gates.append(("approval", f"none for {release.deployment_id}"))
            return walk.stop("awaiting approval", f"ecspilot approve; release {digest}")
        walk.gates.append(("approval", "given"))
    return walk.stop("promote", digest)


def releases(records: Iterable[Mapping[str, Any]], source: str, root: ServiceConfig) -> list[Release]:
    """The newest COMPLETED record per repository the chain's ``root`` follows, newest first;
    ``records`` are the source's, newest first. Its containers: the root's that follow it."""
    out: dict[str, Release] = {}
    for record in records:
        repository = str(record.get("repository") or "")
        digest = str(record.get("image_digest") or "")
        tag = str(record.get("image_tag") or "")
        if record.get("status") != "COMPLETED" or not digest or repository in out:
            continue
        containers = root.containers_for(repository, tag) if tag else []
        containers = containers or sorted(c for c, s in root.containers.items() if s.repository == repository)
        if not containers:
            continue
        completed = parse_time(record.get("finished_at")) or parse_time(record.get("started_at"))
        if completed is None:
            continue
        out[repository] = Release(
            source=source,
            deployment_id=str(record.get("deployment_id", "")),
            repository=repository,
            tag=tag,
            digest=digest,
            started_at=str(record.get("started_at", "")),
            completed_at=completed,
            containers=tuple(containers),
        )
    return sorted(out.values(), key=lambda r: r.completed_at, reverse=True)


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time of a record (``...Z``), aware; None when absent or malformed."""
    if not value:
        return None
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def schedule_name(target: str, deployment_id: str) -> str:
    """The one-time timer's name: from the target and the source deployment, so a redelivered
    COMPLETED event names the same schedule (Scheduler: 64 characters of [0-9a-zA-Z-_.])."""
    tail = deployment_id.rsplit("/", 1)[-1]
    raw = f"promote-{target}-{tail}"
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in raw)
    if len(safe) <= 64:
        return safe
    import hashlib  # noqa: PLC0415 - only long names need it

    digest = hashlib.sha256(raw.encode()).hexdigest()[:12]
    return f"{safe[:51]}-{digest}"


def registry_of(image: str) -> tuple[str, str] | None:
    """``(account, region)`` of an ECR image reference's registry, or None when not ECR."""
    host = image.split("/", 1)[0]
    match = re.fullmatch(r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?", host)
    return (match.group(1), match.group(2)) if match else None


def notice_message(
    target: str, release: Release, word: str, reason: str
) -> tuple[str, str, dict[str, str], list[str]]:
    """The notice of a blocked release, or one awaiting approval: subject, plain text, the chat's
    context (its Approve and Reject buttons attach to ``AWAITING_APPROVAL`` only) and next steps."""
    what = f"{release.source}'s {release.repository}:{release.tag} ({release.digest}, deployment {release.deployment_id})"
    chat = {"release": release.deployment_id, "digest": release.digest, "deployment": release.deployment_id}
    if word == "awaiting approval":
        body = (
            f"{target} waits for approval to be promoted to {what}.\n\nAnswer with: ecspilot approve {target}"
        )
        steps = [f"Approve or Reject with the buttons, or `ecspilot approve {target}`"]
        return (
            f"ecspilot: promotion of {target} awaits approval",
            body,
            chat | {"status": "AWAITING_APPROVAL"},
            steps,
        )
    body = f"{target} is not promoted to {what}: {reason}"
    return f"ecspilot: promotion of {target} blocked", body, chat | {"status": "BLOCKED"}, []
