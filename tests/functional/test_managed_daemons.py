"""Managed daemons (ECS Managed Instances): a daemon entry with ``capacity_providers`` goes through
the Managed Daemons API. moto does not implement it, so botocore's Stubber answers with the real
API shapes and validates every request ecspilot sends against the service model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ecspilot.aws.clients import Clients
from ecspilot.daemons.decisions import DAEMON_TAG, MANAGED_TAG
from ecspilot.domain.config import parse_config
from ecspilot.interfaces import runtime
from ecspilot.interfaces.runtime import Runtime
from ecspilot.interfaces.settings import Settings
from ecspilot_dev.local import invoke
from ecspilot_dev.sandbox import REGION

PREFIX = "arn:aws:ecs:us-east-1:123456789012"
CLUSTER_ARN = f"{PREFIX}:cluster/prod"
DAEMON_ARN = f"{PREFIX}:daemon/prod/node-agent"
REVISION_ARN = f"{PREFIX}:daemon-revision/prod/node-agent/1"
CP_A = f"{PREFIX}:capacity-provider/mi-general"
CP_B = f"{PREFIX}:capacity-provider/mi-gpu"
OURS = [{"key": MANAGED_TAG, "value": "true"}, {"key": DAEMON_TAG, "value": "node-agent"}]


def daemon_td(revision: int) -> str:
    return f"{PREFIX}:daemon-task-definition/node-agent:{revision}"


@pytest.fixture
def stub(moto: None) -> Iterator[Stubber]:
    """An ECS client whose answers come from the test, installed as the handler's runtime.
    The other reconcile parts' clients (scheduler, ECR) talk to moto, never to AWS."""
    ecs = boto3.client("ecs", region_name=REGION)
    with Stubber(ecs) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def use_config(
    stub: Stubber, task_definition: str = "node-agent", providers: list[str] | None = None
) -> None:
    daemon = {
        "name": "node-agent",
        "clusters": ["prod"],
        "task_definition": task_definition,
        "capacity_providers": providers or ["mi-general", "mi-gpu"],
    }
    rt = Runtime.build(
        # one worker: the Stubber answers in order
        settings=Settings(region=REGION, max_workers=1),
        config=parse_config({"version": 1, "daemons": [daemon]}),
        clients=Clients(region=REGION, overrides={"ecs": stub.client}),
    )
    runtime.reset(rt)


def expect_cluster(stub: Stubber) -> None:
    stub.add_response(
        "describe_clusters",
        {
            "clusters": [{"clusterArn": CLUSTER_ARN, "clusterName": "prod", "status": "ACTIVE"}],
            "failures": [],
        },
        {"clusters": ["prod"], "include": ["TAGS"]},
    )


def expect_latest(stub: Stubber, revision: int) -> None:
    stub.add_response(
        "list_daemon_task_definitions",
        {"daemonTaskDefinitions": [{"arn": daemon_td(revision), "status": "ACTIVE"}]},
        {"family": "node-agent", "status": "ACTIVE", "sort": "DESC", "maxResults": 1},
    )


def expect_existing(
    stub: Stubber, revision: int, providers: list[str], tags: list[dict[str, str]] | None = None
) -> None:
    stub.add_response(
        "list_daemons",
        {"daemonSummariesList": [{"daemonArn": DAEMON_ARN, "status": "ACTIVE"}]},
        {"clusterArn": CLUSTER_ARN},
    )
    stub.add_response(
        "describe_daemon",
        {
            "daemon": {
                "daemonArn": DAEMON_ARN,
                "clusterArn": CLUSTER_ARN,
                "status": "ACTIVE",
                "currentRevisions": [
                    {
                        "arn": REVISION_ARN,
                        "capacityProviders": [{"arn": p, "runningCount": 2} for p in providers],
                        "totalRunningCount": 2 * len(providers),
                    }
                ],
            }
        },
        {"daemonArn": DAEMON_ARN},
    )
    stub.add_response(
        "describe_daemon_revisions",
        {
            "daemonRevisions": [
                {
                    "daemonRevisionArn": REVISION_ARN,
                    "daemonArn": DAEMON_ARN,
                    "clusterArn": CLUSTER_ARN,
                    "daemonTaskDefinitionArn": daemon_td(revision),
                    "createdAt": datetime(2026, 3, 1, tzinfo=UTC),
                }
            ],
            "failures": [],
        },
        {"daemonRevisionArns": [REVISION_ARN]},
    )
    stub.add_response(
        "list_tags_for_resource", {"tags": OURS if tags is None else tags}, {"resourceArn": DAEMON_ARN}
    )


def expect_update(stub: Stubber, revision: int, providers: list[str]) -> None:
    """UpdateDaemon with exactly this revision and these capacity providers (the Stubber checks it)."""
    stub.add_response(
        "update_daemon",
        {"daemonArn": DAEMON_ARN, "status": "ACTIVE"},
        {
            "daemonArn": DAEMON_ARN,
            "daemonTaskDefinitionArn": daemon_td(revision),
            "capacityProviderArns": providers,
        },
    )


def only_action(result: dict[str, Any]) -> dict[str, Any]:
    [action] = [a for a in result["actions"] if a["kind"] == "managed-daemon"]
    return dict(action)


def test_a_missing_managed_daemon_is_created_on_its_capacity_providers(stub: Stubber) -> None:
    # GIVEN node-agent on two Managed Instances capacity providers, and no daemon on prod yet
    use_config(stub)
    expect_cluster(stub)
    expect_latest(stub, 3)
    stub.add_response("list_daemons", {"daemonSummariesList": []}, {"clusterArn": CLUSTER_ARN})
    stub.add_response(
        "create_daemon",
        {"daemonArn": DAEMON_ARN, "status": "ACTIVE"},
        {
            "daemonName": "node-agent",
            "clusterArn": CLUSTER_ARN,
            "daemonTaskDefinitionArn": daemon_td(3),
            "capacityProviderArns": [CP_A, CP_B],
            "tags": OURS,
        },
    )
    # WHEN reconcile runs
    action = only_action(invoke("reconcile", {}))
    # THEN CreateDaemon was sent (the Stubber checked its exact parameters)
    assert (action["kind"], action["target"], action["change"], action["applied"]) == (
        "managed-daemon",
        "prod/node-agent",
        "create",
        True,
    )


def test_a_new_daemon_task_definition_revision_updates_the_managed_daemon(stub: Stubber) -> None:
    # GIVEN the daemon runs node-agent:2 and node-agent:3 is the newest ACTIVE revision
    use_config(stub)
    expect_cluster(stub)
    expect_latest(stub, 3)
    expect_existing(stub, revision=2, providers=[CP_A, CP_B])
    expect_update(stub, revision=3, providers=[CP_A, CP_B])
    # WHEN reconcile runs
    action = only_action(invoke("reconcile", {}))
    # THEN UpdateDaemon moves it to node-agent:3
    assert (action["change"], action["detail"]) == ("update", "task definition node-agent:2 -> node-agent:3")


def test_a_missing_capacity_provider_updates_the_managed_daemon(stub: Stubber) -> None:
    # GIVEN the daemon covers only the general-purpose capacity provider
    use_config(stub)
    expect_cluster(stub)
    expect_latest(stub, 3)
    expect_existing(stub, revision=3, providers=[CP_A])
    expect_update(stub, revision=3, providers=[CP_A, CP_B])
    # WHEN reconcile runs
    action = only_action(invoke("reconcile", {}))
    # THEN UpdateDaemon adds the GPU one
    assert (action["change"], action["detail"]) == ("update", "capacity providers")


def test_a_managed_daemon_in_sync_makes_no_write_call(stub: Stubber) -> None:
    # GIVEN the daemon already runs the pinned revision on both capacity providers
    use_config(stub, task_definition="node-agent:2")
    expect_cluster(stub)
    stub.add_response(
        "describe_daemon_task_definition",
        {
            "daemonTaskDefinition": {
                "daemonTaskDefinitionArn": daemon_td(2),
                "family": "node-agent",
                "revision": 2,
            }
        },
        {"daemonTaskDefinition": "node-agent:2"},
    )
    expect_existing(stub, revision=2, providers=[CP_B, CP_A])
    # WHEN reconcile runs
    action = only_action(invoke("reconcile", {}))
    # THEN it is in sync; the Stubber would have refused any CreateDaemon or UpdateDaemon
    assert action["change"] == "in-sync"


def test_a_same_named_daemon_not_created_by_ecspilot_is_a_conflict(stub: Stubber) -> None:
    # GIVEN a hand-made daemon called node-agent, on an old revision
    use_config(stub)
    expect_cluster(stub)
    expect_latest(stub, 3)
    expect_existing(stub, revision=1, providers=[CP_A], tags=[{"key": "team", "value": "platform"}])
    # WHEN reconcile runs
    action = only_action(invoke("reconcile", {}))
    # THEN it is reported and left alone (no UpdateDaemon was stubbed, none was sent)
    assert action["change"] == "conflict"
    assert "not created by ecspilot" in action["detail"]


def test_a_family_without_an_active_daemon_task_definition_is_an_error(stub: Stubber) -> None:
    # GIVEN no daemon task definition registered in the family
    use_config(stub)
    expect_cluster(stub)
    stub.add_response(
        "list_daemon_task_definitions",
        {"daemonTaskDefinitions": []},
        {"family": "node-agent", "status": "ACTIVE", "sort": "DESC", "maxResults": 1},
    )
    # WHEN reconcile runs
    action = only_action(invoke("reconcile", {}))
    # THEN the daemon is an error action naming the family, and nothing else is called
    assert action["change"] == "error"
    assert "node-agent" in action["detail"]
