"""Daemons everywhere, against moto: the reconcile handler creates, updates and leaves alone
DAEMON services on every configured cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from ecspilot.aws.clients import Clients
from ecspilot.daemons.decisions import DAEMON_TAG, MANAGED_TAG
from ecspilot.daemons.ecs_edge import list_cluster_arns
from ecspilot.interfaces import cli
from ecspilot_dev.local import CallRecorder, invoke, load_event
from ecspilot_dev.sandbox import Sandbox
from tests.conftest import MakeRuntime
from tests.faults import Faults

FLUENT_BIT = "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable"
LINUX = "attribute:ecs.os-type == linux"


def log_agent(**overrides: Any) -> dict[str, Any]:
    """A daemon entry of the config: log-agent on alpha and bravo, Linux hosts only."""
    return {
        "name": "log-agent",
        "clusters": ["alpha", "bravo"],
        "task_definition": "fluent-bit",
        "placement_constraints": [LINUX],
        **overrides,
    }


def config(*daemons: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "daemons": list(daemons)}


def register_fluent_bit(sandbox: Sandbox, tag: str = "stable") -> str:
    return sandbox.task_definition("fluent-bit", {"fluent-bit": FLUENT_BIT.replace("stable", tag)})


def changes(result: dict[str, Any]) -> dict[str, str]:
    """target -> change, from the handler's answer."""
    return {a["target"]: a["change"] for a in result["actions"]}


def service(clients: Clients, cluster: str, name: str = "log-agent") -> dict[str, Any]:
    [svc] = clients.ecs.describe_services(cluster=cluster, services=[name], include=["TAGS"])["services"]
    return dict(svc)


@pytest.fixture
def two_clusters(sandbox: Sandbox) -> str:
    for name in ("alpha", "bravo"):
        sandbox.cluster(name)
    return register_fluent_bit(sandbox)


def test_reconcile_creates_the_daemon_service_on_every_listed_cluster(
    two_clusters: str, make_runtime: MakeRuntime, recorder: CallRecorder, clients: Clients
) -> None:
    # GIVEN two clusters without the log agent
    make_runtime(config(log_agent()))
    # WHEN the rate schedule runs reconcile
    result = invoke("reconcile", {})
    # THEN a DAEMON service is created on each, tagged as ecspilot's, with the constraints
    assert changes(result) == {"alpha/log-agent": "create", "bravo/log-agent": "create"}
    assert all(a["applied"] for a in result["actions"])
    assert recorder.writes() == ["CreateService", "CreateService"]
    for cluster in ("alpha", "bravo"):
        svc = service(clients, cluster)
        assert (svc["schedulingStrategy"], svc["launchType"], svc["taskDefinition"]) == (
            "DAEMON",
            "EC2",
            two_clusters,
        )
        tags = {t["key"]: t["value"] for t in svc["tags"]}
        assert (tags[MANAGED_TAG], tags[DAEMON_TAG]) == ("true", "log-agent")
    sent = recorder.params("CreateService")
    assert {p["cluster"] for p in sent} == {"alpha", "bravo"}
    assert all(p["placementConstraints"] == [{"type": "memberOf", "expression": LINUX}] for p in sent)


def test_daemon_services_are_never_sent_a_desired_count_or_a_placement_strategy(
    two_clusters: str, sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN daemons created, then a new revision and new constraints (create and update both happen)
    make_runtime(config(log_agent()))
    invoke("reconcile", {})
    created = recorder.params("CreateService")
    register_fluent_bit(sandbox, "v2")
    constraints = [LINUX, "attribute:ecs.instance-type =~ t3.*"]
    make_runtime(config(log_agent(placement_constraints=constraints)), table=False)
    invoke("reconcile", {})
    # WHEN we look at every CreateService and UpdateService ecspilot sent
    sent = created + recorder.params("UpdateService")
    # THEN none carries a desired count or a strategy
    assert [len(created), len(sent)] == [2, 4]
    forbidden = {"desiredCount", "placementStrategy", "capacityProviderStrategy"}
    assert all(not forbidden & p.keys() for p in sent)


def test_a_second_run_makes_no_write_call(
    two_clusters: str, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN the daemons were created by a first reconcile
    make_runtime(config(log_agent()))
    invoke("reconcile", {})
    recorder.reset()
    # WHEN reconcile runs again
    result = invoke("reconcile", {})
    # THEN everything is in sync and AWS saw reads only
    assert changes(result) == {"alpha/log-agent": "in-sync", "bravo/log-agent": "in-sync"}
    assert recorder.writes() == []
    assert result["summary"] == {"in-sync": 2}


def test_a_new_task_definition_revision_updates_the_daemon_everywhere(
    two_clusters: str, sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder, clients: Clients
) -> None:
    # GIVEN daemons at fluent-bit:1
    make_runtime(config(log_agent()))
    invoke("reconcile", {})
    # WHEN fluent-bit:2 is registered and reconcile runs
    revision_2 = register_fluent_bit(sandbox, "v2")
    recorder.reset()
    result = invoke("reconcile", {})
    # THEN both services move to it with UpdateService carrying only the task definition
    assert changes(result) == {"alpha/log-agent": "update", "bravo/log-agent": "update"}
    assert {a["detail"] for a in result["actions"]} == {"task definition fluent-bit:1 -> fluent-bit:2"}
    assert recorder.writes() == ["UpdateService", "UpdateService"]
    assert all(p.keys() == {"cluster", "service", "taskDefinition"} for p in recorder.params("UpdateService"))
    assert service(clients, "alpha")["taskDefinition"] == revision_2
    # AND the family's latest revision was resolved once for both clusters
    assert recorder.count("DescribeTaskDefinition") == 1


def test_a_pinned_revision_stays_put_when_the_family_moves_on(
    two_clusters: str, sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN a daemon pinned to fluent-bit:1 and a newer fluent-bit:2
    make_runtime(config(log_agent(task_definition="fluent-bit:1")))
    invoke("reconcile", {})
    register_fluent_bit(sandbox, "v2")
    recorder.reset()
    # WHEN reconcile runs
    result = invoke("reconcile", {})
    # THEN nothing changes
    assert set(changes(result).values()) == {"in-sync"}
    assert recorder.writes() == []


def test_changed_placement_constraints_update_the_service_and_then_settle(
    two_clusters: str, make_runtime: MakeRuntime, recorder: CallRecorder, clients: Clients
) -> None:
    # GIVEN daemons created with the Linux constraint
    make_runtime(config(log_agent()))
    invoke("reconcile", {})
    # WHEN the config drops every constraint
    make_runtime(config(log_agent(placement_constraints=[])), table=False)
    result = invoke("reconcile", {})
    # THEN UpdateService removes them (an empty list), and the next run is a no-op
    assert {a["detail"] for a in result["actions"]} == {"placement constraints"}
    assert [p["placementConstraints"] for p in recorder.params("UpdateService")] == [[], []]
    assert service(clients, "bravo")["placementConstraints"] == []
    recorder.reset()
    assert set(changes(invoke("reconcile", {})).values()) == {"in-sync"}
    assert recorder.writes() == []


def test_a_same_named_service_not_created_by_ecspilot_is_a_conflict_and_left_alone(
    two_clusters: str, sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder, clients: Clients
) -> None:
    # GIVEN a hand-made REPLICA service called log-agent on alpha, running an old image
    old = sandbox.task_definition("handmade", {"agent": FLUENT_BIT})
    sandbox.service("alpha", "log-agent", old, desired=3)
    make_runtime(config(log_agent()))
    # WHEN reconcile runs
    result = invoke("reconcile", {})
    # THEN alpha reports a conflict and its service is untouched; bravo still gets its daemon
    assert changes(result) == {"alpha/log-agent": "conflict", "bravo/log-agent": "create"}
    assert "not created by ecspilot" in result["actions"][0]["detail"]
    assert [p["cluster"] for p in recorder.params("CreateService")] == ["bravo"]
    assert recorder.count("UpdateService") == 0
    svc = service(clients, "alpha")
    assert (svc["taskDefinition"], svc["desiredCount"], svc["schedulingStrategy"]) == (old, 3, "REPLICA")


def test_a_missing_cluster_is_an_error_that_does_not_stop_the_others(
    two_clusters: str, make_runtime: MakeRuntime, clients: Clients
) -> None:
    # GIVEN the config lists a cluster that does not exist between two that do
    make_runtime(config(log_agent(clusters=["alpha", "ghost", "bravo"])))
    # WHEN reconcile runs
    result = invoke("reconcile", {})
    # THEN ghost is an error, alpha and bravo get their daemon
    assert changes(result) == {
        "alpha/log-agent": "create",
        "ghost/log-agent": "error",
        "bravo/log-agent": "create",
    }
    assert "cluster not found" in result["actions"][1]["detail"]
    assert service(clients, "bravo")["status"] == "ACTIVE"


@pytest.mark.parametrize("operation", ["DescribeServices", "CreateService"])
def test_a_cluster_whose_calls_fail_does_not_stop_the_others(
    operation: str, sandbox: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    # GIVEN three clusters, and AWS refusing one call on the middle one
    for name in ("alpha", "locked", "bravo"):
        sandbox.cluster(name)
    register_fluent_bit(sandbox)
    faults.fail(operation, "error", code="AccessDeniedException", when=lambda p: p.get("cluster") == "locked")
    make_runtime(config(log_agent(clusters=["alpha", "locked", "bravo"])))
    # WHEN reconcile runs
    result = invoke("reconcile", {})
    # THEN locked is an error naming the refusal, and the others are created
    assert changes(result) == {
        "alpha/log-agent": "create",
        "locked/log-agent": "error",
        "bravo/log-agent": "create",
    }
    assert "AccessDeniedException" in result["actions"][1]["detail"]
    assert result["summary"] == {"create": 2, "error": 1}


def test_star_reaches_every_cluster_of_the_account_in_batches(
    sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN 105 clusters (more than one DescribeClusters call holds), two without the opt-in tag
    for i in range(105):
        sandbox.cluster(f"c{i:03d}", tags=None if i in (7, 70) else {"daemons": "on"})
    register_fluent_bit(sandbox)
    make_runtime(config(log_agent(clusters="*", cluster_tag={"key": "daemons", "value": "on"})))
    # WHEN reconcile runs
    result = invoke("reconcile", {})
    # THEN every tagged cluster gets the daemon and the untagged ones are not targets
    assert result["summary"] == {"create": 103}
    assert "c007/log-agent" not in changes(result)
    assert recorder.count("ListClusters") == 1  # moto answers in one page; see the paginator test
    assert recorder.count("DescribeClusters") == 2  # 100 + 5
    assert all(len(p["clusters"]) <= 100 for p in recorder.params("DescribeClusters"))
    assert recorder.count("DescribeServices") == 103


def test_listing_clusters_follows_every_page(clients: Clients) -> None:
    # GIVEN ListClusters answers in two pages (moto never paginates it; real ECS does, 100 a page)
    ecs = clients.ecs
    arns = [f"arn:aws:ecs:us-east-1:123456789012:cluster/c{i}" for i in range(3)]
    with Stubber(ecs) as stub:
        stub.add_response("list_clusters", {"clusterArns": arns[:2], "nextToken": "page-2"}, {})
        stub.add_response("list_clusters", {"clusterArns": arns[2:]}, {"nextToken": "page-2"})
        # WHEN ecspilot lists the account's clusters
        found = list_cluster_arns(clients.ecs)
        # THEN it followed the token to the last page
        stub.assert_no_pending_responses()
    assert found == arns


def test_daemon_services_are_described_ten_per_call_per_cluster(
    sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN twelve daemons on one cluster
    sandbox.cluster("alpha")
    register_fluent_bit(sandbox)
    make_runtime(config(*(log_agent(name=f"agent-{i:02d}", clusters=["alpha"]) for i in range(12))))
    # WHEN reconcile runs
    result = invoke("reconcile", {})
    # THEN they are described in two calls (10 + 2) and all created
    assert result["summary"] == {"create": 12}
    assert [len(p["services"]) for p in recorder.params("DescribeServices")] == [10, 2]


def test_a_deleted_daemon_is_recreated_when_the_delete_service_event_arrives(
    two_clusters: str, make_runtime: MakeRuntime, clients: Clients, recorder: CallRecorder
) -> None:
    # GIVEN the daemons exist, and someone deletes alpha's by hand
    make_runtime(config(log_agent()))
    invoke("reconcile", {})
    clients.ecs.delete_service(cluster="alpha", service="log-agent", force=True)
    recorder.reset()
    # WHEN CloudTrail's DeleteService reaches the reconcile function through EventBridge
    event = load_event(
        "cloudtrail_delete_service", {"requestParameters": {"cluster": "alpha", "service": "log-agent"}}
    )
    result = invoke("reconcile", event)
    # THEN alpha's daemon is created again; bravo's is left as it is
    assert changes(result) == {"alpha/log-agent": "create", "bravo/log-agent": "in-sync"}
    assert "INACTIVE" in result["actions"][0]["detail"]
    assert recorder.writes() == ["CreateService"]
    assert service(clients, "alpha")["status"] == "ACTIVE"


def test_a_new_cluster_gets_the_daemon_when_the_create_cluster_event_arrives(
    sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN a daemon on every cluster, in sync on prod
    sandbox.cluster("prod")
    register_fluent_bit(sandbox)
    make_runtime(config(log_agent(clusters="*")))
    invoke("reconcile", {})
    # WHEN a staging cluster is created and CloudTrail's CreateCluster event arrives
    sandbox.cluster("staging")
    recorder.reset()
    result = invoke("reconcile", load_event("cloudtrail_create_cluster"))
    # THEN staging gets the daemon, prod is left alone
    assert changes(result) == {"prod/log-agent": "in-sync", "staging/log-agent": "create"}
    assert [p["cluster"] for p in recorder.params("CreateService")] == ["staging"]


def test_the_cli_plan_prints_the_daemon_plan_without_changing_anything(
    two_clusters: str,
    clients: Clients,
    recorder: CallRecorder,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a config file with the log agent and no daemon service yet
    path = tmp_path / "ecspilot.yaml"
    path.write_text(json.dumps(config(log_agent())), encoding="utf-8")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    # WHEN `ecspilot plan` runs (a dry run), then `ecspilot reconcile`
    assert cli.main(["--config", str(path), "plan"]) == 0
    planned = capsys.readouterr().out
    listed = clients.ecs.list_services(cluster="alpha")["serviceArns"]
    assert cli.main(["--config", str(path), "--output", "json", "reconcile"]) == 0
    applied = json.loads(capsys.readouterr().out)
    # THEN the plan lists a create per cluster and created nothing; reconcile applied it
    assert "dry run" in planned
    assert planned.count("create") >= 2
    assert "alpha/log-agent" in planned
    assert "bravo/log-agent" in planned
    assert listed == []
    assert applied["summary"] == {"create": 2}
    assert len(clients.ecs.list_services(cluster="alpha")["serviceArns"]) == 1


def test_when_clusters_cannot_be_listed_each_daemon_reports_an_error(
    sandbox: Sandbox, make_runtime: MakeRuntime, faults: Faults, recorder: CallRecorder
) -> None:
    # GIVEN a daemon on every cluster, and ListClusters refused
    sandbox.cluster("alpha")
    register_fluent_bit(sandbox)
    faults.fail("ListClusters", "error", code="AccessDeniedException")
    make_runtime(config(log_agent(clusters="*")))
    # WHEN reconcile runs
    result = invoke("reconcile", {})
    # THEN the daemon is one error action saying why, and nothing was written
    assert changes(result) == {"*/log-agent": "error"}
    assert "ListClusters failed" in result["actions"][0]["detail"]
    assert recorder.writes() == []


def test_a_create_service_whose_reply_was_lost_never_makes_a_second_daemon_nor_a_conflict(
    two_clusters: str, make_runtime: MakeRuntime, recorder: CallRecorder, clients: Clients, faults: Faults
) -> None:
    # GIVEN CreateService on alpha is applied by ECS but its reply is lost, so botocore sends it again
    rule = faults.fail("CreateService", "lost-reply", times=1, when=lambda p: p.get("cluster") == "alpha")
    make_runtime(config(log_agent()))
    # WHEN reconcile runs, then runs again
    first = invoke("reconcile", {})
    recorder.reset()
    second = invoke("reconcile", {})
    # THEN alpha has exactly one log-agent service, ecspilot's, and the next run finds it in sync
    assert rule.fired == 1
    # (moto answers the repeated CreateService; real ECS may refuse it: an error action, either way)
    assert changes(first)["alpha/log-agent"] in ("create", "error")
    assert changes(first)["bravo/log-agent"] == "create"
    listed = clients.ecs.list_services(cluster="alpha")["serviceArns"]
    assert [arn.rsplit("/", 1)[-1] for arn in listed] == ["log-agent"]
    assert service(clients, "alpha")["schedulingStrategy"] == "DAEMON"
    assert changes(second) == {"alpha/log-agent": "in-sync", "bravo/log-agent": "in-sync"}
    assert recorder.writes() == []


def test_a_task_definition_read_throttled_past_retries_fails_only_its_daemons_and_the_next_run_heals(
    two_clusters: str, sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder, faults: Faults
) -> None:
    # GIVEN two daemons on different task definitions, and DescribeTaskDefinition of one of them
    # throttled longer than botocore's retries
    sandbox.task_definition("node-exporter", {"exporter": "prom/node-exporter:v1"})
    exporter = {"name": "node-exporter", "clusters": ["alpha"], "task_definition": "node-exporter"}
    rule = faults.fail(
        "DescribeTaskDefinition", "error", times=1, when=lambda p: p["taskDefinition"] == "fluent-bit"
    )
    make_runtime(config(log_agent(), exporter))
    # WHEN reconcile runs
    first = invoke("reconcile", {})
    # THEN both log-agent targets are errors naming the throttle, described once for both of them,
    # and node-exporter is created all the same
    assert rule.fired == 1
    assert changes(first) == {
        "alpha/log-agent": "error",
        "bravo/log-agent": "error",
        "alpha/node-exporter": "create",
    }
    assert all("ThrottlingException" in a["detail"] for a in first["actions"] if a["change"] == "error")
    described = [p["taskDefinition"] for p in recorder.params("DescribeTaskDefinition")]
    assert sorted(described) == ["fluent-bit", "node-exporter"]
    # AND the next reconcile, the throttle gone, creates the log agents
    second = invoke("reconcile", {})
    assert changes(second) == {
        "alpha/log-agent": "create",
        "bravo/log-agent": "create",
        "alpha/node-exporter": "in-sync",
    }
