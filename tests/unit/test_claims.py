"""Claims: the in-progress expiry follows the Lambda context, as Powertools' idempotency does."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ecspilot.aws.claims import MAX_IN_PROGRESS_SECONDS, in_progress_until


@dataclass
class Context:
    millis: int

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


@pytest.mark.parametrize(
    ("context", "until"),
    [
        (Context(300_000), 1300),  # a 5-minute budget left
        (Context(1_500), 1002),  # rounded up: never expires before the invocation ends
        (Context(0), 1000),
        (Context(-5), 1000),  # already past its deadline
        (None, 1000 + MAX_IN_PROGRESS_SECONDS),  # no context (CLI): the longest Lambda run
    ],
)
def test_a_claim_holds_until_the_invocation_can_no_longer_run(context: Context | None, until: int) -> None:
    assert in_progress_until(context, now=1000.0) == until
