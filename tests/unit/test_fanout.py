"""The bounded fan-out: order kept, one item's failure returned as that item's typed value."""

from __future__ import annotations

import threading

import pytest
from botocore.exceptions import EndpointConnectionError

from ecspilot.aws.fanout import bounded_map, chunks
from ecspilot.errors import DeployError, EcspilotError, UnexpectedError


def flaky(item: int) -> int:
    if item == 3:
        raise KeyError("a bug in item 3")
    if item == 5:
        raise EndpointConnectionError(endpoint_url="https://ecs.invalid")
    if item == 7:
        raise DeployError("typed", service="seven")
    return item * 10


@pytest.mark.parametrize("workers", [1, 4])
def test_one_items_exception_comes_back_as_a_typed_value_and_the_others_finish(workers: int) -> None:
    # WHEN items fail with a bug, a botocore error and an ecspilot error, on 1 or 4 threads
    got = bounded_map(flaky, list(range(9)), workers)
    # THEN every other item finished, in order
    assert [g for i, g in enumerate(got) if i not in (3, 5, 7)] == [0, 10, 20, 40, 60, 80]
    # AND the unexpected ones are UnexpectedError caused by the original exception
    assert isinstance(got[3], UnexpectedError)
    assert isinstance(got[3].__cause__, KeyError)
    assert isinstance(got[5], UnexpectedError)
    assert isinstance(got[5].__cause__, EndpointConnectionError)
    assert "unexpected KeyError" in str(got[3])
    # AND ecspilot's own errors come back as they were raised
    assert isinstance(got[7], DeployError)
    assert got[7].context == {"service": "seven"}


def test_the_pool_runs_items_concurrently_up_to_the_bound() -> None:
    barrier = threading.Barrier(3, timeout=5)

    def wait(item: int) -> int:
        barrier.wait()  # deadlocks (BrokenBarrierError) unless 3 items run at once
        return item

    assert bounded_map(wait, [1, 2, 3], 3) == [1, 2, 3]


def test_a_base_exception_still_stops_everything() -> None:
    def interrupt(item: int) -> int:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bounded_map(interrupt, [1], 1)


def test_chunks() -> None:
    assert chunks([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert issubclass(UnexpectedError, EcspilotError)
