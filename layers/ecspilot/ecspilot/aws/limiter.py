"""Pace, don't bounce: client-side token buckets in front of ECS's throttled operations.

ECS throttles per account and region with token buckets (RegisterTaskDefinition: a burst of 20,
then 1 per second; UpdateService 50 then 5/s; RunTask 100 then 40/s). Sending faster than the
bucket refills only earns ThrottlingException answers, and botocore's backoff after them leaves
tokens unspent: a fan-out of 60 distinct task definitions took 1.67x the floor. So every ECS call
of those operations first takes a token from a bucket that mirrors ECS's own, keyed by
``(account, region, operation)`` and shared by every thread (and every client) of the process:
calls are sent when a token exists. Adaptive retries stay as the safety net for throttling caused
by other callers in the account.

The bucket logic is pure (:class:`TokenBucket` takes the time as an argument); :class:`Limiter`
binds buckets to a clock, a sleep and an optional deadline: a call that could not get its token
before the deadline raises :class:`~ecspilot.errors.BudgetExhaustedError` instead of waiting, so an
invocation never sleeps past its time budget (the work continues in the next one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ecspilot.errors import BudgetExhaustedError, SettingsError
from ecspilot.records import dataclass


@dataclass(frozen=True)
class Rate:
    """A token bucket's shape: ``burst`` tokens at most, ``per_second`` added every second."""

    burst: float
    per_second: float

    def seconds_for(self, calls: int, available: float) -> float:
        """How long ``calls`` calls take from a bucket holding ``available`` tokens."""
        missing = calls - available
        return max(0.0, missing) / self.per_second


# ECS's documented limits (Amazon ECS API request throttling, per account and region).
ECS_RATES: Mapping[str, Rate] = {
    "RegisterTaskDefinition": Rate(20, 1),
    "UpdateService": Rate(50, 5),
    "RunTask": Rate(100, 40),
}


def parse_rates(raw: str | None, base: Mapping[str, Rate] = ECS_RATES) -> dict[str, Rate]:
    """``"UpdateService=100/10,RunTask=200/80"`` over ``base``: raised limits of an account.
    ``""`` or None keeps ``base``; a malformed entry fails fast, saying which."""
    rates = dict(base)
    for entry in filter(None, (e.strip() for e in (raw or "").split(","))):
        try:
            operation, shape = entry.split("=")
            burst, per_second = shape.split("/")
            rate = Rate(float(burst), float(per_second))
        except ValueError as exc:
            raise SettingsError(
                f"ECSPILOT_ECS_RATES: expected OPERATION=BURST/PER_SECOND, got {entry!r}"
            ) from exc
        if rate.burst < 1 or rate.per_second <= 0:
            raise SettingsError(f"ECSPILOT_ECS_RATES: {entry!r} needs a burst >= 1 and a positive rate")
        rates[operation.strip()] = rate
    return rates


class TokenBucket:
    """One bucket; pure: every method takes the current time ``now`` (seconds, monotonic)."""

    def __init__(self, rate: Rate, now: float) -> None:
        self.rate = rate
        self.tokens = float(rate.burst)
        self.stamp = now

    def level(self, now: float) -> float:
        """The tokens available at ``now`` (negative: promised to calls still waiting)."""
        return min(self.rate.burst, self.tokens + (now - self.stamp) * self.rate.per_second)

    def reserve(self, now: float) -> float:
        """Take one token, possibly ahead of time; returns how long the caller must wait for it.
        Reservations queue in order: each waiter gets the next token that refills."""
        self.tokens = self.level(now) - 1
        self.stamp = now
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate.per_second

    def wait_for(self, now: float) -> float:
        """How long a reservation made at ``now`` would wait (nothing taken)."""
        level = self.level(now) - 1
        return 0.0 if level >= 0 else -level / self.rate.per_second

    def refund(self, now: float) -> None:
        """Give back one reserved token (its call was never sent)."""
        self.tokens = min(self.rate.burst, self.level(now) + 1)
        self.stamp = now


BucketKey = tuple[str, str, str]  # (account, region, operation)


class Buckets:
    """Buckets by ``(account, region, operation)``, shared by every client and thread given them
    (one :class:`~ecspilot.aws.clients.Clients` serves a whole invocation, and a warm Lambda's
    process keeps it: the buckets remember what the previous invocation spent)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[BucketKey, TokenBucket] = {}

    def bucket(self, key: BucketKey, rate: Rate) -> TokenBucket:
        """Call under :attr:`lock`. A bucket whose configured rate changed starts again full."""
        bucket = self._buckets.get(key)
        if bucket is None or bucket.rate != rate:
            bucket = self._buckets[key] = TokenBucket(rate, self.clock())
        return bucket

    @property
    def lock(self) -> threading.Lock:
        return self._lock


class Limiter:
    """Paces one account's calls (each region its own buckets); limiters may share :class:`Buckets`."""

    def __init__(
        self,
        account: str = "self",
        rates: Mapping[str, Rate] = ECS_RATES,
        buckets: Buckets | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.account = account
        self.rates = dict(rates)
        self.buckets = buckets or Buckets()
        self.sleep = sleep
        self.deadline: float | None = None  # in the buckets' clock; None: wait as long as needed
        self.waited = 0.0

    def clock(self) -> float:
        return self.buckets.clock()

    def acquire(self, region: str, operation: str) -> float:
        """Wait for a token of ``operation`` in ``region``; returns the seconds waited. Raises
        :class:`BudgetExhaustedError` when the token would come after the deadline (no token taken)."""
        rate = self.rates.get(operation)
        if rate is None:
            return 0.0
        key = (self.account, region, operation)
        with self.buckets.lock:
            now = self.clock()
            bucket = self.buckets.bucket(key, rate)
            if self.deadline is not None and now + bucket.wait_for(now) > self.deadline:
                raise BudgetExhaustedError(
                    f"{operation} would wait past this invocation's time budget",
                    operation=operation,
                    region=region,
                    account=self.account,
                )
            wait = bucket.reserve(now)
        if wait > 0:
            self.sleep(wait)
            self.waited += wait
        return wait

    def available(self, region: str, operation: str) -> float:
        """The tokens ``operation`` has now in ``region`` (the burst when unused)."""
        rate = self.rates.get(operation)
        if rate is None:
            return float("inf")
        with self.buckets.lock:
            return self.buckets.bucket((self.account, region, operation), rate).level(self.clock())

    def attach(self, client: Any) -> None:
        """Pace ``client``'s throttled operations: each HTTP attempt (retries included) waits for
        a token first. botocore's ``request-created`` fires once per attempt, before the request
        is signed and before any ``before-send`` handler (where the HTTP layer, a stub or moto,
        answers), so a refused call raises out of the API call without being sent."""
        region = str(client.meta.region_name)
        service_id = client.meta.service_model.service_id.hyphenize()
        for operation in self.rates:

            def pace(op: str = operation, **_: Any) -> None:
                self.acquire(region, op)

            client.meta.events.register_first(f"request-created.{service_id}.{operation}", pace)
