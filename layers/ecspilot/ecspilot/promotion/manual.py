"""The promotion verbs' core: ``ecspilot approve`` and ``ecspilot promote --digest`` (issue 13).

- :func:`approve_promotion` records an approval naming the source deployment of the release the
  target waits for (a newer release needs a new approval), then evaluates the target again, so
  a release whose other gates passed is promoted at once;
- :func:`promote_by_hand` promotes a digest the source COMPLETED through the same gates, or, with
  ``force``, without them (never past a hold: a digest that FAILED or was ROLLED_BACK on the
  target stays held). ``--digest`` applies to the containers that follow the repository of the
  source's deployment of that digest; a digest the source never COMPLETED is refused unless
  forced (then it applies to the root's containers when the root follows one repository). A
  promotion by hand pins the target: reconcile keeps it until the source completes a newer release.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from ecspilot.domain.config import ServiceConfig, root_of
from ecspilot.domain.images import DIGEST_RE, short_digest
from ecspilot.errors import NothingPausedError, PromotionInputError
from ecspilot.promotion.decisions import Facts, Release, stamp
from ecspilot.promotion.runbook import Promoter, Promotion


def promoted_service(promoter: Promoter, name: str) -> ServiceConfig:
    """The configured promoted service ``name``, or :class:`PromotionInputError`."""
    svc = next((s for s in promoter.config.services if s.name == name), None)
    if svc is None or svc.promote is None:
        known = ", ".join(s.name for s in promoter.config.services if s.promote) or "none"
        raise PromotionInputError(f"{name!r} is not a promoted service (promoted services: {known})")
    return svc


def approve_promotion(promoter: Promoter, name: str, by: str, dry_run: bool = False) -> list[Promotion]:
    """Approve the release(s) ``name`` waits for, then evaluate it again (applied unless ``dry_run``)."""
    target = promoted_service(promoter, name)
    if target.promote is None or not target.promote.approval:
        raise PromotionInputError(f"{name} does not need approval (promote.approval is false)")
    pending = [p for p in promoter.run([name], dry_run=True) if p.release is not None]
    waiting = [p for p in pending if p.verdict.word not in ("in-sync", "promote") and not p.error]
    if not waiting:
        states = "; ".join(p.error or p.verdict.text for p in pending) or "no COMPLETED release of its source"
        raise NothingPausedError(f"{name} awaits no approval ({states})")  # exit 1, as approve of a service
    for p in waiting:
        assert p.release is not None
        if not dry_run:
            promoter.records.approve(name, p.release.deployment_id, by, stamp(datetime.now(UTC)))
    if dry_run:
        return waiting
    return Promoter(
        promoter.config, promoter.sessions, promoter.history, promoter.own, promoter.max_workers, "approval"
    ).run([name])


def promote_by_hand(
    promoter: Promoter, name: str, digest: str, by: str, force: bool = False, dry_run: bool = False
) -> Promotion:
    """Promote ``digest`` to ``name`` (see the module docstring)."""
    target = promoted_service(promoter, name)
    if not DIGEST_RE.fullmatch(digest):
        raise PromotionInputError(f"{digest!r} is not an image digest (sha256:<64 hex>)")
    promoter.load_state([target])
    found = [p for p in promoter.candidates(target, digest=digest) if p.release is not None]
    if not found and not force:
        source = target.promote.source if target.promote else "?"
        raise PromotionInputError(
            f"{source} never COMPLETED a deployment of {short_digest(digest)}: refused (--force promotes it anyway)"
        )
    promotion = found[0] if found else _forced(promoter, target, digest)
    promotion.facts = replace(promotion.facts, force=force, pinned_at=None)
    promoter.settle(promotion, dry_run)
    if promotion.applied or (not dry_run and promotion.verdict.word == "in-sync" and not promotion.error):
        promoter.records.pin(name, digest, stamp(datetime.now(UTC)), by)
    return promotion


def _forced(promoter: Promoter, target: ServiceConfig, digest: str) -> Promotion:
    """A release the source never COMPLETED, promoted with ``--force``."""
    root = root_of(promoter.config.services, target.name)
    repositories = sorted({s.repository for s in root.containers.values()}) if root else []
    if root is None or len(repositories) != 1:
        raise PromotionInputError(
            f"{target.name}'s source follows {len(repositories)} repositories and none deployed "
            f"{short_digest(digest)}: cannot tell which containers it is for"
        )
    source = target.promote.source if target.promote else ""
    release = Release(
        source=source,
        deployment_id="manual",
        repository=repositories[0],
        tag="manual",
        digest=digest,
        started_at=stamp(datetime.now(UTC)),
        completed_at=datetime.now(UTC),
        containers=tuple(sorted(root.containers)),
    )
    base = target.promote
    assert base is not None
    return Promotion(target, release, Facts(release, base.bake_minutes, tuple(base.alarms), base.approval))
