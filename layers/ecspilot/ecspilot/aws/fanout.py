"""Bounded fan-out: batches and a thread pool whose failures come back as values.

ECS throttles per account (UpdateService, RegisterTaskDefinition, ...): every fan-out
in ecspilot goes through :func:`bounded_map` with ``ECSPILOT_MAX_WORKERS`` threads at
most, and boto3's adaptive retries absorb what throttling remains. One item's failure
is returned in its place, so one service or cluster never stops the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ecspilot.errors import EcspilotError, UnexpectedError
from ecspilot.obs import logger

T = TypeVar("T")
R = TypeVar("R")


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size`` (API batch limits)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def bounded_map(fn: Callable[[T], R], items: Sequence[T], max_workers: int) -> list[R | EcspilotError]:
    """``fn`` over ``items`` in order, on at most ``max_workers`` threads.

    An :class:`EcspilotError` raised for one item is returned in that item's place. Any other
    exception (a botocore error nobody typed, a bug) is logged with its traceback and returned
    as an :class:`UnexpectedError` raised from it: one item never aborts the pool. Callers
    report those items as failed, so the invocation still fails at the end and is retried.
    """

    def guarded(item: T) -> R | EcspilotError:
        try:
            return fn(item)
        except EcspilotError as exc:
            return exc
        except Exception as exc:  # one item's failure is that item's outcome, logged in full
            logger.exception("unexpected failure of one fan-out item", extra={"item": repr(item)[:200]})
            typed = UnexpectedError(f"unexpected {type(exc).__name__}: {exc}")
            typed.__cause__ = exc  # as ``raise ... from exc`` would
            return typed

    if len(items) <= 1 or max_workers <= 1:
        return [guarded(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items))) as pool:
        return list(pool.map(guarded, items))
