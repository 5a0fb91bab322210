"""Racing pushes and racing records: real threads, injected delays and failures, moto underneath.

Two deploy_on_push invocations for two tags of one repository race on the same services; the
tracker's event can arrive before the deployer has written its record; the record write can
fail after the services rolled. Each test would fail if the guarantee broke.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from ecspilot.aws.service_state import Claim, newer_claims
from ecspilot.errors import DeployFailuresError
from ecspilot.interfaces.runtime import Runtime
from ecspilot_dev.local import invoke, load_event
from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox, fake_digest
from tests.conftest import MakeRuntime
from tests.faults import Faults
from tests.moto_state import set_image_pushed_at
from tests.races import race

PUSH = "deploy_on_push"
TRACK = "track_deployments"
SERVICES = [f"web-{i}" for i in range(6)]


def config(*, job: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "version": 1,
        "services": [
            {"name": name, "cluster": "prod", "containers": {"app": {"repository": "web", "tags": ["v*"]}}}
            for name in SERVICES
        ],
    }
    if job:
        out["jobs"] = [
            {
                "name": "migrate",
                "cluster": "prod",
                "task_definition": "migrate",
                "containers": {"app": {"repository": "web", "tags": ["v*"]}},
            }
        ]
    return out


@pytest.fixture
def world(sandbox: Sandbox) -> Sandbox:
    sandbox.cluster("prod")
    sandbox.repository("web")
    for name in SERVICES:
        sandbox.service("prod", name, sandbox.task_definition(name, {"app": sandbox.image("web", "v0")}))
    sandbox.task_definition("migrate", {"app": sandbox.image("web", "v0")})
    return sandbox


def running_digest(rt: Runtime, service: str) -> str:
    svc = rt.clients.ecs.describe_services(cluster="prod", services=[service])["services"][0]
    td = rt.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    return str(td["containerDefinitions"][0]["image"]).rsplit("@", 1)[-1]


def revision_images(rt: Runtime, family: str) -> list[str]:
    arns = rt.clients.ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
    return [
        rt.clients.ecs.describe_task_definition(taskDefinition=a)["taskDefinition"]["containerDefinitions"][
            0
        ]["image"]
        for a in arns
    ]


def claims_digest(params: Mapping[str, Any]) -> str:
    """The digest a TransactWriteItems claims (ecspilot.aws.service_state), or ''."""
    items = params.get("TransactItems", [])
    values = items[0]["Update"]["ExpressionAttributeValues"] if items else {}
    return str(values.get(":c0", {}).get("M", {}).get("digest", {}).get("S", ""))


def test_when_the_older_push_lands_last_at_ecs_the_newer_revision_is_applied_again(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    # GIVEN v1 (pushed a minute ago) and v2 (pushed now), both matching every service
    rt = make_runtime(config())
    older, newer = world.push("web", "v1"), world.push("web", "v2")
    set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=60)
    # AND the worst interleaving: v1 claims the services first, v2 claims (and updates) next,
    # and v1's UpdateService calls land at ECS after v2's
    v2_claims_late = faults.fail(
        "TransactWriteItems", "delay", seconds=0.3, when=lambda p: claims_digest(p) == fake_digest("web:v2")
    )
    v1_updates_late = faults.fail(
        "UpdateService",
        "delay",
        seconds=0.8,
        when=lambda p: _revision_image(rt, str(p.get("taskDefinition", ""))).endswith(fake_digest("web:v1")),
    )
    # WHEN both are delivered at the same moment to two invocations
    results = race(lambda: invoke(PUSH, older), lambda: invoke(PUSH, newer))
    # THEN neither failed, the interleaving happened, and every service ends on v2
    assert not [r for r in results if isinstance(r, Exception)], results
    assert v2_claims_late.fired == 1
    assert v1_updates_late.fired == len(SERVICES)
    assert {running_digest(rt, s) for s in SERVICES} == {fake_digest("web:v2")}
    # AND v1's invocation says it re-applied v2's revision after its own landed
    assert {o["outcome"] for o in results[0]["services"]} == {"stale"}
    assert all("applied again" in o["reason"] for o in results[0]["services"])
    assert {o["outcome"] for o in results[1]["services"]} == {"deployed"}


@pytest.mark.parametrize("rounds", range(3))
def test_two_racing_pushes_on_real_threads_always_end_on_the_newer_image(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults, rounds: int
) -> None:
    # GIVEN v1 (older) and v2, and UpdateService calls that land in a random order (seeded)
    rt = make_runtime(config())
    older, newer = world.push("web", "v1"), world.push("web", "v2")
    set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=60)
    faults.fail("UpdateService", "delay", seconds=0.05, rate=0.5, seed=rounds)
    # WHEN both race
    results = race(lambda: invoke(PUSH, older), lambda: invoke(PUSH, newer))
    # THEN every service runs v2
    assert not [r for r in results if isinstance(r, Exception)], results
    assert {running_digest(rt, s) for s in SERVICES} == {fake_digest("web:v2")}


def _revision_image(rt: Runtime, arn: str) -> str:
    if not arn:
        return ""
    td = rt.clients.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    return str(td["containerDefinitions"][0]["image"])


def test_an_older_push_arriving_after_the_newer_one_is_stale_and_changes_nothing(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN v2 deployed, and v1 pushed before it (its event delivered late)
    rt = make_runtime(config())
    older, newer = world.push("web", "v1"), world.push("web", "v2")
    set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=60)
    invoke(PUSH, newer)
    # WHEN v1's event arrives
    result = invoke(PUSH, older)
    # THEN no service moves back
    assert {o["outcome"] for o in result["services"]} == {"stale"}
    assert {running_digest(rt, s) for s in SERVICES} == {fake_digest("web:v2")}


def test_without_the_state_table_claims_cannot_be_made_so_a_dynamodb_outage_deploys_nothing(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    # GIVEN the state table failing every write (an outage beyond retries)
    rt = make_runtime(config())
    event = world.push("web", "v1")
    outage = faults.fail("TransactWriteItems", service="dynamodb", code="InternalServerError")
    # WHEN the push arrives
    with pytest.raises(DeployFailuresError) as info:
        invoke(PUSH, event)
    # THEN no service was updated without its claim, and the invocation fails so Lambda retries
    assert outage.fired >= 1
    assert {running_digest(rt, s) for s in SERVICES} == {world.image("web", "v0")}
    assert "not deployed" in str(info.value)
    # AND once the outage is over, the retry deploys everything with the revision it registered
    faults.clear()
    invoke(PUSH, event)
    assert {running_digest(rt, s) for s in SERVICES} == {fake_digest("web:v1")}


def test_a_completed_event_before_the_record_is_written_meets_it_on_one_item(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    # GIVEN one service, and the deployer's record write held back while ECS reports completion
    rt = make_runtime({**config(), "services": config()["services"][:1]})
    event = world.push("web", "v1")
    completed: list[dict[str, Any]] = []

    def track_first(params: Mapping[str, Any]) -> bool:
        items = params.get("TransactItems", [])
        is_record = bool(items) and items[0]["Update"]["Key"]["pk"]["S"].startswith("DEPLOYMENT#")
        if is_record and not completed:
            deployment_id = items[0]["Update"]["Key"]["pk"]["S"].removeprefix("DEPLOYMENT#")
            completed.append(invoke(TRACK, _completed(deployment_id, SERVICES[0])))
        return False

    faults.fail("TransactWriteItems", "delay", when=track_first)
    # WHEN the push is deployed (the tracker's COMPLETED event lands before the record write)
    result = invoke(PUSH, event)
    # THEN there is one record of the deployment: COMPLETED, with what the deployer knew
    [service] = result["services"]
    records = rt.history.deployments("prod", SERVICES[0])
    assert len(records) == 1
    [record] = records
    assert record["deployment_id"] == service["deployment_id"]
    assert record["status"] == "COMPLETED"
    assert record["trigger"] == "push"
    assert record["image_digest"] == fake_digest("web:v1")
    assert len(completed) == 1
    assert completed[0]["moved"][0]["to"] == "COMPLETED"


def _completed(deployment_id: str, service: str) -> dict[str, Any]:
    event = load_event(
        "ecs_deployment_completed",
        {"deploymentId": deployment_id},
        resources=[f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/{service}"],
    )
    event["id"] = f"completed-{deployment_id}"
    return event


def test_a_failed_record_write_is_repaired_by_the_retry_and_the_jobs_are_still_registered(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    # GIVEN services and a job following web, and the record write failing beyond retries once
    rt = make_runtime(config(job=True))
    event = world.push("web", "v1")
    failing = faults.fail(
        "TransactWriteItems",
        service="dynamodb",
        code="ProvisionedThroughputExceededException",
        times=1,
        when=lambda p: p["TransactItems"][0]["Update"]["Key"]["pk"]["S"].startswith("DEPLOYMENT#"),
    )
    # WHEN the push is deployed
    with pytest.raises(DeployFailuresError) as info:
        invoke(PUSH, event)
    # THEN the services rolled and the job's family got its revision, but the invocation failed
    assert failing.fired == 1
    assert "deployment records not written" in str(info.value)
    assert {running_digest(rt, s) for s in SERVICES} == {fake_digest("web:v1")}
    assert revision_images(rt, "migrate")[-1].endswith(fake_digest("web:v1"))
    assert all(rt.history.deployments("prod", s) == [] for s in SERVICES)
    # WHEN Lambda retries the same event
    retry = invoke(PUSH, event)
    # THEN every deployment is recorded (as the push's), and nothing was registered again
    assert {o["outcome"] for o in retry["services"]} == {"unchanged"}
    for s in SERVICES:
        [record] = rt.history.deployments("prod", s)
        assert (record["status"], record["trigger"], record["image_digest"]) == (
            "IN_PROGRESS",
            "push",
            fake_digest("web:v1"),
        )
    assert len(revision_images(rt, "migrate")) == 2
    # AND a third delivery writes nothing at all
    again = invoke(PUSH, event)
    assert {o["outcome"] for o in again["services"]} == {"unchanged"}


CLAIM = Claim("prod", "web", "app", "sha256:" + "a" * 64, 100.0, "arn:td/web:2")


@pytest.mark.parametrize(
    ("state", "newer"),
    [
        ({}, []),
        ({"image#app": {"digest": CLAIM.digest, "pushed_at": 100, "task_definition": "arn:td/web:2"}}, []),
        (
            {
                "image#app": {
                    "digest": "sha256:" + "b" * 64,
                    "pushed_at": 200,
                    "task_definition": "arn:td/web:3",
                }
            },
            [Claim("prod", "web", "app", "sha256:" + "b" * 64, 200.0, "arn:td/web:3")],
        ),
        ({"image#other": {"digest": "sha256:" + "b" * 64, "pushed_at": 200, "task_definition": "x"}}, []),
    ],
    ids=["no-state", "mine", "newer-claimed", "other-container"],
)
def test_newer_claims_are_the_state_s_claims_that_differ_from_what_was_applied(
    state: dict[str, Any], newer: list[Claim]
) -> None:
    assert newer_claims([CLAIM], state) == newer
