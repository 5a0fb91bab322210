"""Express Mode services (``express: true``): a push updates the service's primary container with
UpdateExpressGatewayService, the image pinned by digest, and records the deployment like any other.

moto implements none of the Express Gateway API: an ECS client wrapped in botocore's Stubber
answers (every request validated against the real API model; an unexpected call fails the test);
DynamoDB and ECR are moto's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ecspilot.aws.clients import Clients
from ecspilot.domain.config import parse_config
from ecspilot.errors import ConfigError, DeployFailuresError
from ecspilot.interfaces import runtime
from ecspilot.interfaces.runtime import Runtime
from ecspilot.interfaces.settings import Settings
from ecspilot_dev.local import invoke
from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox, create_state_table, fake_digest
from tests.conftest import TABLE
from tests.faults import Faults
from tests.scans import scanned

PUSH = "deploy_on_push"
PREFIX = f"arn:aws:ecs:{REGION}:{ACCOUNT}"
SERVICE_ARN = f"{PREFIX}:service/prod/api"
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
OLD_TD = f"{PREFIX}:task-definition/default-api:1"
NEW_TD = f"{PREFIX}:task-definition/default-api:2"
PRIMARY = {
    "image": f"{REGISTRY}/api@{fake_digest('api:v1')}",
    "containerPort": 8080,
    "command": ["serve"],
    "environment": [{"name": "LEVEL", "value": "info"}],
    "awsLogsConfiguration": {"logGroup": "/aws/ecs/api", "logStreamPrefix": "ecs"},
}


class World:
    def __init__(self, session: boto3.Session, stub: Stubber) -> None:
        self.clients = Clients(session=session, region=REGION, overrides={"ecs": stub.client})
        self.stub = stub
        self.sandbox = Sandbox(self.clients)
        create_state_table(self.clients, TABLE)
        self.sandbox.repository("api")

    def use(self, gates: dict[str, Any] | None = None) -> Runtime:
        service: dict[str, Any] = {
            "name": "api",
            "cluster": "prod",
            "express": True,
            "containers": {"main": {"repository": "api", "tags": ["v*"]}},
        }
        if gates:
            service["gates"] = gates
        rt = Runtime.build(
            settings=Settings(table_name=TABLE, region=REGION, account_id=ACCOUNT, max_workers=1),
            config=parse_config({"version": 1, "services": [service]}),
            clients=self.clients,
        )
        runtime.reset(rt)
        return rt

    def expect_current(self, image: str = str(PRIMARY["image"])) -> None:
        self.stub.add_response(
            "describe_express_gateway_service",
            {
                "service": {
                    "serviceArn": SERVICE_ARN,
                    "cluster": "prod",
                    "serviceName": "api",
                    "status": {"statusCode": "ACTIVE"},
                    "activeConfigurations": [
                        {
                            "serviceRevisionArn": f"{PREFIX}:service-revision/prod/api/1",
                            "taskDefinitionArn": OLD_TD,
                            "primaryContainer": {**PRIMARY, "image": image},
                        }
                    ],
                }
            },
            {"serviceArn": SERVICE_ARN},
        )

    def expect_update(self, image: str) -> None:
        self.stub.add_response(
            "update_express_gateway_service",
            {
                "service": {
                    "serviceArn": SERVICE_ARN,
                    "cluster": "prod",
                    "serviceName": "api",
                    "targetConfiguration": {
                        "serviceRevisionArn": f"{PREFIX}:service-revision/prod/api/2",
                        "taskDefinitionArn": NEW_TD,
                        "primaryContainer": {**PRIMARY, "image": image},
                    },
                }
            },
            {"serviceArn": SERVICE_ARN, "primaryContainer": {**PRIMARY, "image": image}},
        )

    def expect_deployments(self, deployments: list[dict[str, Any]]) -> None:
        self.stub.add_response(
            "describe_services",
            {"services": [{"serviceName": "api", "deployments": deployments}], "failures": []},
            {"cluster": "prod", "services": ["api"]},
        )


@pytest.fixture
def world(moto: None, faults: Faults) -> Iterator[World]:
    session = boto3.Session(region_name=REGION)
    faults.attach(session)
    with Stubber(session.client("ecs")) as stub:
        yield World(session, stub)
        stub.assert_no_pending_responses()


def test_a_push_updates_the_primary_container_by_digest_and_records_the_ecs_deployment(world: World) -> None:
    # GIVEN an Express service running v1
    rt = world.use()
    digest = fake_digest("api:v2")
    event = world.sandbox.push("api", "v2", digest)
    pinned = f"{REGISTRY}/api@{digest}"
    world.expect_current()
    # THEN (the Stubber checks it) the update sends the primary container as it was, but for
    # the image pinned by digest
    world.expect_update(pinned)
    world.expect_deployments(
        [
            {"id": "ecs-svc/222", "status": "PRIMARY", "taskDefinition": NEW_TD},
            {"id": "ecs-svc/111", "status": "ACTIVE", "taskDefinition": OLD_TD},
        ]
    )
    # WHEN the push arrives
    result = invoke(PUSH, event)
    # THEN deployed, and recorded under the ECS deployment id the tracker's events carry
    [api] = result["services"]
    assert (api["outcome"], api["deployment_id"], api["to_task_definition"]) == (
        "deployed",
        "ecs-svc/222",
        NEW_TD,
    )
    record = rt.history.deployment("ecs-svc/222")
    assert record is not None
    assert (record["status"], record["image_digest"], record["from_task_definition"]) == (
        "IN_PROGRESS",
        digest,
        OLD_TD,
    )


def test_a_redelivered_push_changes_nothing(world: World) -> None:
    world.use()
    digest = fake_digest("api:v2")
    event = world.sandbox.push("api", "v2", digest)
    world.expect_current(f"{REGISTRY}/api@{digest}")
    [api] = invoke(PUSH, event)["services"]
    assert api["outcome"] == "unchanged"


def test_without_the_deployment_listed_yet_the_record_is_keyed_by_the_service_revision(world: World) -> None:
    rt = world.use()
    digest = fake_digest("api:v3")
    event = world.sandbox.push("api", "v3", digest)
    world.expect_current()
    world.expect_update(f"{REGISTRY}/api@{digest}")
    world.expect_deployments([{"id": "ecs-svc/111", "status": "PRIMARY", "taskDefinition": OLD_TD}])
    [api] = invoke(PUSH, event)["services"]
    assert api["deployment_id"] == f"{PREFIX}:service-revision/prod/api/2"
    assert rt.history.deployment(api["deployment_id"]) is not None


def test_an_express_service_is_gated_by_its_image_scan_too(world: World) -> None:
    rt = world.use({"image_scan": {"max_severity": "MEDIUM"}})
    digest = fake_digest("api:v4")
    event = world.sandbox.push("api", "v4", digest)
    scanned(rt.clients.ecr, "api", digest, {"HIGH": 1})
    world.expect_current()  # and nothing else: an update would fail the Stubber
    [api] = invoke(PUSH, event)["services"]
    assert api["outcome"] == "refused"


def test_a_failed_update_fails_the_invocation_so_lambda_retries_it(world: World) -> None:
    # GIVEN UpdateExpressGatewayService throttled beyond retries (the Stubber's own error: it
    # answers in order, so the retry's calls are queued after it)
    world.use()
    digest = fake_digest("api:v5")
    event = world.sandbox.push("api", "v5", digest)
    world.expect_current()
    world.stub.add_client_error("update_express_gateway_service", "ThrottlingException", http_status_code=400)
    with pytest.raises(DeployFailuresError, match="UpdateExpressGatewayService failed"):
        invoke(PUSH, event)
    # WHEN Lambda retries THEN it is deployed
    world.expect_current()
    world.expect_update(f"{REGISTRY}/api@{digest}")
    world.expect_deployments([{"id": "ecs-svc/333", "status": "PRIMARY", "taskDefinition": NEW_TD}])
    [api] = invoke(PUSH, event)["services"]
    assert (api["outcome"], api["deployment_id"]) == ("deployed", "ecs-svc/333")


@pytest.mark.parametrize("containers", [{}, {"a": {"repository": "api"}, "b": {"repository": "side"}}])
def test_express_with_no_container_or_more_than_one_is_a_config_error(containers: dict[str, Any]) -> None:
    service = {"name": "api", "cluster": "prod", "express": True, "containers": containers}
    with pytest.raises(ConfigError) as error:
        parse_config({"version": 1, "services": [service]})
    assert (
        "services[0].express",
        "an Express Mode service has exactly one container (its primary container)",
    ) in (error.value.problems)
