"""The image scan gate on plain rolling deployments: deploy_on_push against moto (ECR's scan
findings set per test, tests/scans.py), the real handler, faults from tests/faults.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecspilot.errors import DeployFailuresError
from ecspilot.interfaces.runtime import Runtime
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import Sandbox, fake_digest
from tests.conftest import MakeRuntime
from tests.faults import Faults
from tests.functional.test_track_deployments import emitted, metric_values
from tests.scans import scanned

PUSH = "deploy_on_push"


def config(max_severity: str = "HIGH", **extra: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "services": [
            {
                "name": "web",
                "cluster": "prod",
                "containers": {"app": {"repository": "web", "tags": ["v*"]}},
                "gates": {"image_scan": {"max_severity": max_severity}},
            },
            {
                "name": "web-canary",
                "cluster": "prod",
                "containers": {"app": {"repository": "web", "tags": ["v*"]}},
            },
            *extra.get("services", []),
        ],
    }


@pytest.fixture
def world(sandbox: Sandbox) -> Sandbox:
    sandbox.cluster("prod", instances_per_zone=1, zones=("us-east-1a",))
    sandbox.repository("web")
    for name in ("web", "web-canary"):
        td = sandbox.task_definition(name, {"app": sandbox.image("web", "v0")})
        sandbox.service("prod", name, td)
    return sandbox


@pytest.fixture
def topic(world: Sandbox) -> tuple[str, str]:
    sns, sqs = world.clients.sns, world.clients.sqs
    topic_arn = sns.create_topic(Name="ecspilot-notify")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="ecspilot-notify-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return topic_arn, queue_url


def running_image(rt: Runtime, service: str) -> str:
    svc = rt.clients.ecs.describe_services(cluster="prod", services=[service])["services"][0]
    td = rt.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    return str(td["containerDefinitions"][0]["image"])


def outcome(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in result["services"] if s["name"] == name)


def test_a_critical_image_is_refused_before_anything_is_registered_and_the_refusal_is_told(
    world: Sandbox,
    make_runtime: MakeRuntime,
    recorder: CallRecorder,
    topic: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN web gated at HIGH, and a push whose scan found a CRITICAL
    rt = make_runtime(config(services=[]), notify_topic_arn=topic[0])
    digest = fake_digest("web:v2")
    event = world.push("web", "v2", digest)
    scanned(rt.clients.ecr, "web", digest, {"CRITICAL": 1, "HIGH": 4})
    before = running_image(rt, "web")
    recorder.reset()
    capsys.readouterr()
    # WHEN the push arrives
    result = invoke(PUSH, event)
    # THEN web is refused with the reason; the ungated canary is deployed
    refused = outcome(result, "web")
    assert refused["outcome"] == "refused"
    assert "1 CRITICAL" in refused["reason"]
    assert outcome(result, "web-canary")["outcome"] == "deployed"
    # AND nothing was registered for web: one revision (the canary's family), web runs its old image
    assert [p["family"] for p in recorder.params("RegisterTaskDefinition")] == ["web-canary"]
    assert running_image(rt, "web") == before
    assert [p["service"] for p in recorder.params("UpdateService")] == ["web-canary"]
    # AND counted and told
    assert metric_values(emitted(capsys.readouterr().out), "ImagesRefused") == [1.0]
    messages = rt.clients.sqs.receive_message(QueueUrl=topic[1], MaxNumberOfMessages=10)["Messages"]
    [message] = [json.loads(m["Body"]) for m in messages]
    assert "refused" in message["Subject"]
    assert "prod/web: " in message["Message"]


def test_findings_at_the_ceiling_pass_and_the_image_is_deployed(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    rt = make_runtime(config())
    digest = fake_digest("web:v3")
    event = world.push("web", "v3", digest)
    scanned(rt.clients.ecr, "web", digest, {"HIGH": 2, "UNDEFINED": 7}, enhanced=True)
    result = invoke(PUSH, event)
    assert outcome(result, "web")["outcome"] == "deployed"
    assert running_image(rt, "web").endswith(digest)


def test_a_scan_not_complete_refuses_for_now_and_catch_up_deploys_once_it_passes(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN an image being scanned when it is pushed
    rt = make_runtime(config())
    digest = fake_digest("web:v4")
    event = world.push("web", "v4", digest)
    scanned(rt.clients.ecr, "web", digest, status="IN_PROGRESS")
    # WHEN the push arrives THEN it is refused for now, with why
    refused = outcome(invoke(PUSH, event), "web")
    assert refused["outcome"] == "refused"
    assert refused["reason"].startswith("scan not complete")
    # WHEN the scan completes clean and reconcile's catch-up runs
    scanned(rt.clients.ecr, "web", digest, {"LOW": 1})
    invoke("reconcile", {})
    # THEN the same image is deployed
    assert running_image(rt, "web").endswith(digest)


def test_an_image_never_scanned_is_refused_not_deployed_unchecked(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    rt = make_runtime(config())
    event = world.push("web", "v5")
    before = running_image(rt, "web")
    refused = outcome(invoke(PUSH, event), "web")
    assert refused["outcome"] == "refused"
    assert "not scanned" in refused["reason"]
    assert running_image(rt, "web") == before


@pytest.mark.parametrize("mode", ["error", "network"])
def test_a_scan_that_cannot_be_read_fails_the_service_and_nothing_is_deployed_unchecked(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults, recorder: CallRecorder, mode: str
) -> None:
    # GIVEN DescribeImageScanFindings failing beyond retries (throttled, or no network)
    rt = make_runtime(config())
    digest = fake_digest("web:v6")
    event = world.push("web", "v6", digest)
    scanned(rt.clients.ecr, "web", digest, {})
    before = running_image(rt, "web")
    faults.fail("DescribeImageScanFindings", mode, service="ecr")  # type: ignore[arg-type]
    recorder.reset()
    # WHEN the push arrives THEN the invocation fails (Lambda retries it) and web is untouched
    with pytest.raises(DeployFailuresError) as failed:
        invoke(PUSH, event)
    web = next(o for o in failed.value.result.outcomes if o.name == "web")
    assert web.outcome == "failed"
    assert web.reason.startswith("image scan gate")
    assert running_image(rt, "web") == before
    assert "web" not in [p["family"] for p in recorder.params("RegisterTaskDefinition")]
    # AND the retry, with the scan readable again, deploys it
    faults.clear()
    invoke(PUSH, event)
    assert running_image(rt, "web").endswith(digest)
