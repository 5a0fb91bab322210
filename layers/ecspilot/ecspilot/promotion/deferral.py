"""A promotion a window or a freeze stops (issue 25): its ``promote`` verdict becomes
``deferred`` with the reason and when; the deferral is recorded and told once per target and
digest (``stopping/deferral.py``). Only automated promotions ask (reconcile, the bake timer);
``ecspilot promote`` is a person's decision, like ``rollback``."""

from __future__ import annotations

from dataclasses import replace

from ecspilot.domain.stops import deferred_detail, stamp
from ecspilot.promotion.decisions import Word
from ecspilot.promotion.result import Promotion
from ecspilot.stopping.deferral import Deferrals


def defer(promotion: Promotion, deferrals: Deferrals, where: str, dry_run: bool) -> Word:
    """The promotion's word after the stops: ``deferred`` when stopped, else unchanged."""
    stop = deferrals.check(promotion.target.name)
    if stop is None or promotion.release is None:
        return promotion.verdict.word
    until = stamp(stop.until) if stop.until else ""
    promotion.verdict = replace(
        promotion.verdict, word="deferred", detail=deferred_detail(stop.reason, until)
    )
    if not dry_run:
        detail = {"trigger": "promotion", "source": promotion.release.source}
        deferrals.defer(promotion.target.name, where, promotion.release.digest, stop, detail)
    return "deferred"


__all__ = ["defer"]
