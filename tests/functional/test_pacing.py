"""Pacing against ECS-like throttling: the limiter spends the bucket instead of bouncing off it.

moto does not throttle; ``tests.faults``'s ``bucket`` mode does, at the HTTP layer (throttled
attempts never reach moto). Every RegisterTaskDefinition goes through a single-attempt client, as
ecspilot's registrations do, so a throttle is an error the test sees, not a hidden retry.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.exceptions import ClientError

from ecspilot.aws.clients import Clients
from ecspilot.aws.limiter import Rate
from ecspilot_dev.sandbox import REGION
from tests.faults import Faults

CALLS = 12
ECS_BUCKET = Rate(3, 20)  # the simulated account's RegisterTaskDefinition bucket


def register_all(clients: Clients) -> list[str]:
    """``CALLS`` registrations on 6 threads; the error code of each that failed."""
    ecs = clients.single_attempt("ecs")

    def one(i: int) -> str:
        try:
            ecs.register_task_definition(
                family=f"paced-{i}", containerDefinitions=[{"name": "app", "image": "nginx", "memory": 64}]
            )
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])
        return ""

    with ThreadPoolExecutor(6) as pool:
        return [code for code in pool.map(one, range(CALLS)) if code]


@pytest.fixture
def throttled(moto: None, faults: Faults) -> boto3.Session:
    session = boto3.Session(region_name=REGION)
    faults.attach(session)
    faults.fail("RegisterTaskDefinition", "bucket", burst=ECS_BUCKET.burst, per_second=ECS_BUCKET.per_second)
    return session


def test_paced_calls_are_never_throttled_by_a_bucket_of_the_same_burst(
    throttled: boto3.Session, faults: Faults
) -> None:
    # GIVEN clients paced at the account's burst and 90% of its refill: the client's bucket starts
    # counting before ECS's sees the first call, so at exactly the same refill a call can arrive a
    # hair early (adaptive retries absorb that in production; here it would make the test flaky)
    paced = Rate(ECS_BUCKET.burst, ECS_BUCKET.per_second * 0.9)
    clients = Clients(session=throttled, region=REGION, rates={"RegisterTaskDefinition": paced})
    # WHEN 6 threads register 12 task definitions at once
    failed = register_all(clients)
    # THEN none was throttled: every call waited for its token, and all 12 exist
    assert failed == []
    assert faults.rules[0].fired == 0
    assert len(clients.ecs.list_task_definitions()["taskDefinitionArns"]) == CALLS
    assert clients.limiter.waited > 0


def test_without_pacing_the_same_calls_bounce_off_the_bucket(
    throttled: boto3.Session, faults: Faults
) -> None:
    # GIVEN clients that do not pace (no rate known): the guarantee above, broken
    clients = Clients(session=throttled, region=REGION, rates={})
    # WHEN the same burst is sent
    failed = register_all(clients)
    # THEN everything beyond the bucket's burst was throttled and not applied
    assert failed
    assert set(failed) == {"ThrottlingException"}
    assert faults.rules[0].fired == len(failed)
    assert len(clients.ecs.list_task_definitions()["taskDefinitionArns"]) == CALLS - len(failed)
