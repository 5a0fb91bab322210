"""Release policies on moto (issue 27): with ``order: semver`` versions never go backwards,
a jump beyond ``allow`` waits for ``ecspilot approve --digest``, catch-up picks the highest
allowed version, and tags that are not versions are ignored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from ecspilot.aws.release_state import ReleaseRecords
from ecspilot.errors import DeployFailuresError
from ecspilot.interfaces.cli import main
from ecspilot.interfaces.runtime import Runtime
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import REGION, Sandbox, fake_digest
from tests.conftest import TABLE, MakeRuntime
from tests.faults import Faults
from tests.moto_state import set_image_pushed_at
from tests.races import race

PUSH = "deploy_on_push"


def config(**app: Any) -> dict[str, Any]:
    source = {"repository": "web", "tags": ["v*"], "order": "semver", **app}
    return {"version": 1, "services": [{"name": "web", "cluster": "prod", "containers": {"app": source}}]}


@pytest.fixture
def world(sandbox: Sandbox) -> Sandbox:
    sandbox.cluster("prod")
    sandbox.repository("web")
    sandbox.service("prod", "web", sandbox.task_definition("web", {"app": sandbox.image("web", "v1.2.3")}))
    return sandbox


@pytest.fixture
def topic(world: Sandbox) -> tuple[str, str]:
    sns, sqs = world.clients.sns, world.clients.sqs
    topic_arn = sns.create_topic(Name="ecspilot-notify")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="ecspilot-notify-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return topic_arn, queue_url


def messages(rt: Runtime, queue_url: str) -> list[dict[str, Any]]:
    got = rt.clients.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in got]


def running(rt: Runtime) -> str:
    svc = rt.clients.ecs.describe_services(cluster="prod", services=["web"])["services"][0]
    td = rt.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    return str(td["containerDefinitions"][0]["image"])


def pinned(world: Sandbox, tag: str) -> str:
    return f"{world.registry}/web@{fake_digest(f'web:{tag}')}"


def web(result: dict[str, Any]) -> dict[str, Any]:
    [svc] = result["services"]
    return dict(svc)


def test_a_hotfix_of_an_older_line_pushed_last_is_stale(world: Sandbox, make_runtime: MakeRuntime) -> None:
    rt = make_runtime(config())
    assert web(invoke(PUSH, world.push("web", "v1.3.0")))["outcome"] == "deployed"
    set_image_pushed_at("web", fake_digest("web:v1.3.0"), 600)  # the hotfix is the newest push
    result = invoke(PUSH, world.push("web", "v1.2.4"))
    assert web(result)["outcome"] == "stale"
    assert "1.3.0" in web(result)["reason"]
    assert running(rt) == pinned(world, "v1.3.0")


def test_a_higher_version_pushed_earlier_still_deploys(world: Sandbox, make_runtime: MakeRuntime) -> None:
    # GIVEN web on v1.2.4 (pushed last), and v1.3.0 whose push event was pushed earlier
    rt = make_runtime(config())
    late = world.push("web", "v1.3.0")
    set_image_pushed_at("web", fake_digest("web:v1.3.0"), 600)
    assert web(invoke(PUSH, world.push("web", "v1.2.4")))["outcome"] == "deployed"
    # WHEN v1.3.0's event arrives late (a redelivery): the version order wins, not the push time
    result = invoke(PUSH, late)
    assert web(result)["outcome"] == "deployed"
    assert running(rt) == pinned(world, "v1.3.0")


def test_a_retag_of_the_running_version_is_a_conflict_never_deployed(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    rt = make_runtime(config())
    invoke(PUSH, world.push("web", "v1.3.0"))
    recorder.reset()
    other = fake_digest("web:v1.3.0 rebuilt")
    result = invoke(
        PUSH, world.push("web", "v1.3.0", other)
    )  # ECR moves the tag: the running digest loses it
    assert web(result)["outcome"] == "conflict"
    assert recorder.count("RegisterTaskDefinition") == 0
    assert running(rt) == pinned(world, "v1.3.0")


def test_tags_that_are_not_versions_are_ignored_and_counted(
    world: Sandbox,
    make_runtime: MakeRuntime,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    rt = make_runtime(config())
    before = running(rt)
    capsys.readouterr()
    result = invoke(PUSH, world.push("web", "vnext"))
    assert result["services"] == []
    assert [r.getMessage() for r in caplog.records].count(
        "tag is not a semantic version: ignored by order: semver containers"
    ) == 1
    assert '"TagsIgnored":[1.0]' in capsys.readouterr().out
    assert running(rt) == before


def test_a_prerelease_waits(world: Sandbox, make_runtime: MakeRuntime) -> None:
    rt = make_runtime(config())
    result = invoke(PUSH, world.push("web", "v1.4.0-rc.1"))
    assert web(result)["outcome"] == "awaiting approval"
    assert "prerelease" in web(result)["reason"]
    assert running(rt) == world.image("web", "v1.2.3")


def test_a_major_jump_waits_is_notified_once_and_deploys_on_approve(
    world: Sandbox,
    make_runtime: MakeRuntime,
    topic: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = config(allow="minor")
    rt = make_runtime(cfg, notify_topic_arn=topic[0])
    assert web(invoke(PUSH, world.push("web", "v1.3.0")))["outcome"] == "deployed"
    event = world.push("web", "v2.0.0")
    # WHEN v2.0.0 is pushed, and its event delivered twice
    first, again = invoke(PUSH, event), invoke(PUSH, event)
    # THEN it waits, recorded and notified once, with the command that deploys it
    assert web(first)["outcome"] == web(again)["outcome"] == "awaiting approval"
    assert "major jump" in web(first)["reason"]
    [told] = messages(rt, topic[1])
    digest = fake_digest("web:v2.0.0")
    assert f"ecspilot approve web --digest {digest}" in told["Message"]
    assert running(rt) == pinned(world, "v1.3.0")
    # AND a later v2.1.0 also waits: approving one version does not approve later ones
    later_event = world.push("web", "v2.1.0")
    assert web(invoke(PUSH, later_event))["outcome"] == "awaiting approval"
    # WHEN a person approves v2.0.0 by digest
    path = tmp_path / "ecspilot.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    monkeypatch.setenv("ECSPILOT_CONFIG", str(path))
    monkeypatch.setenv("ECSPILOT_TABLE", TABLE)
    capsys.readouterr()
    assert main(["approve", "web", "--digest", digest], session=boto3.Session(region_name=REGION)) == 0
    assert "deployed web v2.0.0" in capsys.readouterr().out
    assert running(rt) == pinned(world, "v2.0.0")
    [record, *_] = rt.history.deployments("prod", "web")
    assert (record["image_tag"], record["image_digest"]) == ("v2.0.0", digest)
    # AND v2.1.0 is still not approved; a second approve of v2.0.0 changes nothing
    assert main(["approve", "web", "--digest", digest], session=boto3.Session(region_name=REGION)) == 0
    assert running(rt) == pinned(world, "v2.0.0")
    # AND reject refuses v2.1.0 for good; rejecting again finds nothing waiting (exit 1)
    later = fake_digest("web:v2.1.0")
    assert main(["reject", "web", "--digest", later], session=boto3.Session(region_name=REGION)) == 0
    assert web(invoke(PUSH, later_event))["outcome"] == "refused"
    assert main(["reject", "web", "--digest", later], session=boto3.Session(region_name=REGION)) == 1
    assert main(["approve", "web", "--digest", "sha256:nope"], session=boto3.Session(region_name=REGION)) == 2
    assert main(["approve", "nope", "--digest", digest], session=boto3.Session(region_name=REGION)) == 2


def test_catch_up_picks_the_highest_allowed_version_not_the_newest_push(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN web on v1.2.3 with allow: minor, and missed pushes v1.3.0, v2.0.0, v1.4.0-rc.1, then v1.2.9 last
    rt = make_runtime(config(allow="minor"))
    for i, tag in enumerate(["v1.3.0", "v2.0.0", "v1.4.0-rc.1", "latest", "v1.2.9"]):
        world.push("web", tag)
        set_image_pushed_at("web", fake_digest(f"web:{tag}"), 600 - i * 60)
    # WHEN reconcile catches up
    result = invoke("reconcile", {})
    # THEN v1.3.0: the highest version a minor jump allows (not v2.0.0, not the rc, not the newest push)
    [action] = [a for a in result["actions"] if a["kind"] == "catch-up"]
    assert action["change"] == "update"
    assert "v1.3.0" in action["detail"]
    assert running(rt) == pinned(world, "v1.3.0")
    # AND the next tick is in sync
    [action] = [a for a in invoke("reconcile", {})["actions"] if a["kind"] == "catch-up"]
    assert action["change"] == "in-sync"


def test_plan_shows_each_decision_with_its_reason_and_status_the_version(
    world: Sandbox,
    make_runtime: MakeRuntime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    recorder: CallRecorder,
) -> None:
    cfg = config(allow="minor")
    rt = make_runtime(cfg)
    invoke(PUSH, world.push("web", "v1.3.0"))
    event = world.push("web", "v2.0.0")
    path = tmp_path / "ecspilot.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    (tmp_path / "push.json").write_text(json.dumps(event), encoding="utf-8")
    monkeypatch.setenv("ECSPILOT_CONFIG", str(path))
    monkeypatch.setenv("ECSPILOT_TABLE", TABLE)
    session = boto3.Session(region_name=REGION)
    capsys.readouterr()
    recorder.reset()
    # WHEN plan is asked about the v2.0.0 push, and about the reconcile (catch-up)
    main(["plan", "--event", str(tmp_path / "push.json")], session=session)
    main(["plan"], session=session)
    out = capsys.readouterr().out
    # THEN each decision says why; a dry run records nothing
    assert "awaiting approval" in out
    assert "1.3.0 -> 2.0.0 is a major jump (allow: minor)" in out
    assert "catch-up  prod/web  in-sync  already runs this digest (web:v1.3.0" in out  # the highest allowed
    assert not [c for c in recorder.writes() if c[1] in ("UpdateItem", "PutItem", "Publish")]
    assert ReleaseRecords(rt.history).of_service("prod", "web") == []
    # AND status shows the version next to the digest
    assert main(["status"], session=session) == 0
    assert f"{fake_digest('web:v1.3.0')[:19]} (1.3.0)" in capsys.readouterr().out


def _revision_image(rt: Runtime, arn: str) -> str:
    if not arn:
        return ""
    td = rt.clients.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    return str(td["containerDefinitions"][0]["image"])


def test_a_hotfix_racing_a_higher_version_loses_even_when_pushed_last_and_landing_last(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    # GIVEN v1.3.0 (pushed a minute ago) and the hotfix v1.2.4 (pushed now) delivered at once, both
    # higher than the running v1.2.3; the hotfix's UpdateService lands at ECS last
    rt = make_runtime(config())
    higher, hotfix = world.push("web", "v1.3.0"), world.push("web", "v1.2.4")
    set_image_pushed_at("web", fake_digest("web:v1.3.0"), seconds_ago=60)
    late = faults.fail(
        "UpdateService",
        "delay",
        seconds=0.5,
        when=lambda p: _revision_image(rt, str(p.get("taskDefinition", ""))).endswith(
            fake_digest("web:v1.2.4")
        ),
    )
    # WHEN both race on real threads
    results = race(lambda: invoke(PUSH, higher), lambda: invoke(PUSH, hotfix))
    # THEN the claims order by version, not push time: web ends on v1.3.0
    assert not [r for r in results if isinstance(r, Exception)], results
    assert running(rt) == pinned(world, "v1.3.0")
    assert late.fired <= 1
    assert web(results[1])["outcome"] == "stale"


def test_a_release_record_that_cannot_be_read_deploys_nothing_and_fails_the_invocation(
    world: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    rt = make_runtime(config(allow="minor"))
    invoke(PUSH, world.push("web", "v1.3.0"))
    faults.fail("GetItem", code="InternalServerError")
    with pytest.raises(DeployFailuresError, match="release policy"):
        invoke(PUSH, world.push("web", "v2.0.0"))
    assert running(rt) == pinned(world, "v1.3.0")


def test_two_people_approving_at_once_deploy_once(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    rt = make_runtime(config(allow="minor"))
    invoke(PUSH, world.push("web", "v1.3.0"))
    invoke(PUSH, world.push("web", "v2.0.0"))
    records = ReleaseRecords(rt.history)
    digest = fake_digest("web:v2.0.0")
    got = race(
        *[
            lambda: records.answer("prod", "web", digest, "APPROVED", ("AWAITING",), "someone")
            for _ in range(4)
        ]
    )
    assert sum(g is not None for g in got) == 1
    assert records.get("prod", "web", digest)["status"] == "APPROVED"
    # AND the record says APPROVED: a redelivered push of v2.0.0 deploys it now
    assert web(invoke(PUSH, _event(world, "v2.0.0")))["outcome"] == "deployed"


def _event(world: Sandbox, tag: str) -> dict[str, Any]:
    from ecspilot_dev.sandbox import push_event  # noqa: PLC0415

    return push_event("web", tag, fake_digest(f"web:{tag}"), account=world.account, region=world.region)


def test_back_to_order_pushed_a_push_is_not_held_by_the_version_claims_left_behind(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN web deployed under order: semver (its containers' claims carry version ranks)
    make_runtime(config())
    assert web(invoke(PUSH, world.push("web", "v1.3.0")))["outcome"] == "deployed"
    state = rt_state(world)
    assert float(state["image#app"]["pushed_at"]) > 1e10, state  # a version rank
    # WHEN the config goes back to the push order and a newer image is pushed
    plain = config()
    del plain["services"][0]["containers"]["app"]["order"]
    rt = make_runtime(plain, table=False, table_name=TABLE)
    result = invoke(PUSH, world.push("web", "v1.3.1"))
    # THEN it is deployed: a push-time claim does not lose to a version rank
    assert web(result)["outcome"] == "deployed"
    assert running(rt) == pinned(world, "v1.3.1")


def rt_state(world: Sandbox) -> dict[str, Any]:
    from ecspilot.aws.dynamo import deserialize  # noqa: PLC0415

    item = world.clients.dynamodb.get_item(
        TableName=TABLE, Key={"pk": {"S": "SERVICE#prod#web"}, "sk": {"S": "STATE"}}
    )
    return deserialize(item.get("Item", {}))


def test_an_approve_whose_deployment_failed_can_be_run_again(
    world: Sandbox,
    make_runtime: MakeRuntime,
    faults: Faults,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = config(allow="minor")
    rt = make_runtime(cfg)
    invoke(PUSH, world.push("web", "v1.3.0"))
    invoke(PUSH, world.push("web", "v2.0.0"))
    path = tmp_path / "ecspilot.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    monkeypatch.setenv("ECSPILOT_CONFIG", str(path))
    monkeypatch.setenv("ECSPILOT_TABLE", TABLE)
    session = boto3.Session(region_name=REGION)
    faults.attach(session)
    rule = faults.fail("UpdateService", code="AccessDeniedException", status=400, times=1)
    digest = fake_digest("web:v2.0.0")
    # WHEN the approve's deployment fails: exit 1, web still on v1.3.0, the approval kept
    assert main(["approve", "web", "--digest", digest], session=session) == 1
    assert running(rt) == pinned(world, "v1.3.0")
    assert ReleaseRecords(rt.history).get("prod", "web", digest)["status"] == "APPROVED"
    # THEN approving again deploys it
    code = main(["approve", "web", "--digest", digest], session=session)
    assert (rule.fired, rule.seen) == (1, 2)
    assert code == 0
    assert running(rt) == pinned(world, "v2.0.0")
