"""What one promotion is and how it reads: the target, the release, the verdict, the action (the
plan line) and its history entry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field
from datetime import UTC, datetime
from typing import Any

from ecspilot.domain.config import ServiceConfig
from ecspilot.domain.images import short_digest
from ecspilot.domain.plan import Action, Change
from ecspilot.promotion.decisions import Facts, Release, Verdict, stamp
from ecspilot.records import dataclass

CHANGES: dict[str, Change] = {
    "promote": "update",
    "in-sync": "in-sync",
    "waiting": "in-sync",
    "awaiting approval": "in-sync",
    "blocked": "conflict",
    "deferred": "deferred",
}


@dataclass
class Promotion:
    """One target and one release: the verdict, and what applying it did."""

    target: ServiceConfig
    release: Release | None
    facts: Facts
    verdict: Verdict = field(default_factory=lambda: Verdict("waiting"))
    image: str = ""  # the source's image reference (its registry) once the source was read
    error: str = ""
    deployment_id: str = ""
    applied: bool = False

    def action(self) -> Action:
        if self.error:
            return Action("promotion", self.target.name, "error", self.error)
        detail = self.verdict.text
        if self.release is not None and self.verdict.word == "promote":
            release = self.release
            detail = f"promote {short_digest(release.digest)} from {release.source} {release.deployment_id}"
        return Action("promotion", self.target.name, CHANGES[self.verdict.word], detail, applied=self.applied)

    def entry(self, outcome: str, trigger: str) -> dict[str, Any]:
        """The promotion's history item (``ecspilot history``)."""
        release = self.release
        assert release is not None
        return {
            "target": self.target.name,
            "source": release.source,
            "source_deployment_id": release.deployment_id,
            "completed_at": stamp(release.completed_at),
            "repository": release.repository,
            "image_tag": release.tag,
            "image_digest": release.digest,
            "outcome": outcome,
            "detail": self.verdict.text,
            "gates": [f"{gate}: {result}" for gate, result in self.verdict.gates],
            "deployment_id": self.deployment_id,
            "trigger": trigger,
            "at": stamp(datetime.now(UTC)),
        }


def as_actions(promotions: Sequence[Promotion]) -> list[Action]:
    return [p.action() for p in promotions]


__all__ = ["CHANGES", "Promotion", "as_actions"]


def runs_release(promotion: Promotion) -> bool:
    """The target already runs the promotion's release on every container it names."""
    release, running = promotion.release, promotion.facts.target_digests
    return (
        release is not None
        and running is not None
        and all(running.get(c) == release.digest for c in release.containers)
    )
