"""The service deployments edge (``aws.service_deployments``) on a real ECS client answered by
botocore's Stubber: moto implements none of these calls, and the Stubber validates every request
ecspilot sends and every response the test gives against the ECS API model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from ecspilot.aws.service_deployments import (
    describe_service_deployments,
    list_service_deployments,
    stop_service_deployment,
)
from ecspilot.errors import ServiceDeploymentError, error_code, is_throttle
from ecspilot_dev.sandbox import ACCOUNT, REGION
from ecspilot_dev.service_deployments import (
    brief,
    deployment_arn,
    described,
    revision_arn,
    strategy_configuration,
)

AT = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def sd(ident: str) -> str:
    return deployment_arn(REGION, ACCOUNT, "prod", "web", ident)


def rev(number: str) -> str:
    return revision_arn(REGION, ACCOUNT, "prod", "web", f"ecs-svc/{number}")


@pytest.fixture
def stub() -> Iterator[Stubber]:
    ecs = boto3.client("ecs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(ecs) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def test_listing_follows_pages_and_returns_the_newest_first(stub: Stubber) -> None:
    # GIVEN two pages of service deployments, the older one first
    stub.add_response(
        "list_service_deployments",
        {"serviceDeployments": [brief(sd("old"), "SUCCESSFUL", rev("1"), AT)], "nextToken": "t1"},
        {"cluster": "prod", "service": "web", "maxResults": 20, "status": ["PENDING", "IN_PROGRESS"]},
    )
    stub.add_response(
        "list_service_deployments",
        {"serviceDeployments": [brief(sd("new"), "IN_PROGRESS", rev("2"), AT + timedelta(minutes=5))]},
        {
            "cluster": "prod",
            "service": "web",
            "maxResults": 20,
            "status": ["PENDING", "IN_PROGRESS"],
            "nextToken": "t1",
        },
    )
    # WHEN listed with a status filter
    got = list_service_deployments(stub.client, "prod", "web", statuses=("PENDING", "IN_PROGRESS"))
    # THEN both pages are read, newest first, typed
    assert [(b.arn, b.status, b.active) for b in got] == [
        (sd("new"), "IN_PROGRESS", True),
        (sd("old"), "SUCCESSFUL", False),
    ]
    assert got[0].target_revision_arn == rev("2")


def test_describing_batches_twenty_arns_per_call_and_leaves_out_what_ecs_did_not_find(stub: Stubber) -> None:
    arns = [sd(f"d{i:02}") for i in range(21)]
    conf = strategy_configuration("LINEAR", bake_minutes=30, step_percent=20.0)
    first = [
        described(a, "SUCCESSFUL", "CLEAN_UP", rev("1"), conf, created_at=AT, updated_at=AT)
        for a in arns[:19]
    ]
    stub.add_response(
        "describe_service_deployments",
        {"serviceDeployments": first, "failures": [{"arn": arns[19], "reason": "MISSING"}]},
        {"serviceDeploymentArns": arns[:20]},
    )
    last = described(
        arns[20],
        "IN_PROGRESS",
        "PRODUCTION_TRAFFIC_SHIFT",
        rev("2"),
        conf,
        created_at=AT,
        updated_at=AT,
        weight=40.0,
    )
    stub.add_response(
        "describe_service_deployments",
        {"serviceDeployments": [last], "failures": []},
        {"serviceDeploymentArns": arns[20:]},
    )
    got = describe_service_deployments(stub.client, arns)
    assert len(got) == 20
    assert arns[19] not in got
    newest = got[arns[20]]
    assert (newest.strategy, newest.lifecycle_stage, newest.step_percent, newest.production_weight) == (
        "LINEAR",
        "PRODUCTION_TRAFFIC_SHIFT",
        20.0,
        40.0,
    )
    assert newest.bake_minutes == 30


def test_stop_sends_rollback_and_names_the_deployment(stub: Stubber) -> None:
    stub.add_response(
        "stop_service_deployment",
        {"serviceDeploymentArn": sd("new")},
        {"serviceDeploymentArn": sd("new"), "stopType": "ROLLBACK"},
    )
    assert stop_service_deployment(stub.client, sd("new")) == sd("new")


@pytest.mark.parametrize(
    ("code", "throttle"), [("ThrottlingException", True), ("AccessDeniedException", False)]
)
def test_every_failure_is_a_typed_error_raised_from_the_aws_error(
    stub: Stubber, code: str, throttle: bool
) -> None:
    stub.add_client_error("stop_service_deployment", code, http_status_code=400)
    with pytest.raises(ServiceDeploymentError) as raised:
        stop_service_deployment(stub.client, sd("new"))
    assert error_code(raised.value) == code
    assert is_throttle(raised.value) is throttle
    assert raised.value.__cause__ is not None
