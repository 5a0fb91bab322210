"""The plan's vocabulary, shared by every reconcile part and the CLI: a leaf, it imports nothing
of ecspilot's (the parts import it, and reconcile imports the parts)."""

from __future__ import annotations

from dataclasses import asdict, field
from typing import Any, Literal

from ecspilot.records import dataclass

# "deferred": a change a window or a freeze holds back (issue 25); the detail says why and when
#: ``waiting``: left alone on purpose this time (ECS is still deploying the service), with the reason
Change = Literal["create", "update", "delete", "in-sync", "conflict", "error", "deferred", "waiting"]


@dataclass(frozen=True)
class Action:
    """One planned (or applied) change, or the lack of one."""

    kind: str  # "schedule", "daemon", "catch-up", ...
    target: str  # what it is about, e.g. "prod/log-agent" or "ecspilot/nightly-report"
    change: Change
    detail: str = ""
    applied: bool = False


@dataclass
class ReconcileResult:
    dry_run: bool
    actions: list[Action] = field(default_factory=list)

    def by_change(self, change: Change) -> list[Action]:
        return [a for a in self.actions if a.change == change]

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for action in self.actions:
            out[action.change] = out.get(action.change, 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "summary": self.summary(),
            "actions": [asdict(a) for a in self.actions],
        }
