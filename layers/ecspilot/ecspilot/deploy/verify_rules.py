"""Verifying a service's claims after UpdateService (pure): what must be applied next.

:meth:`ecspilot.deploy.commit.DeployCommit.verify` reads the services' STATE items and asks
:func:`verdict` for each: nothing (it runs its newest claim), the newest claim's revision (a
newer image claimed it), or the revision it ran before (the digest just applied is held there:
the circuit breaker rolled it back while this deployment started).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ecspilot.aws.service_state import Claim, current_claims, held_digest, newer_claims
from ecspilot.deploy.result import Outcome, Target
from ecspilot.domain.images import short_digest
from ecspilot.domain.taskdef import family_revision
from ecspilot.records import dataclass


@dataclass(frozen=True)
class Step:
    """What verifying one service applies next: a revision, the outcome and reason it gives the
    service, and the claim it applies (verified again), None when it undoes a held digest."""

    task_definition: str
    outcome: Outcome
    reason: str
    claim: Claim | None


def verdict(
    t: Target, claims: list[Claim], ours: bool, state: Mapping[str, Any], checking: bool
) -> Step | None:
    """What verifying one service must apply next (pure but for a lost claim's outcome): None
    when it runs its newest claim; the newest claim's revision when a newer image claimed it;
    the revision it ran before when the digest ``ours`` applied is held there (the circuit
    breaker rolled it back while this deployment started)."""
    if not claims:
        return None
    mine = claims[0]
    hold = held_digest(state, mine.digest)
    if hold is not None:
        status = str(hold.get("status", "held"))
        if not ours:
            t.outcome.outcome = "held"
            t.outcome.reason = f"{short_digest(mine.digest)} was {status} on this service: not redeployed"
            return None
        restore = _restore_of(t, mine, state)
        if not restore or (checking and not _rolls_back(t)):
            return None  # nothing known to go back to (or no rollback wanted): leave it to the breaker
        return Step(
            restore,
            "held",
            f"{short_digest(mine.digest)} was {status} on this service while this deployment "
            f"started: put back on {family_revision(restore)}",
            None,
        )
    newer = [c for c in newer_claims(claims, state) if held_digest(state, c.digest) is None]
    if checking:  # nothing was claimed now: only a claim pushed after this image is newer (a
        # service moved by hand to this digest is not moved back to an older claim)
        newer = [c for c in newer if c.pushed_at > mine.pushed_at]
    newest = max(newer, key=lambda c: (c.pushed_at, c.digest)) if newer else None
    if newest is None or not newest.task_definition:
        return None
    if not ours and (t.service or {}).get("taskDefinition") == newest.task_definition:
        return None  # this invocation saw the service on it after losing the claim
    if checking and (t.service or {}).get("taskDefinition") == newest.task_definition:
        return None
    return Step(
        newest.task_definition,
        "stale",
        f"superseded by a concurrent deployment of {short_digest(newest.digest)}: "
        f"{family_revision(newest.task_definition)} applied again",
        replace(newest, previous=t.outcome.from_task_definition),
    )


def _rolls_back(t: Target) -> bool:
    """Whether a failed deployment of the service is rolled back (ecspilot's ``rollback``, or the
    service's own circuit breaker with rollback)."""
    conf = (t.service or {}).get("deploymentConfiguration") or {}
    return t.config.rollback or bool((conf.get("deploymentCircuitBreaker") or {}).get("rollback"))


def _restore_of(t: Target, mine: Claim, state: Mapping[str, Any]) -> str:
    """The revision to put a service back on when the digest just applied is held: what it ran
    before this deployment, else what the held claim's deployer saw it run."""
    if t.outcome.from_task_definition and t.outcome.from_task_definition != mine.task_definition:
        return t.outcome.from_task_definition
    for claim in current_claims([mine.container], state).values():
        if claim.get("digest") == mine.digest and claim.get("from") not in ("", mine.task_definition):
            return str(claim.get("from", ""))
    return ""
