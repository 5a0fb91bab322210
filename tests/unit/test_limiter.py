"""The pacing limiter and the continuation's estimate: pure, on a fake clock."""

from __future__ import annotations

import itertools
import threading

import pytest

from ecspilot.aws.limiter import ECS_RATES, Buckets, Limiter, Rate, TokenBucket, parse_rates
from ecspilot.deploy.continuation import fitting, plan_seconds
from ecspilot.errors import BudgetExhaustedError, SettingsError


class FakeClock:
    """A clock that moves only when a caller sleeps (every sleep is recorded)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)


def paced(rates: dict[str, Rate] | None = None, account: str = "self") -> tuple[Limiter, FakeClock]:
    clock = FakeClock()
    return Limiter(account, rates or dict(ECS_RATES), Buckets(clock), clock.sleep), clock


def send_times(limiter: Limiter, clock: FakeClock, operation: str, calls: int) -> list[float]:
    """When each of ``calls`` calls made at time 0 is sent (its reservation's wait)."""
    return [limiter.acquire("eu-west-1", operation) for _ in range(calls)]


@pytest.mark.parametrize(
    ("operation", "calls", "immediate", "last_sent_at"),
    [
        ("RegisterTaskDefinition", 20, 20, 0.0),  # the burst goes out at once
        ("RegisterTaskDefinition", 60, 20, 40.0),  # then 1 per second: the 60th at 40 s
        ("UpdateService", 500, 50, 90.0),  # 50 then 5/s: 450 more take 90 s
        ("RunTask", 140, 100, 1.0),  # 100 then 40/s
        ("DescribeServices", 1000, 1000, 0.0),  # not throttled by ECS's token buckets: not paced
    ],
)
def test_calls_are_sent_at_ecs_documented_burst_then_refill(
    operation: str, calls: int, immediate: int, last_sent_at: float
) -> None:
    # GIVEN a limiter on ECS's documented rates and a clock frozen at 0
    limiter, clock = paced()
    # WHEN every call is made at once
    waits = send_times(limiter, clock, operation, calls)
    # THEN the burst is sent without waiting and the rest one refill interval apart, the last at the floor
    assert sum(w == 0 for w in waits) == immediate
    assert waits[-1] == pytest.approx(last_sent_at)
    assert all(b >= a for a, b in itertools.pairwise(waits))


def test_a_bucket_refills_with_time_and_never_beyond_its_burst() -> None:
    bucket = TokenBucket(Rate(20, 1), now=0.0)
    for _ in range(20):
        assert bucket.reserve(0.0) == 0.0
    assert bucket.reserve(0.0) == pytest.approx(1.0)  # the 21st waits for the first refill
    assert bucket.level(1000.0) == 20  # idle for long: full, not more


def test_buckets_are_per_account_and_region_so_targets_proceed_in_parallel() -> None:
    # GIVEN two limiters (two accounts) sharing the process's buckets
    clock = FakeClock()
    buckets = Buckets(clock)
    mine = Limiter("self", ECS_RATES, buckets, clock.sleep)
    prod = Limiter("prod", ECS_RATES, buckets, clock.sleep)
    # WHEN one account spends its RegisterTaskDefinition burst in eu-west-1
    for _ in range(20):
        mine.acquire("eu-west-1", "RegisterTaskDefinition")
    # THEN the same account waits there, but another region and another account do not
    assert mine.acquire("eu-west-1", "RegisterTaskDefinition") == pytest.approx(1.0)
    assert mine.acquire("us-east-1", "RegisterTaskDefinition") == 0.0
    assert prod.acquire("eu-west-1", "RegisterTaskDefinition") == 0.0


def test_two_limiters_of_one_account_share_its_bucket() -> None:
    clock = FakeClock()
    buckets = Buckets(clock)
    a, b = (Limiter("self", ECS_RATES, buckets, clock.sleep) for _ in range(2))
    for _ in range(10):
        a.acquire("r", "RegisterTaskDefinition")
        b.acquire("r", "RegisterTaskDefinition")
    assert a.acquire("r", "RegisterTaskDefinition") == pytest.approx(1.0)


def test_threads_racing_for_tokens_never_send_faster_than_the_bucket() -> None:
    # GIVEN 8 threads each making 25 UpdateService calls at the same instant
    limiter, _clock = paced()
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            w = limiter.acquire("r", "UpdateService")
            with lock:
                waits.append(w)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN 50 went at once and the 150 others were spread 0.2 s apart: no two share a token
    ordered = sorted(waits)
    assert sum(w == 0 for w in ordered) == 50
    assert ordered[-1] == pytest.approx(150 / 5)
    assert len({round(w, 6) for w in ordered if w > 0}) == 150


def test_a_call_whose_token_comes_after_the_deadline_is_refused_without_taking_it() -> None:
    # GIVEN the burst spent and a deadline 2.5 s away
    limiter, _clock = paced()
    for _ in range(20):
        limiter.acquire("r", "RegisterTaskDefinition")
    limiter.deadline = 2.5
    # WHEN calls keep coming: the 1 s and 2 s tokens are granted, the 3 s one is refused
    assert limiter.acquire("r", "RegisterTaskDefinition") == pytest.approx(1.0)
    assert limiter.acquire("r", "RegisterTaskDefinition") == pytest.approx(2.0)
    with pytest.raises(BudgetExhaustedError):
        limiter.acquire("r", "RegisterTaskDefinition")
    # THEN nothing was reserved by the refusal: without a deadline the next waits 3 s, not 4 s
    limiter.deadline = None
    assert limiter.acquire("r", "RegisterTaskDefinition") == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("raw", "operation", "expected"),
    [
        ("", "UpdateService", Rate(50, 5)),
        ("UpdateService=100/10", "UpdateService", Rate(100, 10)),
        (" RunTask=200/80 , UpdateService=60/6", "RunTask", Rate(200, 80)),
        ("UpdateService=100/10", "RegisterTaskDefinition", Rate(20, 1)),  # the others keep theirs
    ],
)
def test_raised_limits_are_configurable(raw: str, operation: str, expected: Rate) -> None:
    assert parse_rates(raw)[operation] == expected


@pytest.mark.parametrize(
    "raw", ["UpdateService", "UpdateService=10", "UpdateService=a/b", "RunTask=0/5", "RunTask=5/0"]
)
def test_a_malformed_rate_fails_fast(raw: str) -> None:
    with pytest.raises(SettingsError, match="ECSPILOT_ECS_RATES"):
        parse_rates(raw)


FULL = {"RegisterTaskDefinition": 20.0, "UpdateService": 50.0}


@pytest.mark.parametrize(
    ("registrations", "updates", "available", "seconds"),
    [
        (1, 500, FULL, 90.0),  # 500 services sharing one task definition: the 90 s floor
        (500, 500, FULL, 480.0),  # 500 distinct: 480 s of registrations, updates pipelined
        (60, 60, FULL, 40.0),
        (20, 50, FULL, 0.0),  # within both bursts
        (
            1,
            10,
            {"RegisterTaskDefinition": 0.0, "UpdateService": 0.0},
            2.0,
        ),  # empty buckets: 10 updates at 5/s
    ],
)
def test_the_plan_is_estimated_at_the_paced_rates(
    registrations: int, updates: int, available: dict[str, float], seconds: float
) -> None:
    assert plan_seconds(registrations, updates, ECS_RATES, available) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("groups", "budget", "fits"),
    [
        (list(range(500)), 40.0, 60),  # distinct: 20 at once then 1/s
        (list(range(500)), 1000.0, 500),
        ([0] * 500, 30.0, 200),  # shared: 50 at once then 5/s
        (list(range(10)), 0.0, 0),  # no budget left: nothing now, all continues
        (list(range(500)), 0.001, 20),  # the bursts are free
        ([], 100.0, 0),
    ],
)
def test_the_services_that_fit_the_budget(groups: list[int], budget: float, fits: int) -> None:
    assert fitting(groups, budget, ECS_RATES, FULL) == fits
