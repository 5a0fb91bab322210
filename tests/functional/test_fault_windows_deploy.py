"""The last fault windows of the deploy (issue 23), each forced on real threads with tests/faults.py.

1. a circuit breaker's rollback is never undone by a redelivered push: the hold is part of the
   claim, and the verify step reads it again (the tracker's hold lands between the push's hold
   read and its claim, or between its claim and its UpdateService);
2. never "ok" unless the newest claim is applied: a failed verify read, a failed re-apply, a claim
   lost to a newer image not applied yet; a retry of an older push checks the claims;
3. registration decides on a positive answer only: a lost RegisterTaskDefinition reply followed
   by a failed look-up registers nothing more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from ecspilot.aws.service_state import current_claims
from ecspilot.errors import DeployFailuresError
from ecspilot.interfaces.runtime import Runtime
from ecspilot_dev.local import invoke, load_event
from ecspilot_dev.sandbox import Sandbox, fake_digest
from tests.conftest import MakeRuntime
from tests.faults import Faults
from tests.moto_state import set_image_pushed_at
from tests.races import race

PUSH = "deploy_on_push"
SERVICES = [f"web-{i}" for i in range(4)]


def config(names: list[str]) -> dict[str, Any]:
    return {
        "version": 1,
        "services": [
            {"name": n, "cluster": "prod", "containers": {"app": {"repository": "web", "tags": ["v*"]}}}
            for n in names
        ],
    }


def build_world(sandbox: Sandbox) -> Sandbox:
    """One cluster, the ``web`` repository, and SERVICES each on its own family at web:v0 (the
    bench builds the same world: ``bench/fault_windows.py``)."""
    sandbox.cluster("prod")
    sandbox.repository("web")
    for name in SERVICES:
        sandbox.service("prod", name, sandbox.task_definition(name, {"app": sandbox.image("web", "v0")}))
    return sandbox


@pytest.fixture
def world(sandbox: Sandbox) -> Sandbox:
    return build_world(sandbox)


def image_of(rt: Runtime, arn: str) -> str:
    td = rt.clients.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    return str(td["containerDefinitions"][0]["image"])


def running(rt: Runtime, name: str) -> str:
    svc = rt.clients.ecs.describe_services(cluster="prod", services=[name])["services"][0]
    return image_of(rt, str(svc["taskDefinition"])).rsplit("@", 1)[-1]


def newest_claim(rt: Runtime, name: str) -> str:
    state = rt.history.get_many([{"pk": f"SERVICE#prod#{name}", "sk": "STATE"}])
    claims = current_claims(["app"], next(iter(state.values()), {}))
    return str(claims["app"]["digest"]) if claims else ""


def of_image(rt: Runtime, tag: str) -> Callable[[Mapping[str, Any]], bool]:
    digest = fake_digest(f"web:{tag}")
    return lambda p: image_of(rt, str(p.get("taskDefinition", ""))).endswith(digest)


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(call())
        except Exception as exc:
            out.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def settled(value: Callable[[], int], quiet: float = 0.5, seconds: float = 30) -> None:
    """Wait until ``value`` stops changing for ``quiet`` seconds."""
    deadline = time.monotonic() + seconds
    last, since = value(), time.monotonic()
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        time.sleep(0.02)
        if value() != last:
            last, since = value(), time.monotonic()


def assert_invariant(rt: Runtime, results: list[Any], names: list[str]) -> None:
    """Whenever every invocation ended ok, every service runs its newest claim."""
    if all(not isinstance(r, Exception) for r in results):
        assert {n: running(rt, n) for n in names} == {n: newest_claim(rt, n) for n in names}


# --- 1. a rollback is never undone ---------------------------------------------------------------


@pytest.mark.parametrize("hold_lands_before", ["TransactWriteItems", "UpdateService"])
def test_the_trackers_hold_landing_inside_a_redelivered_push_never_puts_the_rolled_back_digest_back(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults, hold_lands_before: str
) -> None:
    # GIVEN web-0 on v1, then v2 deployed by its push, and ECS's circuit breaker rolling v2 back
    rt = make_runtime(config(["web-0"]))
    invoke(PUSH, world.push("web", "v1"))
    set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=60)
    event_v2 = world.push("web", "v2")
    invoke(PUSH, event_v2)
    v2 = rt.history.deployments("prod", "web-0")[0]
    rt.clients.ecs.update_service(cluster="prod", service="web-0", taskDefinition=v2["from_task_definition"])
    # AND v2's event redelivered: it reads the holds (none yet), then stops before its claim (or
    # before its UpdateService)
    gate = faults.pause(hold_lands_before, when=lambda p: "TransactItems" not in p or "REQUEST" not in str(p))
    thread, out = in_thread(lambda: invoke(PUSH, event_v2))
    assert gate.reached.wait(30)
    # WHEN the tracker records FAILED and writes the hold meanwhile
    failed = load_event(
        "ecs_deployment_failed",
        {"deploymentId": v2["deployment_id"]},
        resources=["arn:aws:ecs:us-east-1:123456789012:service/prod/web-0"],
    )
    invoke("track_deployments", failed)
    assert (rt.history.deployment(v2["deployment_id"]) or {}).get("status") == "FAILED"
    gate.release.set()
    thread.join(60)
    # THEN the redelivered push ends held, and the service runs v1: the rollback stands
    [result] = out
    assert not isinstance(result, Exception), result
    [svc] = result["services"]
    assert svc["outcome"] == "held", svc
    assert running(rt, "web-0") == fake_digest("web:v1")


def test_a_retry_after_a_failed_verify_read_undoes_a_held_digest_put_back(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    # GIVEN the same rollback, the redelivered push stopped before its UpdateService, the hold
    # written meanwhile, and the push's verify read then failing beyond retries
    rt = make_runtime(config(["web-0"]))
    invoke(PUSH, world.push("web", "v1"))
    set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=60)
    event_v2 = world.push("web", "v2")
    invoke(PUSH, event_v2)
    v2 = rt.history.deployments("prod", "web-0")[0]
    rt.clients.ecs.update_service(cluster="prod", service="web-0", taskDefinition=v2["from_task_definition"])
    rt.clients.ecs.update_service(
        cluster="prod",
        service="web-0",
        deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}},
    )
    gate = faults.pause("UpdateService")
    thread, out = in_thread(lambda: invoke(PUSH, event_v2))
    assert gate.reached.wait(30)
    failed = load_event(
        "ecs_deployment_failed",
        {"deploymentId": v2["deployment_id"]},
        resources=["arn:aws:ecs:us-east-1:123456789012:service/prod/web-0"],
    )
    invoke("track_deployments", failed)
    faults.fail("BatchGetItem", service="dynamodb", times=1)
    gate.release.set()
    thread.join(60)
    # THEN that invocation fails (it could not verify), and Lambda's retry puts v1 back
    [first] = out
    assert isinstance(first, DeployFailuresError), first
    result = invoke(PUSH, event_v2)
    assert result["services"][0]["outcome"] == "held"
    assert running(rt, "web-0") == fake_digest("web:v1")


# --- 2. never "ok" unless the newest claim is applied --------------------------------------------


def older_lands_last(world: Sandbox, rt: Runtime, faults: Faults) -> tuple[Any, list[Any], Any, Any, Any]:
    """v1 (older) claims every service and stops before its UpdateService calls; v2 (newer) is
    deployed meanwhile, start to end; returns v1's thread and outcome list, v2's result, the pause
    and v1's event (for Lambda's retry)."""
    older, newer = world.push("web", "v1"), world.push("web", "v2")
    set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=60)
    gate = faults.pause("UpdateService", times=None, when=of_image(rt, "v1"))
    thread, out = in_thread(lambda: invoke(PUSH, older))
    assert gate.reached.wait(30)
    return thread, out, invoke(PUSH, newer), gate, older


def test_a_failed_verify_read_of_the_older_push_fails_it_and_its_retry_applies_the_newer_image(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    rt = make_runtime(config(SERVICES))
    thread, out, newer, gate, older = older_lands_last(world, rt, faults)
    # WHEN v1's UpdateService calls land after v2's and its verify read fails beyond retries
    faults.fail("BatchGetItem", service="dynamodb", times=1)
    gate.release.set()
    thread.join(60)
    # THEN not every invocation ended ok while a service runs an older image than its claim
    assert_invariant(rt, [*out, newer], SERVICES)
    assert isinstance(out[0], DeployFailuresError), out[0]
    # AND Lambda's retry of v1 puts every service on v2
    older_retry = invoke(PUSH, older)
    assert_invariant(rt, [older_retry], SERVICES)
    assert {running(rt, n) for n in SERVICES} == {fake_digest("web:v2")}


def test_a_failed_reapply_fails_the_older_push_and_its_retry_checks_the_claims_not_the_running_digest(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    rt = make_runtime(config(SERVICES))
    thread, out, _, gate, older = older_lands_last(world, rt, faults)
    # WHEN v1 lands last and its re-apply of v2's revision fails once on one service
    faults.fail("UpdateService", "error", times=1, when=of_image(rt, "v2"))
    gate.release.set()
    thread.join(60)
    assert isinstance(out[0], DeployFailuresError), out[0]
    # THEN the retry of v1 (which runs its own digest there) applies v2: all on the newest claim
    older_retry = invoke(PUSH, older)
    assert_invariant(rt, [older_retry], SERVICES)
    assert {running(rt, n) for n in SERVICES} == {fake_digest("web:v2")}
    assert any(s["outcome"] == "stale" for s in older_retry["services"])


def test_an_older_push_losing_its_claim_to_a_newer_image_not_applied_yet_never_ends_ok_before_it_is(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    rt = make_runtime(config(SERVICES), max_workers=len(SERVICES))  # every update paused at once
    older, newer = world.push("web", "v1"), world.push("web", "v2")
    set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=60)
    # GIVEN v2 claimed every service and stopped before its UpdateService calls
    older_started = threading.Event()
    newer_image = of_image(rt, "v2")
    gate = faults.pause(
        "UpdateService", times=None, when=lambda p: not older_started.is_set() and newer_image(p)
    )
    thread, out = in_thread(lambda: invoke(PUSH, newer))
    assert gate.reached.wait(30)
    settled(lambda: gate.fired)  # every update v2 sends at once is waiting
    older_started.set()  # v1's own updates (of v2's revision too) are not held
    # WHEN v1 arrives, loses every claim, and ends
    try:
        first = invoke(PUSH, older)
    except DeployFailuresError as exc:
        first = exc
    # THEN if it ended ok, the newest claim (v2) runs everywhere already
    assert_invariant(rt, [first], SERVICES)
    gate.release.set()
    thread.join(60)
    assert_invariant(rt, [first, *out], SERVICES)
    assert {running(rt, n) for n in SERVICES} == {fake_digest("web:v2")}


# --- 3. a lost registration reply, then a failed look-up ----------------------------------------


@pytest.mark.parametrize("lookup", ["error", "network"])
def test_a_lost_register_reply_then_a_failed_lookup_registers_nothing_more(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults, lookup: str
) -> None:
    rt = make_runtime(config(["web-0"]))
    lost = faults.fail("RegisterTaskDefinition", "lost-reply", times=1)
    faults.fail("DescribeTaskDefinition", lookup, times=1, when=lambda _: lost.fired > 0)  # type: ignore[arg-type]
    event = world.push("web", "v1")
    # WHEN the reply of the registration is lost and the look-up after it fails beyond retries
    with pytest.raises(DeployFailuresError):
        invoke(PUSH, event)
    # THEN one revision was added, not two; and Lambda's retry reuses it
    arns = rt.clients.ecs.list_task_definitions(familyPrefix="web-0")["taskDefinitionArns"]
    assert len(arns) == 2
    result = invoke(PUSH, event)
    assert result["services"][0]["outcome"] == "deployed"
    assert rt.clients.ecs.list_task_definitions(familyPrefix="web-0")["taskDefinitionArns"] == arns
    assert running(rt, "web-0") == fake_digest("web:v1")


def with_lambda_retries(event: dict[str, Any], attempts: int = 3) -> Any:
    """An asynchronous invocation and Lambda's two retries: the last outcome."""
    outcome: Any = None
    for _ in range(attempts):
        try:
            return invoke(PUSH, event)
        except Exception as exc:
            outcome = exc
    return outcome


@pytest.mark.parametrize("seed", [1, 2])
def test_racing_pushes_under_faults_beyond_retries_never_end_ok_off_the_newest_claim(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults, seed: int
) -> None:
    # GIVEN v1 and v2 racing on every service, 15% of ECS and DynamoDB calls failing beyond retries
    rt = make_runtime(config(SERVICES))
    older, newer = world.push("web", "v1"), world.push("web", "v2")
    set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=60)
    faults.fail("*", service="ecs", rate=0.15, seed=seed)
    faults.fail("*", service="dynamodb", rate=0.15, seed=seed + 100, code="InternalServerError")
    faults.fail("UpdateService", "delay", seconds=0.05, rate=0.5, seed=seed)
    # WHEN both race, each with Lambda's retries
    results = race(lambda: with_lambda_retries(older), lambda: with_lambda_retries(newer))
    faults.clear()
    # THEN whenever both ended ok, every service runs its newest claim
    assert_invariant(rt, results, SERVICES)
