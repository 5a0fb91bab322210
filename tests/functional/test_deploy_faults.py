"""Deploy guarantees under injected faults: the real handlers against moto, faults from tests/faults.py.

- one failure stays one failure (throttled shared describe, network errors, a bug in one item);
- retries add no revisions (lost RegisterTaskDefinition reply, Lambda's retry after a partial failure);
- a push redelivered after a rollback is held; nothing moves a service back to an image not
  provably newer (catch-up and late push events alike).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from ecspilot.domain.taskdef import family_of
from ecspilot.errors import DeployFailuresError
from ecspilot.interfaces.runtime import Runtime
from ecspilot_dev.local import CallRecorder, invoke, load_event
from ecspilot_dev.sandbox import Sandbox, fake_digest, push_event
from tests.conftest import MakeRuntime
from tests.faults import Faults
from tests.moto_state import new_deployment_per_update, set_image_pushed_at, set_registered_at

PUSH = "deploy_on_push"


def service(name: str, repository: str = "web", tags: list[str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "cluster": "prod",
        "containers": {"app": {"repository": repository, "tags": tags or ["v*"]}},
    }


def config(*services: dict[str, Any], jobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"version": 1, "services": list(services), "jobs": jobs or []}


@pytest.fixture
def world(sandbox: Sandbox) -> Sandbox:
    sandbox.cluster("prod")
    sandbox.repository("web")
    sandbox.repository("api")
    return sandbox


def running_image(rt: Runtime, name: str) -> str:
    svc = rt.clients.ecs.describe_services(cluster="prod", services=[name])["services"][0]
    td = rt.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    return str(td["containerDefinitions"][0]["image"])


def revisions(rt: Runtime, family: str) -> list[str]:
    return list(rt.clients.ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"])


def outcomes(result: Mapping[str, Any]) -> dict[str, str]:
    return {s["name"]: s["outcome"] for s in result["services"]}


def of_family(family: str) -> Any:
    return lambda params: family_of(str(params.get("taskDefinition", ""))) == family


def failed_services(caught: pytest.ExceptionInfo[DeployFailuresError]) -> dict[str, str]:
    return {str(f.context.get("service")): str(f) for f in caught.value.failures}


# --- 6. one failure stays one failure ---------------------------------------------------------


def test_a_describe_throttled_beyond_retries_fails_only_the_services_sharing_that_task_definition(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    # GIVEN three services on web:1 and two on other:1, all following web v*
    web = world.task_definition("web", {"app": world.image("web", "v0")})
    other = world.task_definition("other", {"app": world.image("web", "v0")})
    for name in ("w-1", "w-2", "w-3"):
        world.service("prod", name, web)
    for name in ("o-1", "o-2"):
        world.service("prod", name, other)
    rt = make_runtime(config(*(service(n) for n in ("w-1", "w-2", "w-3", "o-1", "o-2"))))
    # AND DescribeTaskDefinition of the web family throttled beyond botocore's retries, every time
    rule = faults.fail("DescribeTaskDefinition", when=of_family("web"))
    # WHEN web:v1 is pushed
    with pytest.raises(DeployFailuresError) as caught:
        invoke(PUSH, world.push("web", "v1"))
    # THEN only the web:1 services fail, naming the throttling; the others roll
    assert set(failed_services(caught)) == {"w-1", "w-2", "w-3"}
    assert all("ThrottlingException" in reason for reason in failed_services(caught).values())
    assert outcomes(caught.value.result.as_dict()) == {
        "w-1": "failed",
        "w-2": "failed",
        "w-3": "failed",
        "o-1": "deployed",
        "o-2": "deployed",
    }
    for name in ("o-1", "o-2"):
        assert running_image(rt, name).endswith(fake_digest("web:v1"))
    # AND the shared describe was tried a bounded number of times (once more, per name), not per service
    assert rule.fired <= 4


def test_a_shared_describe_throttled_twice_is_tried_again_and_every_service_rolls(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    web = world.task_definition("web", {"app": world.image("web", "v0")})
    names = [f"w-{i}" for i in range(5)]
    for name in names:
        world.service("prod", name, web)
    rt = make_runtime(config(*(service(n) for n in names)))
    # GIVEN the shared describe throttled beyond botocore's retries, twice in a row
    rule = faults.fail("DescribeTaskDefinition", times=2)
    # WHEN web:v1 is pushed
    result = invoke(PUSH, world.push("web", "v1"))
    # THEN the one retry per invocation (and the fallback from the family to the revision itself)
    # absorbed it: every service rolled, on one new revision
    assert rule.fired == 2
    assert set(outcomes(result).values()) == {"deployed"}
    assert len(revisions(rt, "web")) == 2


def test_a_network_error_on_one_update_fails_that_service_only(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    web = world.task_definition("web", {"app": world.image("web", "v0")})
    for name in ("a", "b", "c"):
        world.service("prod", name, web)
    rt = make_runtime(config(*(service(n) for n in ("a", "b", "c"))))
    faults.fail("UpdateService", "network", when=lambda p: p.get("service") == "b")
    with pytest.raises(DeployFailuresError) as caught:
        invoke(PUSH, world.push("web", "v1"))
    assert list(failed_services(caught)) == ["b"]
    assert "Could not connect" in failed_services(caught)["b"]
    assert running_image(rt, "a").endswith(fake_digest("web:v1"))
    assert running_image(rt, "c").endswith(fake_digest("web:v1"))
    assert not running_image(rt, "b").endswith(fake_digest("web:v1"))


def test_a_network_error_reading_push_times_fails_only_the_services_that_need_them(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    # GIVEN one service on web by digest (its stale guard needs ECR's push times) and one by tag
    world.push("web", "v1")
    pinned = world.task_definition("pinned", {"app": f"{world.registry}/web@{fake_digest('web:v1')}"})
    by_tag = world.task_definition("tagged", {"app": world.image("web", "v0")})
    world.service("prod", "pinned", pinned)
    world.service("prod", "tagged", by_tag)
    rt = make_runtime(config(service("pinned"), service("tagged")))
    event = world.push("web", "v2")
    # AND ECR unreachable (a BotoCoreError, which used to escape the pool)
    faults.fail("DescribeImages", "network")
    with pytest.raises(DeployFailuresError) as caught:
        invoke(PUSH, event)
    assert list(failed_services(caught)) == ["pinned"]
    assert "DescribeImages failed" in failed_services(caught)["pinned"]
    assert running_image(rt, "tagged").endswith(fake_digest("web:v2"))


def test_an_unexpected_exception_in_one_service_fails_it_alone_and_the_retry_finishes_the_job(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults, recorder: CallRecorder
) -> None:
    web = world.task_definition("web", {"app": world.image("web", "v0")})
    for name in ("a", "b", "c"):
        world.service("prod", name, web)
    rt = make_runtime(config(*(service(n) for n in ("a", "b", "c"))))
    event = world.push("web", "v1")
    # GIVEN a bug that blows up the update of service b (not an AWS error, not an ecspilot error)
    boom = faults.fail(
        "UpdateService", "exception", exception=KeyError("boom"), when=lambda p: p.get("service") == "b"
    )
    # WHEN the push is handled
    with faults.active(boom), pytest.raises(DeployFailuresError) as caught:
        invoke(PUSH, event)
    # THEN b failed with a typed error caused by the bug, the others rolled, the handler failed
    [failure] = caught.value.failures
    assert failure.context["service"] == "b"
    assert "unexpected KeyError" in str(failure)
    assert outcomes(caught.value.result.as_dict()) == {"a": "deployed", "b": "failed", "c": "deployed"}
    # AND Lambda's retry rolls b onto the same revision, registering nothing
    recorder.reset()
    result = invoke(PUSH, event)
    assert outcomes(result) == {"a": "unchanged", "b": "deployed", "c": "unchanged"}
    assert recorder.count("RegisterTaskDefinition") == 0
    assert len(revisions(rt, "web")) == 2
    assert len({running_image(rt, n) for n in ("a", "b", "c")}) == 1


# --- 5. retries add no revisions ----------------------------------------------------------------


def test_a_lost_register_reply_is_found_again_instead_of_registering_twice(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    web = world.task_definition("web", {"app": world.image("web", "v0")})
    for name in ("a", "b"):
        world.service("prod", name, web)
    rt = make_runtime(config(service("a"), service("b")))
    # GIVEN RegisterTaskDefinition applied by AWS but its reply lost (botocore would resend it)
    lost = faults.fail("RegisterTaskDefinition", "lost-reply", times=1)
    # WHEN web:v1 is pushed
    result = invoke(PUSH, world.push("web", "v1"))
    # THEN the applied registration is reused: one new revision, both services on it
    assert lost.fired == 1
    assert outcomes(result) == {"a": "deployed", "b": "deployed"}
    assert len(revisions(rt, "web")) == 2
    assert result["registered"] == [revisions(rt, "web")[-1]]


def test_a_register_throttled_beyond_retries_is_retried_by_ecspilot_into_one_revision(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults, recorder: CallRecorder
) -> None:
    world.service("prod", "a", world.task_definition("web", {"app": world.image("web", "v0")}))
    rt = make_runtime(config(service("a")))
    throttled = faults.fail("RegisterTaskDefinition", times=2)
    result = invoke(PUSH, world.push("web", "v1"))
    assert throttled.fired == 2
    assert outcomes(result) == {"a": "deployed"}
    assert recorder.count("RegisterTaskDefinition") == 3
    assert len(revisions(rt, "web")) == 2


def test_a_register_answered_429_under_a_code_no_list_knows_is_retried_as_a_throttle(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults, recorder: CallRecorder
) -> None:
    # GIVEN RegisterTaskDefinition refused once with HTTP 429 and an error code no list names
    # (the one classifier, errors.is_transient, reads the status too: the old local copy did not)
    world.service("prod", "a", world.task_definition("web", {"app": world.image("web", "v0")}))
    rt = make_runtime(config(service("a")))
    refused = faults.fail("RegisterTaskDefinition", code="SlowDownPlease", status=429, times=1)
    # WHEN web:v1 is pushed
    result = invoke(PUSH, world.push("web", "v1"))
    # THEN ecspilot tried again and registered one revision
    assert refused.fired == 1
    assert outcomes(result) == {"a": "deployed"}
    assert recorder.count("RegisterTaskDefinition") == 2
    assert len(revisions(rt, "web")) == 2


def test_a_register_refused_for_a_permanent_reason_is_tried_once_and_fails_with_its_cause(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults, recorder: CallRecorder
) -> None:
    # GIVEN RegisterTaskDefinition refused as invalid (a permanent error: trying again cannot help)
    world.service("prod", "a", world.task_definition("web", {"app": world.image("web", "v0")}))
    rt = make_runtime(config(service("a")))
    faults.fail("RegisterTaskDefinition", code="ClientException")
    # WHEN web:v1 is pushed
    with pytest.raises(DeployFailuresError) as caught:
        invoke(PUSH, world.push("web", "v1"))
    # THEN one attempt, no revision, and the service's failure says why (the code of its cause)
    assert recorder.count("RegisterTaskDefinition") == 1
    assert len(revisions(rt, "web")) == 1
    assert "ClientException" in failed_services(caught)["a"]
    assert running_image(rt, "a") == world.image("web", "v0")


def test_after_a_partial_failure_the_retry_puts_every_service_on_the_one_new_revision(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults, recorder: CallRecorder
) -> None:
    # GIVEN six services on two task definitions (web:1 and other:1)
    web = world.task_definition("web", {"app": world.image("web", "v0")})
    other = world.task_definition("other", {"app": world.image("web", "v0")})
    names = {f"w-{i}": web for i in range(3)} | {f"o-{i}": other for i in range(3)}
    for name, td in names.items():
        world.service("prod", name, td)
    rt = make_runtime(config(*(service(n) for n in names)))
    event = world.push("web", "v1")
    # AND UpdateService failing, beyond retries, for one service of each task definition
    broken = faults.fail("UpdateService", when=lambda p: p.get("service") in ("w-1", "o-2"))
    # WHEN the push fails part-way and Lambda retries it once the fault passed
    with faults.active(broken), pytest.raises(DeployFailuresError) as caught:
        invoke(PUSH, event)
    assert set(failed_services(caught)) == {"w-1", "o-2"}
    recorder.reset()
    result = invoke(PUSH, event)
    # THEN every service runs the new digest, and each source has exactly one new revision
    assert outcomes(result) == {n: ("deployed" if n in ("w-1", "o-2") else "unchanged") for n in names}
    assert recorder.count("RegisterTaskDefinition") == 0
    assert len(revisions(rt, "web")) == 2
    assert len(revisions(rt, "other")) == 2
    for name in names:
        assert running_image(rt, name) == f"{world.registry}/web@{fake_digest('web:v1')}"


def test_a_job_following_a_push_gets_one_revision_when_the_reply_is_lost(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    world.task_definition("report", {"app": world.image("web", "v0")})
    job = {
        "name": "report",
        "cluster": "prod",
        "task_definition": "report",
        "containers": {"app": {"repository": "web", "tags": ["v*"]}},
    }
    rt = make_runtime(config(jobs=[job]))
    faults.fail("RegisterTaskDefinition", "lost-reply", times=1)
    [followed] = invoke(PUSH, world.push("web", "v1"))["jobs"]
    assert followed["outcome"] == "registered"
    assert len(revisions(rt, "report")) == 2


# --- 2. a push redelivered after a rollback is held ----------------------------------------------


def roll_back_v2(world: Sandbox, rt: Runtime, event_v2: dict[str, Any]) -> None:
    """v1 then v2 deployed by their events; ECS reports v2 FAILED and its circuit breaker puts the
    service back on v1's revision (moto simulates neither: the tracker gets ECS's event)."""
    with new_deployment_per_update():
        invoke(PUSH, world.push("web", "v1"))
        set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=60)
        invoke(PUSH, event_v2)
        v2 = rt.history.deployments("prod", "web-0")[0]
        failed = load_event(
            "ecs_deployment_failed",
            {"deploymentId": v2["deployment_id"]},
            resources=["arn:aws:ecs:us-east-1:123456789012:service/prod/web-0"],
        )
        invoke("track_deployments", failed)
        rt.clients.ecs.update_service(
            cluster="prod", service="web-0", taskDefinition=v2["from_task_definition"]
        )


def test_a_push_redelivered_after_a_rollback_is_held(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    world.service("prod", "web-0", world.task_definition("web", {"app": world.image("web", "v0")}))
    rt = make_runtime(config(service("web-0")))
    event_v2 = world.push("web", "v2")
    roll_back_v2(world, rt, event_v2)
    assert rt.history.deployments("prod", "web-0")[0]["status"] == "FAILED"
    recorder.reset()
    # WHEN EventBridge delivers v2's event again
    result = invoke(PUSH, event_v2)
    # THEN the service is held on v1 with the reason, nothing is written, the handler succeeds
    [svc] = result["services"]
    assert svc["outcome"] == "held"
    assert "FAILED" in svc["reason"]
    assert recorder.writes() == []
    assert running_image(rt, "web-0").endswith(fake_digest("web:v1"))
    # AND a newer push moves the service on
    result = invoke(PUSH, world.push("web", "v3"))
    assert outcomes(result) == {"web-0": "deployed"}


def test_history_is_read_only_for_services_about_to_be_deployed(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    td = world.task_definition("web", {"app": world.image("web", "v0")})
    for name in ("a", "b"):
        world.service("prod", name, td)
    make_runtime(config(service("a"), service("b")))
    event = world.push("web", "v1")
    invoke(PUSH, event)
    recorder.reset()
    invoke(PUSH, event)  # a duplicate: both services already run the digest
    assert recorder.count("Query") == 0


def test_a_failing_hold_read_deploys_nothing_unchecked_and_the_retry_deploys(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    # GIVEN two services, and the state table's read of their held digests failing once
    td = world.task_definition("web", {"app": world.image("web", "v0")})
    for name in ("a", "b"):
        world.service("prod", name, td)
    rt = make_runtime(config(service("a"), service("b")))
    event = world.push("web", "v1")
    faults.fail("BatchGetItem", service="dynamodb", code="ProvisionedThroughputExceededException", times=1)
    # WHEN the push arrives: not knowing what is held is not permission to deploy
    with pytest.raises(DeployFailuresError) as caught:
        invoke(PUSH, event)
    assert sorted(failed_services(caught)) == ["a", "b"]
    assert not running_image(rt, "a").endswith(fake_digest("web:v1"))
    # THEN Lambda's retry deploys both
    result = invoke(PUSH, event)
    assert outcomes(result) == {"a": "deployed", "b": "deployed"}


# --- 1. nothing moves a service back to an image not provably newer -----------------------------


def deployed_v2_then_deleted(world: Sandbox, make_runtime: MakeRuntime) -> Runtime:
    """A service on web:v2 (by digest, deployed by its push), v1 older in ECR, and v2's image
    then deleted from ECR (its tag removed, or expired by a lifecycle policy)."""
    world.service("prod", "web-0", world.task_definition("web", {"app": world.image("web", "v0")}))
    rt = make_runtime(config(service("web-0")))
    world.push("web", "v1")
    set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=120)
    v2 = world.push("web", "v2")
    set_image_pushed_at("web", fake_digest("web:v2"), seconds_ago=60)
    invoke(PUSH, v2)
    rt.clients.ecr.batch_delete_image(repositoryName="web", imageIds=[{"imageDigest": fake_digest("web:v2")}])
    return rt


def catch_up(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [a for a in result["actions"] if a["kind"] == "catch-up"]


def test_catch_up_holds_a_service_whose_running_image_is_gone_instead_of_rolling_it_back(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    rt = deployed_v2_then_deleted(world, make_runtime)
    set_registered_at("web", 2, seconds_ago=30)  # after v1 was pushed (120 s ago)
    recorder.reset()
    # WHEN reconcile runs: v1 is the newest *remaining* tagged image
    result = invoke("reconcile", {})
    # THEN a conflict with the reason, no write, still on v2
    [action] = catch_up(result)
    assert (action["target"], action["change"]) == ("prod/web-0", "conflict")
    assert "push time cannot be known" in action["detail"]
    assert recorder.writes() == []
    assert running_image(rt, "web-0").endswith(fake_digest("web:v2"))


def test_catch_up_deploys_an_image_pushed_after_the_running_revision_was_registered(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN web:2 (running v2, gone from ECR) registered 30 s ago, as ECS records it
    rt = deployed_v2_then_deleted(world, make_runtime)
    set_registered_at("web", 2, seconds_ago=30)
    # WHEN v3 is pushed after that, its event lost, and reconcile runs
    world.push("web", "v3")
    set_image_pushed_at("web", fake_digest("web:v3"), seconds_ago=5)
    result = invoke("reconcile", {})
    assert [(a["target"], a["change"]) for a in catch_up(result)] == [("prod/web-0", "update")]
    assert running_image(rt, "web-0").endswith(fake_digest("web:v3"))


def test_a_late_push_event_does_not_replace_an_image_gone_from_ecr(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    rt = deployed_v2_then_deleted(world, make_runtime)
    recorder.reset()
    result = invoke(PUSH, push_event("web", "v1", fake_digest("web:v1")))
    assert outcomes(result) == {"web-0": "held"}
    assert recorder.writes() == []
    assert running_image(rt, "web-0").endswith(fake_digest("web:v2"))


# --- 4. catch-up registers one revision per source task definition --------------------------------


def test_catch_up_registers_one_revision_for_services_sharing_a_task_definition_whatever_their_patterns(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    td = world.task_definition("web", {"app": world.image("web", "v0")})
    world.service("prod", "web-a", td)
    world.service("prod", "web-b", td)
    rt = make_runtime(config(service("web-a", tags=["v*"]), service("web-b", tags=["*"])))
    world.push("web", "v1")
    recorder.reset()
    result = invoke("reconcile", {})
    assert sorted((a["target"], a["change"]) for a in catch_up(result)) == [
        ("prod/web-a", "update"),
        ("prod/web-b", "update"),
    ]
    assert recorder.count("RegisterTaskDefinition") == 1
    assert len(revisions(rt, "web")) == 2
    assert running_image(rt, "web-a") == running_image(rt, "web-b")


def test_catch_up_after_a_partial_failure_reuses_the_revision_the_first_pass_registered(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    td = world.task_definition("web", {"app": world.image("web", "v0")})
    for name in ("web-a", "web-b"):
        world.service("prod", name, td)
    rt = make_runtime(config(service("web-a"), service("web-b")))
    world.push("web", "v1")
    broken = faults.fail("UpdateService", "network", when=lambda p: p.get("service") == "web-b")
    with faults.active(broken):
        first = invoke("reconcile", {})
    assert ("prod/web-b", "error") in [(a["target"], a["change"]) for a in catch_up(first)]
    invoke("reconcile", {})
    assert len(revisions(rt, "web")) == 2
    assert running_image(rt, "web-b").endswith(fake_digest("web:v1"))


def test_a_job_is_judged_by_the_same_rules_a_late_push_does_not_replace_an_image_gone_from_ecr(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN a job's family whose latest revision runs web:v2 by digest (registered by v2's push)
    world.task_definition("report", {"app": world.image("web", "v0")})
    job = {
        "name": "report",
        "cluster": "prod",
        "task_definition": "report",
        "containers": {"app": {"repository": "web", "tags": ["v*"]}},
    }
    rt = make_runtime(config(jobs=[job]))
    world.push("web", "v1")
    set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=120)
    invoke(PUSH, world.push("web", "v2"))
    # AND v2's image then deleted from ECR
    rt.clients.ecr.batch_delete_image(repositoryName="web", imageIds=[{"imageDigest": fake_digest("web:v2")}])
    recorder.reset()
    # WHEN v1's event arrives late
    [followed] = invoke(PUSH, push_event("web", "v1", fake_digest("web:v1")))["jobs"]
    # THEN the job's family is held on v2, as a service would be: nothing registered
    assert followed["outcome"] == "held"
    assert "push time cannot be known" in followed["reason"]
    assert recorder.writes() == []
    assert len(revisions(rt, "report")) == 2


def test_a_shared_describe_services_or_update_failing_once_beyond_retries_is_tried_again(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    # GIVEN twelve services (two DescribeServices batches), and the first DescribeServices and the
    # first two UpdateService calls throttled beyond botocore's retries
    td = world.task_definition("web", {"app": world.image("web", "v0")})
    names = [f"s{i:02}" for i in range(12)]
    for name in names:
        world.service("prod", name, td)
    rt = make_runtime(config(*(service(n) for n in names)))
    describe = faults.fail("DescribeServices", times=1)
    update = faults.fail("UpdateService", times=2)
    # WHEN the push arrives
    result = invoke(PUSH, world.push("web", "v1"))
    # THEN each failed call was tried once more, and every service rolled in this one invocation
    assert (describe.fired, update.fired) == (1, 2)
    assert set(outcomes(result).values()) == {"deployed"}
    assert all(running_image(rt, n).endswith(fake_digest("web:v1")) for n in names)
