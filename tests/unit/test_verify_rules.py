"""deploy.verify_rules.verdict, table-tested: what verifying one service applies next."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ecspilot.aws.service_state import Claim
from ecspilot.deploy.result import ServiceOutcome, Target
from ecspilot.deploy.verify_rules import verdict
from ecspilot.domain.config import parse_config

OLD, MINE, NEW = "sha256:" + "0" * 64, "sha256:" + "1" * 64, "sha256:" + "2" * 64
R0, R1, R2 = "arn:td/web:1", "arn:td/web:2", "arn:td/web:3"


def target(running: str, rollback: bool = False) -> Target:
    svc = parse_config(
        {
            "version": 1,
            "services": [
                {
                    "name": "web",
                    "cluster": "prod",
                    "containers": {"app": {"repository": "web"}},
                    "rollback": rollback,
                }
            ],
        }
    ).services[0]
    return Target(
        svc, ServiceOutcome("web", "prod", "web", ["app"], "deployed", R0), {"taskDefinition": running}
    )


def state(claim: tuple[str, str, str] | None, *held: str) -> dict[str, Any]:
    out: dict[str, Any] = {f"held#{d}": {"status": "FAILED", "started_at": "t"} for d in held}
    if claim:
        digest, td, previous = claim
        out["image#app"] = {
            "digest": digest,
            "pushed_at": Decimal(2),
            "task_definition": td,
            "from": previous,
        }
    return out


MY_CLAIM = [Claim("prod", "web", "app", MINE, 1.0, R1, R0)]


@pytest.mark.parametrize(
    ("running", "item", "ours", "checking", "rollback", "expected"),
    [
        # runs its newest claim: nothing
        (R1, state((MINE, R1, R0)), True, False, False, None),
        # a newer image claimed it: apply that revision
        (R1, state((NEW, R2, R0)), True, False, False, (R2, "stale")),
        # a newer claim whose digest is held is never applied
        (R1, state((NEW, R2, R0), NEW), True, False, False, None),
        # the digest just applied is held (rolled back meanwhile): back to what ran before
        (R1, state((MINE, R1, R0), MINE), True, False, False, (R0, "held")),
        # a lost claim seen running the newest revision already: nothing
        (R2, state((NEW, R2, R0)), False, False, False, None),
        # a lost claim, the newest revision not running: apply it
        (R0, state((NEW, R2, R0)), False, False, False, (R2, "stale")),
        # a lost claim to a hold: held, nothing applied
        (R0, state((MINE, R1, R0), MINE), False, False, False, None),
        # a retry finding its digest running and a newer claim: apply the newer
        (R1, state((NEW, R2, R1)), True, True, False, (R2, "stale")),
        # a retry finding a held digest running: undone only where the service rolls back
        (R1, state((MINE, R1, R0), MINE), True, True, False, None),
        (R1, state((MINE, R1, R0), MINE), True, True, True, (R0, "held")),
        # a retry finding its digest running (moved there by hand) and an OLDER claim: nothing
        (
            R1,
            state((OLD, R0, R0))
            | {"image#app": {"digest": OLD, "pushed_at": Decimal("0.5"), "task_definition": R0}},
            True,
            True,
            False,
            None,
        ),
    ],
)
def test_verdict(
    running: str,
    item: dict[str, Any],
    ours: bool,
    checking: bool,
    rollback: bool,
    expected: tuple[str, str] | None,
) -> None:
    t = target(running, rollback)
    if checking:
        t.outcome.from_task_definition = running
        claims = [Claim("prod", "web", "app", MINE, 1.0, running, running)]
    else:
        claims = MY_CLAIM
    step = verdict(t, claims, ours, item, checking)
    assert (None if step is None else (step.task_definition, step.outcome)) == expected
    if not ours and item.get(f"held#{MINE}"):
        assert t.outcome.outcome == "held"
