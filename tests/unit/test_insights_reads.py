"""The insights' one read: a service's records of the period, one Query per 1 MB page (botocore's
Stubber on a real DynamoDB client: the requests are checked against the API model)."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from ecspilot.aws.history import History
from ecspilot.errors import AwsError
from ecspilot.insights.reads import read_period, service_records

SINCE = datetime(2026, 11, 1, tzinfo=UTC)


def query(start_key: dict[str, dict[str, str]] | None = None, since: str = "2026-11-01") -> dict[str, object]:
    params: dict[str, object] = {
        "TableName": "state",
        "IndexName": "gsi1",
        "KeyConditionExpression": "gsi1pk = :pk AND gsi1sk BETWEEN :from AND :to",
        "ExpressionAttributeValues": {
            ":pk": {"S": "SERVICE#prod#web"},
            ":from": {"S": f"DEPLOY#{since}T00:00:00Z"},
            ":to": {"S": "DEPLOY#~"},
        },
    }
    if start_key is not None:
        params["ExclusiveStartKey"] = start_key
    return params


def item(n: int) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"DEPLOYMENT#ecs-svc/{n}"}, "sk": {"S": "DEPLOYMENT"}, "status": {"S": "COMPLETED"}}


@pytest.fixture
def client() -> object:
    return boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_a_period_longer_than_one_page_is_read_page_after_page(client: object) -> None:
    last = {"pk": {"S": "DEPLOYMENT#ecs-svc/2"}, "sk": {"S": "DEPLOYMENT"}}
    with Stubber(client) as stub:  # type: ignore[arg-type]
        stub.add_response("query", {"Items": [item(1), item(2)], "LastEvaluatedKey": last}, query())
        stub.add_response("query", {"Items": [item(3)]}, query(last))
        items, requests = service_records(History(client, "state"), "prod", "web", SINCE)  # type: ignore[arg-type]
        stub.assert_no_pending_responses()
    assert [i["pk"] for i in items] == [f"DEPLOYMENT#ecs-svc/{n}" for n in (1, 2, 3)]
    assert requests == 2


def test_a_failed_page_fails_the_whole_read_with_the_service_named(client: object) -> None:
    with Stubber(client) as stub:  # type: ignore[arg-type]
        # read_period reads from a day before the period: a deployment started then may end in it
        stub.add_client_error("query", "ResourceNotFoundException", expected_params=query(since="2026-10-31"))
        with pytest.raises(AwsError, match="reading the deployment records failed") as failure:
            read_period(History(client, "state"), {"web": ("prod", "web")}, ["web"], SINCE, max_workers=1)  # type: ignore[arg-type]
    assert failure.value.context["service"] == "web"


def test_without_a_state_table_nothing_is_read() -> None:
    assert service_records(History(None, None), "prod", "web", SINCE) == ([], 0)
