"""A generated delivery history: services in promotion chains (dev -> staging -> prod), each
deployment's record written into the state table as ecspilot writes it, at known rates of
failure, so ``ecspilot insights`` can be checked against what was put in (``bench/insights.py``,
``tests/functional/test_insights.py``).

Each chain's first stage deploys a push every ``1 / per_day`` days (with jitter); each release
that COMPLETED there is promoted to the next stage after a bake, every ``promote_every``-th only
(a newer release supersedes the others, so some never reach prod). Each change (push or
promotion) fails at the given rates, one outcome each:

- ``failed``: ECS's circuit breaker: the record ROLLED_BACK, and a ``rollback`` record that
  COMPLETED minutes later (the restore);
- ``rolled_back``: COMPLETED, then ``ecspilot rollback`` (``rolled_back_at``) and its
  ``rollback`` record COMPLETED minutes later;
- ``crash_loop``: COMPLETED, then a crash loop (``crash_loop_at``) within the hour; restored by
  the service's next COMPLETED deployment.

:class:`History` keeps the ground truth beside the records (:meth:`History.truth`): counted from
the generator's own timeline, not by ecspilot's code.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ecspilot.aws.history import DeploymentRecord
from ecspilot.aws.history import History as StateTable

STAGES = ("dev", "staging", "prod")


@dataclass(frozen=True)
class Rates:
    """The chance of each failure of a change (one outcome per change)."""

    failed: float = 0.06
    rolled_back: float = 0.03
    crash_loop: float = 0.02

    @property
    def total(self) -> float:
        return self.failed + self.rolled_back + self.crash_loop


@dataclass
class Entry:
    """One deployment of the timeline."""

    service: str
    number: int
    trigger: str
    digest: str
    started: datetime
    finished: datetime
    status: str = "COMPLETED"
    pushed: datetime | None = None
    failure: str = ""  # failed | rolled_back | crash_loop
    failed_at: datetime | None = None

    def item(self) -> dict[str, Any]:
        record = DeploymentRecord(
            cluster=self.service.rsplit("-", 1)[-1] if "-" in self.service else "prod",
            service=self.service.rsplit("-", 1)[0],
            from_task_definition="",
            to_task_definition=f"arn:aws:ecs:us-east-1:123456789012:task-definition/{self.service}:{self.number}",
            image_digest=self.digest,
            image_tag=f"v{self.number}",
            repository=self.service.rsplit("-", 1)[0],
            deployment_id=f"ecs-svc/{self.service}-{self.number}",
            started_at=iso(self.started),
            trigger=self.trigger,
            status=self.status,
            image_pushed_at=iso(self.pushed) if self.pushed and self.trigger == "push" else "",
        )
        item = {**record.to_item(), "finished_at": iso(self.finished)}
        if self.failure == "rolled_back" and self.failed_at is not None:
            item["rolled_back_at"] = iso(self.failed_at)
        if self.failure == "crash_loop" and self.failed_at is not None:
            item["crash_loop_at"] = iso(self.failed_at)
        return item


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def nearest_rank(values: Sequence[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


@dataclass
class History:
    """The generated timeline of every service, and the config that names them."""

    chains: list[list[str]]
    entries: dict[str, list[Entry]] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        services: list[dict[str, Any]] = []
        for chain in self.chains:
            for i, name in enumerate(chain):
                app, cluster = name.rsplit("-", 1)
                svc: dict[str, Any] = {"name": name, "cluster": cluster, "service": app}
                if i == 0:
                    svc["containers"] = {"app": {"repository": app, "tags": ["v*"]}}
                else:
                    svc["promote"] = {"from": chain[i - 1], "bake_minutes": 60}
                services.append(svc)
        return {"version": 1, "services": services}

    def items(self) -> list[dict[str, Any]]:
        return [e.item() for entries in self.entries.values() for e in entries]

    def write(self, table: StateTable) -> int:
        """Every record into the state table (BatchWriteItem, 25 a call)."""
        return table.put_items(self.items())

    def truth(
        self, service: str, since: datetime, until: datetime, pushes: dict[str, datetime]
    ) -> dict[str, Any]:
        """What the insights of ``service`` must say for the period, from the timeline."""

        def within(at: datetime | None) -> bool:
            return at is not None and since <= at < until

        entries = self.entries[service]
        changes = [e for e in entries if e.trigger != "rollback" and within(e.started)]
        completed = [
            e for e in entries if e.trigger != "rollback" and e.status == "COMPLETED" and within(e.finished)
        ]
        leads = [(e.finished - pushes[e.digest]).total_seconds() for e in completed if e.digest in pushes]
        failed = [e for e in changes if e.failure]
        done = sorted(e.finished for e in entries if e.status == "COMPLETED")
        restores, unrestored = [], 0
        for e in failed:
            assert e.failed_at is not None
            after = next((d for d in done if d > e.failed_at), None)
            if after is None:
                unrestored += 1
            else:
                restores.append((after - e.failed_at).total_seconds())
        days = (until - since).total_seconds() / 86400
        return {
            "completed": len(completed),
            "per_day": round(len(completed) / days, 4),
            "lead_p50": nearest_rank(leads, 50),
            "lead_p90": nearest_rank(leads, 90),
            "changes": len(changes),
            "failed": len(failed),
            "rate": round(len(failed) / len(changes), 4) if changes else None,
            "restore_p50": nearest_rank(restores, 50),
            "restore_p90": nearest_rank(restores, 90),
            "unrestored": unrestored,
        }

    def pushes(self) -> dict[str, datetime]:
        return {e.digest: e.pushed for es in self.entries.values() for e in es if e.pushed is not None}


def _outcome(rng: random.Random, rates: Rates) -> str:
    draw = rng.random()
    for name, rate in (
        ("failed", rates.failed),
        ("rolled_back", rates.rolled_back),
        ("crash_loop", rates.crash_loop),
    ):
        if draw < rate:
            return name
        draw -= rate
    return ""


def _deploy(
    rng: random.Random, rates: Rates, service: str, number: int, trigger: str, digest: str, at: datetime
) -> list[Entry]:
    """One change at ``at`` and, when it fails, its restoring rollback."""
    started = at + timedelta(seconds=rng.uniform(5, 30))
    finished = started + timedelta(minutes=rng.uniform(3, 15))
    failure = _outcome(rng, rates)
    entry = Entry(service, number, trigger, digest, started, finished, failure=failure)
    if failure == "failed":
        entry.status, entry.failed_at = "ROLLED_BACK", finished
    elif failure == "rolled_back":
        entry.failed_at = finished + timedelta(minutes=rng.uniform(10, 50))
    elif failure == "crash_loop":
        entry.failed_at = finished + timedelta(minutes=rng.uniform(5, 50))
        return [entry]
    else:
        return [entry]
    assert entry.failed_at is not None
    back = entry.failed_at + timedelta(seconds=rng.uniform(5, 60))
    rollback = Entry(
        service, number + 500_000, "rollback", "", back, back + timedelta(minutes=rng.uniform(2, 8))
    )
    return [entry, rollback]


def generate(
    chains: int = 16,
    singles: int = 2,
    days: int = 90,
    per_day: float = 2.0,
    rates: Rates | None = None,
    promote_every: int = 2,
    seed: int = 7,
    now: datetime | None = None,
) -> History:
    """``chains`` three-stage chains and ``singles`` one-stage services over ``days`` days ending
    ``now``; the first stages deploy about ``per_day`` pushes a day."""
    rng = random.Random(seed)
    rates = rates or Rates()
    now = now or datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=days)
    names = [[f"app{c:02d}-{s}" for s in STAGES] for c in range(chains)]
    names += [[f"solo{c:02d}-prod"] for c in range(singles)]
    history = History(names)
    gap = timedelta(days=1 / per_day)
    for chain in names:
        releases: list[Entry] = []
        at, number = start + rng.uniform(0, 1) * gap, 0
        first: list[Entry] = []
        while at < now - timedelta(hours=1):
            number += 1
            digest = f"sha256:{rng.getrandbits(256):064x}"
            made = _deploy(rng, rates, chain[0], number, "push", digest, at)
            made[0].pushed = at
            first += made
            if made[0].status == "COMPLETED":
                releases.append(made[0])
            at = max(at + gap * rng.uniform(0.5, 1.5), made[-1].finished + timedelta(minutes=1))
        history.entries[chain[0]] = first
        for stage in chain[1:]:
            entries: list[Entry] = []
            promoted: list[Entry] = []
            free = start
            for n, release in enumerate(releases):
                if n % promote_every:
                    continue
                at = max(release.finished + timedelta(hours=1), free)
                if at >= now - timedelta(minutes=30):
                    break
                made = _deploy(rng, rates, stage, release.number, "promotion", release.digest, at)
                entries += made
                free = made[-1].finished + timedelta(minutes=1)
                if made[0].status == "COMPLETED":
                    promoted.append(made[0])
            history.entries[stage] = entries
            releases = promoted
    return history
