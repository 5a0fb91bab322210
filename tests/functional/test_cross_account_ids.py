"""Cross-account id confusion (issue 24): an event of one account touches that account's records
only. A configured member account's deployment event carrying ecspilot's own deployment id, or
naming ecspilot's own service, leaves ecspilot's record and held digest as they were."""

from __future__ import annotations

from typing import Any

from ecspilot.interfaces.origins import foreign_arn
from ecspilot_dev.local import invoke, load_event
from ecspilot_dev.sandbox import Sandbox
from tests.conftest import MakeRuntime
from tests.functional.test_account_push import config, world
from tests.promotion_world import TARGET_ACCOUNT, TARGET_REGION

OWN = "arn:aws:ecs:us-east-1:123456789012"
MEMBER = f"arn:aws:ecs:{TARGET_REGION}:{TARGET_ACCOUNT}"


def own_record(sandbox: Sandbox, make_runtime: MakeRuntime) -> tuple[Any, dict[str, Any]]:
    w = world(sandbox, make_runtime, config())
    invoke("deploy_on_push", sandbox.push("web", "v1"))
    [record] = w.rt.history.deployments("staging", "web")
    return w, record


def member_event(
    deployment_id: str, service_arn: str, name: str = "SERVICE_DEPLOYMENT_FAILED"
) -> dict[str, Any]:
    return load_event(
        "ecs_deployment_failed",
        {"deploymentId": deployment_id, "eventName": name, "eventType": "ERROR", "reason": "forged"},
        account=TARGET_ACCOUNT,
        region=TARGET_REGION,
        resources=[service_arn],
    )


def test_a_member_event_with_ecspilots_own_deployment_id_moves_nothing(
    sandbox: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN ecspilot's own staging/web deployment, in progress
    w, record = own_record(sandbox, make_runtime)
    # WHEN the member account's (forwarded, trusted) event says that deployment id FAILED, for
    # the member's own prod/web
    out = invoke("track_deployments", member_event(record["deployment_id"], f"{MEMBER}:service/prod/web"))
    # THEN it is ignored: ecspilot's record is still in progress, no digest is held
    assert "another service" in out["ignored"]
    [after] = w.rt.history.deployments("staging", "web")
    assert after["status"] == "IN_PROGRESS"
    state = w.rt.history.get_many([{"pk": "SERVICE#staging#web", "sk": "STATE"}])
    assert not any("held" in str(k) for item in state.values() for k in item)


def test_a_member_event_naming_ecspilots_own_service_is_ignored(
    sandbox: Sandbox, make_runtime: MakeRuntime
) -> None:
    w, record = own_record(sandbox, make_runtime)
    out = invoke("track_deployments", member_event(record["deployment_id"], f"{OWN}:service/staging/web"))
    assert "names a resource elsewhere" in out["ignored"]
    [after] = w.rt.history.deployments("staging", "web")
    assert after["status"] == "IN_PROGRESS"


def test_foreign_arns_are_found_in_resources_and_detail() -> None:
    base = {"account": "111111111111", "region": "us-east-1"}
    mine = "arn:aws:ecs:us-east-1:111111111111"
    assert foreign_arn({**base, "resources": [f"{mine}:service/a/b"]}, "111111111111", "us-east-1") is None
    assert foreign_arn(
        {**base, "resources": ["arn:aws:ecs:eu-west-1:111111111111:service/a/b"]}, "111111111111", "us-east-1"
    )
    event = {
        **base,
        "resources": [],
        "detail": {"clusterArn": "arn:aws:ecs:us-east-1:222222222222:cluster/a"},
    }
    assert foreign_arn(event, "111111111111", "us-east-1") == "arn:aws:ecs:us-east-1:222222222222:cluster/a"
    # IAM role ARNs (no region) and non-ECS ARNs are not ECS resources of the event
    event = {**base, "detail": {"taskArn": f"{mine}:task/a/1", "x": "arn:aws:iam::999999999999:role/r"}}
    assert foreign_arn(event, "111111111111", "us-east-1") is None
