"""The signature gate on moto (issue 27): ECR's DescribeImageSigningStatus (moto lacks it) is
answered by botocore's Stubber for that one operation on the real ECR client (requests and
responses validated against botocore's model); everything else is moto.

A signature IN_PROGRESS at push time is deferred, re-checked by a one-time Scheduler timer
that invokes reconcile, and deployed once COMPLETE; FAILED (or no status) is refused with
ECR's reason and notified once; a promotion refuses an unsigned release."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox, fake_digest
from ecspilot_dev.service_deployments import OperationStubber
from tests.conftest import MakeRuntime
from tests.promotion_world import World
from tests.promotion_world import config as promotion_config

PUSH = "deploy_on_push"
PROFILE = f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-profiles/release"
OTHER = f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-profiles/nightly"
GROUP = "ecspilot"
TIMERS = {
    "reconcile_arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecspilot-Reconcile",
    "scheduler_role_arn": f"arn:aws:iam::{ACCOUNT}:role/ecspilot-PromotionTimerRole",
    "schedule_group": GROUP,
}


def config() -> dict[str, Any]:
    return {
        "version": 1,
        "services": [
            {
                "name": "web",
                "cluster": "prod",
                "containers": {"app": {"repository": "web", "tags": ["v*"]}},
                "gates": {"signature": {"profiles": [PROFILE]}},
            },
            {
                "name": "web-canary",
                "cluster": "prod",
                "containers": {"app": {"repository": "web", "tags": ["v*"]}},
            },
        ],
    }


@pytest.fixture
def world(sandbox: Sandbox) -> Sandbox:
    sandbox.cluster("prod")
    sandbox.repository("web")
    for name in ("web", "web-canary"):
        sandbox.service("prod", name, sandbox.task_definition(name, {"app": sandbox.image("web", "v0")}))
    sandbox.clients.scheduler.create_schedule_group(Name=GROUP)
    return sandbox


@pytest.fixture
def topic(world: Sandbox) -> tuple[str, str]:
    sns, sqs = world.clients.sns, world.clients.sqs
    topic_arn = sns.create_topic(Name="ecspilot-notify")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="ecspilot-notify-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return topic_arn, queue_url


def signing(stub: OperationStubber, digest: str, *statuses: dict[str, str], registry: str = ACCOUNT) -> None:
    stub.add_response(
        "describe_image_signing_status",
        {
            "repositoryName": "web",
            "imageId": {"imageDigest": digest},
            "registryId": registry,
            "signingStatuses": list(statuses),
        },
        {"repositoryName": "web", "imageId": {"imageDigest": digest}, "registryId": registry},
    )


def status(state: str, profile: str = PROFILE, **extra: str) -> dict[str, str]:
    return {"signingProfileArn": profile, "status": state, **extra}


def outcome(result: dict[str, Any], name: str = "web") -> dict[str, Any]:
    return dict(next(s for s in result["services"] if s["name"] == name))


def running(world: Sandbox, service: str = "web") -> str:
    svc = world.clients.ecs.describe_services(cluster="prod", services=[service])["services"][0]
    td = world.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    return str(td["containerDefinitions"][0]["image"])


def test_in_progress_at_push_time_is_deferred_then_deployed_by_the_timer_once_complete(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    rt = make_runtime(config(), **TIMERS)
    digest = fake_digest("web:v1")
    with OperationStubber(rt.clients.ecr, ("DescribeImageSigningStatus",)) as stub:
        signing(
            stub, digest, status("IN_PROGRESS"), status("COMPLETE", OTHER)
        )  # another profile's is not enough
        event = world.push("web", "v1")
        recorder.reset()
        result = invoke(PUSH, event)
        # THEN web is deferred (the ungated canary deployed), nothing registered for web
        assert outcome(result)["outcome"] == "deferred"
        assert "IN_PROGRESS" in outcome(result)["reason"]
        assert outcome(result, "web-canary")["outcome"] == "deployed"
        assert [p["family"] for p in recorder.params("RegisterTaskDefinition")] == ["web-canary"]
        assert running(world) == world.image("web", "v0")
        # AND two one-time timers invoke reconcile with this push, about 1 and 2.5 minutes later
        schedules = world.clients.scheduler.list_schedules(GroupName=GROUP)["Schedules"]
        assert len(schedules) == 2
        detail = world.clients.scheduler.get_schedule(GroupName=GROUP, Name=schedules[0]["Name"])
        assert detail["ScheduleExpression"].startswith("at(")
        assert detail["ActionAfterCompletion"] == "DELETE"
        assert detail["Target"]["Arn"] == TIMERS["reconcile_arn"]
        timer = json.loads(detail["Target"]["Input"])
        assert (timer["trigger"], timer["services"], timer["digest"]) == ("signature", ["web"], digest)
        # AND a redelivered push sets no more timers
        signing(stub, digest, status("IN_PROGRESS"))
        assert outcome(invoke(PUSH, event))["outcome"] == "deferred"
        assert len(world.clients.scheduler.list_schedules(GroupName=GROUP)["Schedules"]) == 2
        # WHEN the first timer fires, still IN_PROGRESS: still deferred, never deployed unsigned
        signing(stub, digest, status("IN_PROGRESS"))
        fired = invoke("reconcile", timer)
        assert outcome(fired)["outcome"] == "deferred"
        assert running(world) == world.image("web", "v0")
        # WHEN the second fires and the signature is COMPLETE: deployed
        signing(stub, digest, status("COMPLETE"))
        fired = invoke("reconcile", timer)
        assert outcome(fired)["outcome"] == "deployed"
        assert running(world) == f"{world.registry}/web@{digest}"
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("statuses", "reason"),
    [
        (
            [
                status(
                    "FAILED", failureCode="SIGNING_PROFILE_REVOKED", failureReason="the profile was revoked"
                )
            ],
            "SIGNING_PROFILE_REVOKED (the profile was revoked)",
        ),
        ([], "no signing status"),
        ([status("COMPLETE", OTHER)], "ECR reports only nightly"),
    ],
)
def test_failed_or_unsigned_is_refused_with_the_reason_and_notified_once(
    statuses: list[dict[str, str]],
    reason: str,
    world: Sandbox,
    make_runtime: MakeRuntime,
    topic: tuple[str, str],
) -> None:
    rt = make_runtime(config(), notify_topic_arn=topic[0])
    digest = fake_digest("web:v1")
    with OperationStubber(rt.clients.ecr, ("DescribeImageSigningStatus",)) as stub:
        event = world.push("web", "v1")
        for _ in range(2):  # the event, and its redelivery
            signing(stub, digest, *statuses)
            result = invoke(PUSH, event)
            assert outcome(result)["outcome"] == "refused"
            assert reason in outcome(result)["reason"]
        stub.assert_no_pending_responses()
    assert running(world) == world.image("web", "v0")
    got = rt.clients.sqs.receive_message(QueueUrl=topic[1], MaxNumberOfMessages=10).get("Messages", [])
    [told] = [json.loads(m["Body"]) for m in got]
    assert "unsigned image refused" in told["Subject"]
    assert reason in told["Message"]


def test_a_status_that_cannot_be_read_fails_the_service_and_deploys_nothing(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    rt = make_runtime(config())
    with OperationStubber(rt.clients.ecr, ("DescribeImageSigningStatus",)) as stub:
        stub.add_client_error("describe_image_signing_status", "AccessDeniedException", "no", 400)
        event = world.push("web", "v1")
        with pytest.raises(Exception, match="DescribeImageSigningStatus failed"):
            invoke(PUSH, event)
    assert running(world) == world.image("web", "v0")


def test_a_promotion_refuses_an_unsigned_release(sandbox: Sandbox, make_runtime: MakeRuntime) -> None:
    # GIVEN prod promoted from staging (another account), gated on the release profile
    cfg = promotion_config(bake=0)
    cfg["services"][1]["gates"] = {"signature": {"profiles": [PROFILE]}}
    world = World(sandbox, make_runtime, cfg)
    # WHEN v1 completes on staging (bake 0: the tracker promotes) and reconcile promotes again,
    # its signature read in ecspilot's registry (where the release's image is) says FAILED
    with OperationStubber(world.rt.clients.ecr, ("DescribeImageSigningStatus",)) as stub:
        digest = fake_digest("web:v1")
        for _ in range(2):
            signing(stub, digest, status("FAILED", failureCode="X", failureReason="bad key"))
        world.release("v1")
        actions = world.reconcile()
        stub.assert_no_pending_responses()
    # THEN prod keeps v0
    assert world.images()["app"] == sandbox.image("web", "v0")
    assert not any(a.change == "update" for a in actions)


def test_catch_up_defers_an_image_being_signed_and_deploys_it_on_a_later_tick(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN web:v1 pushed while the push handler was down (no event), its signature IN_PROGRESS
    rt = make_runtime({**config(), "services": config()["services"][:1]})
    digest = fake_digest("web:v1")
    world.push("web", "v1")
    with OperationStubber(rt.clients.ecr, ("DescribeImageSigningStatus",)) as stub:
        signing(stub, digest, status("IN_PROGRESS"))
        # WHEN reconcile catches up: deferred (the plan's word for windows, freezes and images
        # still being signed), nothing deployed
        [action] = [a for a in invoke("reconcile", {})["actions"] if a["kind"] == "catch-up"]
        assert (action["change"], "IN_PROGRESS" in action["detail"]) == ("deferred", True)
        assert running(world) == world.image("web", "v0")
        # AND on the next tick, signed: deployed
        signing(stub, digest, status("COMPLETE"))
        [action] = [a for a in invoke("reconcile", {})["actions"] if a["kind"] == "catch-up"]
        assert action["change"] == "update"
        stub.assert_no_pending_responses()
    assert running(world) == f"{world.registry}/web@{digest}"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"registry_id": "999999999999"}, "not in ecspilot's registry"),
        ({"region": "eu-west-1"}, "not in ecspilot's registry"),
        ({"digest": fake_digest("web:never-pushed")}, "ECR has no such image"),
        ({"tag": "v1\n"}, "not an ECR image tag"),
    ],
)
def test_a_forged_signature_timer_input_deploys_nothing(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder, change: dict[str, str], why: str
) -> None:
    # GIVEN a genuine timer's input for a pushed image (a direct invoke can send any input)
    make_runtime(config(), **TIMERS)
    event = world.push("web", "v1")
    detail = event["detail"]
    timer = {
        "trigger": "signature",
        "registry_id": ACCOUNT,
        "region": REGION,
        "repository": "web",
        "tag": "v1",
        "digest": detail["image-digest"],
        "services": ["web", "web-canary"],
        **change,
    }
    recorder.reset()
    # WHEN it reaches reconcile with one field forged THEN it is refused before any deploy call
    fired = invoke("reconcile", timer)
    assert why in fired["ignored"]
    assert recorder.count("UpdateService") == 0
    assert recorder.count("RegisterTaskDefinition") == 0
    assert running(world) == world.image("web", "v0")


def test_a_signature_timer_never_deploys_a_service_without_the_signature_gate(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN a timer naming the ungated canary (its input forged: the gate never defers it)
    make_runtime(config(), **TIMERS)
    event = world.push("web", "v1")
    timer = {
        "trigger": "signature",
        "registry_id": ACCOUNT,
        "region": REGION,
        "repository": "web",
        "tag": "v1",
        "digest": event["detail"]["image-digest"],
        "services": ["web-canary"],
    }
    recorder.reset()
    fired = invoke("reconcile", timer)
    # THEN the canary is not touched
    assert fired.get("services", []) == []
    assert recorder.count("UpdateService") == 0
