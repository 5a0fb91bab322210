"""A service in another account, not promoted (issue 13, "any service may set ``account``"):
a push and reconcile's catch-up deploy it **in its account and region**, through the role
ecspilot assumes there, with the image pinned in ecspilot's own registry. ecspilot's own
``prod/web`` (the same cluster and service names) is never touched.

Two accounts in moto through ``sts.assume_role`` (``tests/promotion_world.py``): ecspilot's
(123456789012, us-east-1: ``staging/web`` configured, ``prod/web`` not) and the target
(222222222222, eu-west-1: ``prod/web`` at desired count 3, an ``envoy`` sidecar).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from ecspilot.deploy.handler import reconcile_catch_up
from ecspilot.errors import DeployFailuresError
from ecspilot.reconcile.runbook import reconcile
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import Sandbox, fake_digest
from tests.conftest import MakeRuntime
from tests.faults import Faults
from tests.functional.test_deploy_races import claims_digest
from tests.moto_state import set_image_pushed_at
from tests.promotion_world import (
    OTHER_ACCOUNT,
    OTHER_ROLE_ARN,
    ROLE_ARN,
    TARGET_ACCOUNT,
    TARGET_REGION,
    World,
    assumed_clients,
)
from tests.races import race

KEY = f"web@{TARGET_ACCOUNT}:{TARGET_REGION}"
FOLLOW = {"app": {"repository": "web", "tags": ["v*"]}}


def config(*more: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": 1,
        "accounts": {
            "prod": {"role_arn": ROLE_ARN, "region": TARGET_REGION},
            "dr": {"role_arn": OTHER_ROLE_ARN},
        },
        "services": [
            {"name": "web-staging", "cluster": "staging", "service": "web", "containers": FOLLOW},
            {
                "name": "web-prod",
                "account": "prod",
                "cluster": "prod",
                "service": "web",
                "containers": FOLLOW,
            },
            *more,
        ],
    }


def world(sandbox: Sandbox, make_runtime: MakeRuntime, cfg: dict[str, Any], **settings: Any) -> World:
    """The promotion tests' two accounts, plus ecspilot's own, unconfigured ``prod/web``."""
    w = World(sandbox, make_runtime, cfg, **settings)
    sandbox.cluster("prod")
    sandbox.service(
        "prod", "web", sandbox.task_definition("web-own-prod", {"app": sandbox.image("web", "v0")})
    )
    return w


def own_prod(w: World) -> dict[str, Any]:
    return dict(w.own.clients.ecs.describe_services(cluster="prod", services=["web"])["services"][0])


def revisions(box: Sandbox, family: str) -> list[str]:
    arns = box.clients.ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
    return [a.rsplit("/", 1)[-1] for a in arns]


def deployed_there(w: World, digest: str, trigger: str, own_before: dict[str, Any]) -> dict[str, Any]:
    """The target runs ``digest`` pinned in ecspilot's registry, its desired count and sidecar
    untouched, recorded under the target's key; ecspilot's own prod/web is as it was."""
    images = w.images()
    assert images["app"] == f"{w.own.registry}/web@{digest}"
    assert images["envoy"] == "envoy:1"
    assert w.prod_service()["desiredCount"] == 3
    assert revisions(w.target, "web-prod") == ["web-prod:1", "web-prod:2"]
    assert own_prod(w)["taskDefinition"] == own_before["taskDefinition"]
    assert revisions(w.own, "web-own-prod") == ["web-own-prod:1"]
    assert w.rt.history.deployments("prod", "web") == []
    [record] = w.rt.history.deployments("prod", KEY)
    assert (record["status"], record["trigger"], record["image_digest"]) == ("IN_PROGRESS", trigger, digest)
    assert record["deployment_id"] == w.prod_service()["deployments"][0]["id"]
    return record


def test_a_push_deploys_the_service_in_its_account_and_region_and_the_tracker_closes_its_record(
    sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN web-prod (account prod: 222222222222, eu-west-1) and web-staging follow web:v*
    w = world(sandbox, make_runtime, config())
    before = own_prod(w)
    # WHEN web:v1 is pushed to ecspilot's registry
    recorder.reset()
    out = invoke("deploy_on_push", sandbox.push("web", "v1"))
    # THEN both are deployed, web-prod in its account with the exact digest of ecspilot's registry
    assert sorted((s["name"], s["outcome"]) for s in out["services"]) == [
        ("web-prod", "deployed"),
        ("web-staging", "deployed"),
    ]
    digest = fake_digest("web:v1")
    record = deployed_there(w, digest, "push", before)
    updates = recorder.params("UpdateService")
    assert len(updates) == 2
    assert all("desiredCount" not in u for u in updates)
    assert [p["RoleArn"] for p in recorder.params("AssumeRole")] == [ROLE_ARN]
    # AND the target account's forwarded ECS event closes the record, without an own ECS call
    recorder.reset()
    w.ecs_event(
        "completed", record["deployment_id"], datetime.now(UTC), TARGET_ACCOUNT, TARGET_REGION, "prod"
    )
    assert (w.rt.history.deployment(record["deployment_id"]) or {})["status"] == "COMPLETED"
    assert recorder.ops("ecs") == []


def test_a_redelivered_push_changes_nothing_in_the_other_account(
    sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    w = world(sandbox, make_runtime, config())
    before = own_prod(w)
    event = sandbox.push("web", "v1")
    invoke("deploy_on_push", event)
    # WHEN ECR delivers the same event again
    recorder.reset()
    again = invoke("deploy_on_push", event)
    # THEN nothing is registered, updated or recorded again: one new revision, one record
    assert sorted((s["name"], s["outcome"]) for s in again["services"]) == [
        ("web-prod", "unchanged"),
        ("web-staging", "unchanged"),
    ]
    assert recorder.params("RegisterTaskDefinition") == []
    assert recorder.params("UpdateService") == []
    assert recorder.writes() == []
    deployed_there(w, fake_digest("web:v1"), "push", before)


def test_catch_up_deploys_a_missed_push_in_the_other_account_and_plan_names_it_there(
    sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN web:v1 pushed, its event lost
    w = world(sandbox, make_runtime, config())
    before = own_prod(w)
    sandbox.push("web", "v1")
    part = [("catch-up", reconcile_catch_up)]
    # WHEN the plan (a dry run) is asked: the service is named with its account and region
    recorder.reset()
    plan = reconcile(w.rt, True, part).actions
    assert sorted((a.target, a.change, a.applied) for a in plan) == [
        (f"prod/{KEY}", "update", False),
        ("staging/web", "update", False),
    ]
    assert recorder.writes() == ["AssumeRole"]  # to read there; nothing is written
    # AND reconcile runs: deployed there, not in ecspilot's own prod/web
    actions = reconcile(w.rt, False, part).actions
    assert sorted((a.target, a.change, a.applied) for a in actions) == [
        (f"prod/{KEY}", "update", True),
        ("staging/web", "update", True),
    ]
    deployed_there(w, fake_digest("web:v1"), "catch-up", before)
    # AND the next reconcile finds both in sync and writes nothing
    recorder.reset()
    again = reconcile(w.rt, False, part).actions
    assert sorted((a.target, a.change) for a in again) == [
        (f"prod/{KEY}", "in-sync"),
        ("staging/web", "in-sync"),
    ]
    assert recorder.writes() == []


def test_a_role_that_cannot_be_assumed_fails_only_that_accounts_services_and_the_retry_deploys_them(
    sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder, faults: Faults
) -> None:
    # GIVEN a third account (dr: 333333333333, ecspilot's region) whose role refuses ecspilot
    dr = {"name": "web-dr", "account": "dr", "cluster": "dr", "service": "web", "containers": FOLLOW}
    w = world(sandbox, make_runtime, config(dr))
    far = Sandbox(
        assumed_clients(sandbox.clients, OTHER_ROLE_ARN, sandbox.region), OTHER_ACCOUNT, sandbox.region
    )
    far.cluster("dr")
    far.service("dr", "web", far.task_definition("web-dr", {"app": sandbox.image("web", "v0")}))
    refused = faults.fail(
        "AssumeRole", "error", code="AccessDenied", when=lambda p: p["RoleArn"] == OTHER_ROLE_ARN
    )
    event = sandbox.push("web", "v1")
    # WHEN the push is deployed: the invocation fails at the end (Lambda retries it)
    with pytest.raises(DeployFailuresError) as info:
        invoke("deploy_on_push", event)
    # THEN only web-dr failed, with the reason; the others are deployed
    outcomes = {o.name: o for o in info.value.result.outcomes}
    assert {n: o.outcome for n, o in outcomes.items()} == {
        "web-staging": "deployed",
        "web-prod": "deployed",
        "web-dr": "failed",
    }
    assert "AccessDenied" in outcomes["web-dr"].reason
    assert refused.fired == 1
    assert far.clients.ecs.describe_services(cluster="dr", services=["web"])["services"][0][
        "taskDefinition"
    ].endswith("web-dr:1")
    # AND once the role is fixed the retry deploys web-dr and changes nothing else
    faults.clear()
    recorder.reset()
    retry = invoke("deploy_on_push", event)
    assert sorted((s["name"], s["outcome"]) for s in retry["services"]) == [
        ("web-dr", "deployed"),
        ("web-prod", "unchanged"),
        ("web-staging", "unchanged"),
    ]
    assert w.images(far, "dr")["app"] == f"{sandbox.registry}/web@{fake_digest('web:v1')}"
    assert [
        r["cluster"] for r in w.rt.history.deployments("dr", f"web@{OTHER_ACCOUNT}:{sandbox.region}")
    ] == ["dr"]
    assert len(recorder.params("UpdateService")) == 1


def test_one_assume_role_for_several_services_of_one_account(
    sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN two services of account prod follow web (prod/web and prod/api there)
    api = {"name": "api-prod", "account": "prod", "cluster": "prod", "service": "api", "containers": FOLLOW}
    w = world(sandbox, make_runtime, config(api))
    w.target.service("prod", "api", w.target.task_definition("api-prod", {"app": sandbox.image("web", "v0")}))
    # WHEN one push deploys both
    recorder.reset()
    out = invoke("deploy_on_push", sandbox.push("web", "v1"))
    # THEN both are deployed there through one AssumeRole
    assert sorted((s["name"], s["outcome"]) for s in out["services"]) == [
        ("api-prod", "deployed"),
        ("web-prod", "deployed"),
        ("web-staging", "deployed"),
    ]
    assert len(recorder.params("AssumeRole")) == 1
    assert {
        r["service"] for r in w.rt.history.deployments("prod", f"api@{TARGET_ACCOUNT}:{TARGET_REGION}")
    } == {f"api@{TARGET_ACCOUNT}:{TARGET_REGION}"}


def test_an_older_push_is_stale_there_its_push_times_read_in_ecspilots_registry(
    sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN web-prod deployed v2; v1 was pushed a minute before it (the target account has no
    # repository web: the push times can only come from ecspilot's registry)
    w = world(sandbox, make_runtime, config())
    old, new = sandbox.push("web", "v1"), sandbox.push("web", "v2")
    set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=60)
    invoke("deploy_on_push", new)
    # WHEN v1's event arrives late
    recorder.reset()
    out = invoke("deploy_on_push", old)
    # THEN it is stale there too: nothing moves back
    assert {s["name"]: s["outcome"] for s in out["services"]} == {"web-staging": "stale", "web-prod": "stale"}
    assert w.images()["app"].endswith(fake_digest("web:v2"))
    assert recorder.params("UpdateService") == []


def test_a_digest_that_failed_there_is_held_there_and_only_there(
    sandbox: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN v1 deployed to both; the target account's deployment FAILED (its forwarded event)
    w = world(sandbox, make_runtime, config())
    event = sandbox.push("web", "v1")
    invoke("deploy_on_push", event)
    [record] = w.rt.history.deployments("prod", KEY)
    w.ecs_event("failed", record["deployment_id"], datetime.now(UTC), TARGET_ACCOUNT, TARGET_REGION, "prod")
    assert (w.rt.history.deployment(record["deployment_id"]) or {})["status"] == "FAILED"
    # AND the target is back on v0 (ECS's rollback, played on moto)
    w.target.clients.ecs.update_service(
        cluster="prod", service="web", taskDefinition=w.prod_service()["taskDefinition"].replace(":2", ":1")
    )
    # WHEN the push is delivered again: v1 is held on web-prod only (its key), staging is unchanged
    again = invoke("deploy_on_push", event)
    assert {s["name"]: s["outcome"] for s in again["services"]} == {
        "web-staging": "unchanged",
        "web-prod": "held",
    }
    assert w.images()["app"] == sandbox.image("web", "v0")


def test_a_lost_update_service_reply_there_is_finished_by_the_retry_without_a_second_revision(
    sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder, faults: Faults
) -> None:
    # GIVEN UpdateService in the target account applied at ECS with its reply lost, and botocore's
    # retry of it refused (a reply lost past all retries, without their backoff's wait)
    w = world(sandbox, make_runtime, config())
    before = own_prod(w)
    there = lambda p: p.get("cluster") == "prod"  # noqa: E731
    lost = faults.fail("UpdateService", "lost-reply", times=1, when=there)
    faults.fail("UpdateService", "throttle", code="ClientException", status=400, when=there)
    event = sandbox.push("web", "v1")
    with pytest.raises(DeployFailuresError) as info:
        invoke("deploy_on_push", event)
    assert {o.name: o.outcome for o in info.value.result.outcomes} == {
        "web-staging": "deployed",
        "web-prod": "failed",
    }
    assert lost.fired >= 1
    # WHEN Lambda retries the event
    faults.clear()
    recorder.reset()
    retry = invoke("deploy_on_push", event)
    # THEN web-prod runs v1 on one new revision, its record written by the retry, nothing updated again
    assert {s["name"]: s["outcome"] for s in retry["services"]} == {
        "web-staging": "unchanged",
        "web-prod": "unchanged",
    }
    assert recorder.params("RegisterTaskDefinition") == []
    assert recorder.params("UpdateService") == []
    deployed_there(w, fake_digest("web:v1"), "push", before)


def test_catch_up_with_a_refused_role_is_an_error_for_that_accounts_service_only(
    sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder, faults: Faults
) -> None:
    dr = {"name": "web-dr", "account": "dr", "cluster": "dr", "service": "web", "containers": FOLLOW}
    w = world(sandbox, make_runtime, config(dr))
    before = own_prod(w)
    faults.fail("AssumeRole", "error", code="AccessDenied", when=lambda p: p["RoleArn"] == OTHER_ROLE_ARN)
    sandbox.push("web", "v1")
    recorder.reset()
    actions = reconcile(w.rt, False, [("catch-up", reconcile_catch_up)]).actions
    got = {a.target: a for a in actions}
    assert {t: a.change for t, a in got.items()} == {
        "staging/web": "update",
        f"prod/{KEY}": "update",
        f"dr/web@{OTHER_ACCOUNT}:{sandbox.region}": "error",
    }
    assert "AccessDenied" in got[f"dr/web@{OTHER_ACCOUNT}:{sandbox.region}"].detail
    assert [p["RoleArn"] for p in recorder.params("AssumeRole")].count(OTHER_ROLE_ARN) == 1
    deployed_there(w, fake_digest("web:v1"), "catch-up", before)


def test_a_continued_rollout_deploys_the_rest_in_the_other_account(
    sandbox: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN two services of account prod, and UpdateService paced at 1 then 1 per 2 s (per account)
    api = {"name": "api-prod", "account": "prod", "cluster": "prod", "service": "api", "containers": FOLLOW}
    url = sandbox.clients.sqs.create_queue(QueueName="ecspilot-deploy-continuations")["QueueUrl"]
    settings = {"continuation_queue_url": url, "ecs_rates": "UpdateService=1/0.5", "time_margin_seconds": 299}
    w = world(sandbox, make_runtime, config(api), **settings)
    w.target.service("prod", "api", w.target.task_definition("api-prod", {"app": sandbox.image("web", "v0")}))
    # WHEN the push has one second: one service of the account now, the other continued
    out = invoke("deploy_on_push", sandbox.push("web", "v1"))
    outcomes = {s["name"]: s["outcome"] for s in out["services"]}
    assert outcomes["web-staging"] == "deployed"
    assert sorted([outcomes["web-prod"], outcomes["api-prod"]]) == ["continued", "deployed"]
    [continued] = [n for n in ("web-prod", "api-prod") if outcomes[n] == "continued"]
    # AND the continuation (the same function, from the queue) deploys it in its account
    time.sleep(2.1)  # the account's UpdateService bucket refills
    got = sandbox.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    arn = sandbox.clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    records = [
        {
            "messageId": m["MessageId"],
            "body": m["Body"],
            "eventSource": "aws:sqs",
            "eventSourceARN": arn["QueueArn"],
        }
        for m in got
    ]
    assert invoke("deploy_on_push", {"Records": records}) == {"batchItemFailures": []}
    service = continued.split("-")[0]
    [record] = w.rt.history.deployments("prod", f"{service}@{TARGET_ACCOUNT}:{TARGET_REGION}")
    assert record["rollout_id"] == w.rt.history.deployments("prod", KEY)[0]["rollout_id"]
    assert w.images(w.target, "prod")["app"].endswith(fake_digest("web:v1"))
    assert w.rt.history.deployments("prod", "web") == []


def test_racing_pushes_end_on_the_newer_image_there_even_when_the_older_update_lands_last(
    sandbox: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    # GIVEN v1 (pushed a minute ago) and v2; v1 claims first, and its UpdateService in the target
    # account lands at ECS after v2's (the claims are keyed in the target account)
    w = world(sandbox, make_runtime, config())
    before = own_prod(w)
    older, newer = sandbox.push("web", "v1"), sandbox.push("web", "v2")
    set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=60)

    def carries_v1_there(params: Mapping[str, Any]) -> bool:
        if params.get("cluster") != "prod":
            return False
        td = w.target.clients.ecs.describe_task_definition(taskDefinition=str(params["taskDefinition"]))
        return str(td["taskDefinition"]["containerDefinitions"][0]["image"]).endswith(fake_digest("web:v1"))

    v2_claims_late = faults.fail(
        "TransactWriteItems", "delay", seconds=0.3, when=lambda p: claims_digest(p) == fake_digest("web:v2")
    )
    v1_lands_last = faults.fail("UpdateService", "delay", seconds=0.8, when=carries_v1_there)
    # WHEN both are delivered at once to two invocations (real threads)
    results = race(lambda: invoke("deploy_on_push", older), lambda: invoke("deploy_on_push", newer))
    # THEN neither failed, the interleaving happened, and web-prod ends on v2 in its account
    assert not [r for r in results if isinstance(r, Exception)], results
    assert v2_claims_late.fired >= 1
    assert v1_lands_last.fired == 1
    assert w.images()["app"].endswith(fake_digest("web:v2"))
    assert own_prod(w)["taskDefinition"] == before["taskDefinition"]


def test_the_image_scan_gate_of_a_service_there_reads_the_scan_in_ecspilots_registry(
    sandbox: Sandbox, make_runtime: MakeRuntime
) -> None:
    from tests.scans import scanned  # noqa: PLC0415

    # GIVEN web-prod (another account) gated on the image scan (max HIGH); the scan is in
    # ecspilot's registry only (the target account has no repository web)
    gated = config()
    gated["services"][1]["gates"] = {"image_scan": {"max_severity": "HIGH"}}
    w = world(sandbox, make_runtime, gated)
    # WHEN v1 (a CRITICAL finding) is pushed, then v2 (a LOW one)
    refused = sandbox.push("web", "v1")
    scanned(sandbox.clients.ecr, "web", fake_digest("web:v1"), {"CRITICAL": 1})
    out = invoke("deploy_on_push", refused)
    # THEN v1 is refused there (nothing registered), v2 deployed there
    assert {s["name"]: s["outcome"] for s in out["services"]} == {
        "web-staging": "deployed",
        "web-prod": "refused",
    }
    assert revisions(w.target, "web-prod") == ["web-prod:1"]
    clean = sandbox.push("web", "v2")
    scanned(sandbox.clients.ecr, "web", fake_digest("web:v2"), {"LOW": 1})
    out = invoke("deploy_on_push", clean)
    assert {s["name"]: s["outcome"] for s in out["services"]} == {
        "web-staging": "deployed",
        "web-prod": "deployed",
    }
    assert w.images()["app"] == f"{sandbox.registry}/web@{fake_digest('web:v2')}"
