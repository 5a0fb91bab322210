"""Catch-up: reconcile deploys what a missed push would have, and jobs follow pushes."""

from __future__ import annotations

from typing import Any

import pytest

from ecspilot.interfaces.runtime import Runtime
from ecspilot_dev.local import CallRecorder, invoke, load_event
from ecspilot_dev.sandbox import Sandbox, fake_digest
from tests.conftest import MakeRuntime
from tests.moto_state import new_deployment_per_update, set_image_pushed_at


def config(services: int = 1, jobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "version": 1,
        "services": [
            {
                "name": f"web-{i}",
                "cluster": "prod",
                "containers": {"app": {"repository": "web", "tags": ["v*"]}},
            }
            for i in range(services)
        ],
        "jobs": jobs or [],
    }


@pytest.fixture
def world(sandbox: Sandbox) -> Sandbox:
    sandbox.cluster("prod")
    sandbox.repository("web")
    return sandbox


def running_image(rt: Runtime, service: str) -> str:
    svc = rt.clients.ecs.describe_services(cluster="prod", services=[service])["services"][0]
    td = rt.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    return str(td["containerDefinitions"][0]["image"])


def catch_up_actions(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["target"], a["change"]) for a in result["actions"] if a["kind"] == "catch-up"]


def test_a_missed_push_is_deployed_by_reconcile_pinned_by_digest(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN a service on web:v0 (by tag) and web:v1 pushed while the push handler was down (event dropped)
    world.service("prod", "web-0", world.task_definition("web", {"app": world.image("web", "v0")}))
    rt = make_runtime(config())
    world.push("web", "v1")
    # WHEN reconcile runs
    result = invoke("reconcile", {})
    # THEN the service runs v1, pinned by digest, and the record says catch-up
    assert catch_up_actions(result) == [("prod/web-0", "update")]
    assert running_image(rt, "web-0") == f"{world.registry}/web@{fake_digest('web:v1')}"
    [record] = rt.history.deployments("prod", "web-0")
    assert (record["trigger"], record["image_tag"]) == ("catch-up", "v1")


def test_a_second_reconcile_makes_no_write_call(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    td = world.task_definition("web", {"app": world.image("web", "v0")})
    for i in range(3):
        world.service("prod", f"web-{i}", td)
    make_runtime(config(services=3))
    world.push("web", "v1")
    invoke("reconcile", {})
    recorder.reset()
    result = invoke("reconcile", {})
    assert set(catch_up_actions(result)) == {(f"prod/web-{i}", "in-sync") for i in range(3)}
    assert recorder.writes() == []
    assert recorder.count("DescribeImages") == 1
    assert recorder.count("DescribeServices") == 1


def test_catch_up_never_moves_a_service_to_an_older_image(world: Sandbox, make_runtime: MakeRuntime) -> None:
    # GIVEN v9 deployed by its push event (v1 pushed before it)
    world.service("prod", "web-0", world.task_definition("web", {"app": world.image("web", "v0")}))
    rt = make_runtime(config())
    world.push("web", "v1")
    invoke("deploy_on_push", world.push("web", "v9"))
    set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=120)
    set_image_pushed_at("web", fake_digest("web:v9"), seconds_ago=60)
    # WHEN v2 is pushed but older than what runs (a backfilled tag), then reconcile runs
    world.push("web", "v2")
    set_image_pushed_at("web", fake_digest("web:v2"), seconds_ago=90)
    result = invoke("reconcile", {})
    # THEN the newest by push time (v9) is what runs: nothing moves back
    assert catch_up_actions(result) == [("prod/web-0", "in-sync")]
    assert running_image(rt, "web-0").endswith(fake_digest("web:v9"))


def test_plan_shows_the_catch_up_without_doing_it(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    from ecspilot.reconcile.runbook import reconcile  # noqa: PLC0415

    world.service("prod", "web-0", world.task_definition("web", {"app": world.image("web", "v0")}))
    rt = make_runtime(config())
    world.push("web", "v1")
    recorder.reset()
    result = reconcile(rt, dry_run=True)
    assert [(a.target, a.change, a.applied) for a in result.actions] == [("prod/web-0", "update", False)]
    assert "web:v1" in result.actions[0].detail
    assert recorder.writes() == []


REPORT_JOB = {
    "name": "report",
    "cluster": "prod",
    "task_definition": "report",
    "containers": {"app": {"repository": "web", "tags": ["v*"]}},
}
PINNED_JOB = {"name": "report-pinned", "cluster": "prod", "task_definition": "report:1"}


def test_a_matching_push_registers_a_new_revision_of_a_jobs_family(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    first = world.task_definition("report", {"app": world.image("web", "v0")})
    rt = make_runtime(config(services=0, jobs=[REPORT_JOB, PINNED_JOB]))
    event = world.push("web", "v1")
    recorder.reset()
    result = invoke("deploy_on_push", event)
    [job] = result["jobs"]
    assert (job["job"], job["outcome"]) == ("report", "registered")
    latest = rt.clients.ecs.describe_task_definition(taskDefinition="report")["taskDefinition"]
    assert latest["revision"] == 2
    assert latest["containerDefinitions"][0]["image"] == f"{world.registry}/web@{fake_digest('web:v1')}"
    # the pinned job still names revision 1, untouched; no service was updated
    pinned = rt.clients.ecs.describe_task_definition(taskDefinition="report:1")["taskDefinition"]
    assert pinned["taskDefinitionArn"] == first
    assert pinned["containerDefinitions"][0]["image"] == world.image("web", "v0")
    assert recorder.count("UpdateService") == 0
    # and the same event again registers nothing
    recorder.reset()
    assert invoke("deploy_on_push", event)["jobs"][0]["outcome"] == "unchanged"
    assert recorder.writes() == []


def started_task(rt: Runtime, result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The one task a run started, and the task definition it runs, as ECS describes them."""
    [task] = rt.clients.ecs.describe_tasks(cluster="prod", tasks=result["task_arns"])["tasks"]
    td = rt.clients.ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    return dict(task), dict(td)


@pytest.mark.usefixtures("frozen_tasks")
@pytest.mark.parametrize(
    "run_request",
    [load_event("scheduler_run_job", job="report"), {"job": "report"}],
    ids=["scheduled", "manual"],
)
def test_the_next_run_of_a_job_after_a_matching_push_starts_on_the_new_revision(
    run_request: dict[str, Any], world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN job report following web:v* on family report, whose revision 1 runs web:v0, and a host
    world.container_instance("prod", "us-east-1a")
    world.task_definition("report", {"app": world.image("web", "v0")})
    rt = make_runtime(config(services=0, jobs=[REPORT_JOB]))
    # WHEN web:v1 is pushed (deploy_on_push registers report:2) and then the job runs
    [followed] = invoke("deploy_on_push", world.push("web", "v1"))["jobs"]
    assert followed["to_task_definition"].endswith("task-definition/report:2")
    recorder.reset()
    result = invoke("run_job", run_request)
    # THEN RunTask is asked for report:2, and the task runs it: web:v1 pinned by digest
    [params] = recorder.params("RunTask")
    assert params["taskDefinition"] == followed["to_task_definition"]
    task, td = started_task(rt, result)
    assert task["taskDefinitionArn"] == followed["to_task_definition"]
    assert td["containerDefinitions"][0]["image"] == f"{world.registry}/web@{fake_digest('web:v1')}"
    # AND the run record names the revision it ran
    [run] = rt.history.runs("report")
    assert run["task_definition"] == followed["to_task_definition"]


@pytest.mark.usefixtures("frozen_tasks")
def test_a_job_pinned_to_a_revision_keeps_running_exactly_that_revision_after_a_matching_push(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN report:1 (web:v0), a job following web:v* on family report and one pinned to report:1
    world.container_instance("prod", "us-east-1a")
    first = world.task_definition("report", {"app": world.image("web", "v0")})
    rt = make_runtime(config(services=0, jobs=[REPORT_JOB, PINNED_JOB]))
    # WHEN web:v1 is pushed: the following job's family gets report:2
    result = invoke("deploy_on_push", world.push("web", "v1"))
    assert [(j["job"], j["outcome"]) for j in result["jobs"]] == [("report", "registered")]
    # AND the pinned job runs
    recorder.reset()
    run = invoke("run_job", load_event("scheduler_run_job", job="report-pinned"))
    # THEN RunTask is asked for report:1 and the task runs report:1, still on web:v0 by tag
    [params] = recorder.params("RunTask")
    assert params["taskDefinition"] == first
    task, td = started_task(rt, run)
    assert task["taskDefinitionArn"] == first
    assert td["containerDefinitions"][0]["image"] == world.image("web", "v0")


def test_catch_up_covers_jobs(world: Sandbox, make_runtime: MakeRuntime) -> None:
    world.task_definition("report", {"app": world.image("web", "v0")})
    rt = make_runtime(config(services=0, jobs=[REPORT_JOB]))
    world.push("web", "v3")
    result = invoke("reconcile", {})
    assert catch_up_actions(result) == [("job/report", "update")]
    latest = rt.clients.ecs.describe_task_definition(taskDefinition="report")["taskDefinition"]
    assert latest["containerDefinitions"][0]["image"].endswith(fake_digest("web:v3"))
    assert catch_up_actions(invoke("reconcile", {})) == [("job/report", "in-sync")]


def test_catch_up_holds_a_digest_whose_deployment_failed_on_the_service(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN v1 then v2 deployed by their push events, and ECS reporting v2's deployment FAILED
    world.service("prod", "web-0", world.task_definition("web", {"app": world.image("web", "v0")}))
    rt = make_runtime(config())
    with new_deployment_per_update():
        invoke("deploy_on_push", world.push("web", "v1"))
        set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=60)
        invoke("deploy_on_push", world.push("web", "v2"))
        v2 = rt.history.deployments("prod", "web-0")[0]
        failed = load_event(
            "ecs_deployment_failed",
            {"deploymentId": v2["deployment_id"]},
            resources=["arn:aws:ecs:us-east-1:123456789012:service/prod/web-0"],
        )
        invoke("track_deployments", failed)
        # the circuit breaker puts the service back on v1's revision
        rt.clients.ecs.update_service(
            cluster="prod", service="web-0", taskDefinition=v2["from_task_definition"]
        )
    assert rt.history.deployments("prod", "web-0")[0]["status"] == "FAILED"
    recorder.reset()
    # WHEN reconcile runs: v2 is still the newest image
    result = invoke("reconcile", {})
    # THEN catch-up does not undo the rollback: a conflict, and no write
    [action] = [a for a in result["actions"] if a["kind"] == "catch-up"]
    assert (action["target"], action["change"]) == ("prod/web-0", "conflict")
    assert "FAILED" in action["detail"]
    assert recorder.writes() == []
    assert running_image(rt, "web-0").endswith(fake_digest("web:v1"))


def test_the_stale_guard_reuses_the_listing_instead_of_asking_ecr_again(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN a service on v1 by digest (its push event arrived) and v2 pushed with its event lost
    world.service("prod", "web-0", world.task_definition("web", {"app": world.image("web", "v0")}))
    rt = make_runtime(config())
    invoke("deploy_on_push", world.push("web", "v1"))
    set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=60)
    world.push("web", "v2")
    recorder.reset()
    # WHEN reconcile catches up
    invoke("reconcile", {})
    # THEN v2 rolls, and the push times of v1 and v2 came from the one listing call
    assert running_image(rt, "web-0").endswith(fake_digest("web:v2"))
    assert recorder.count("DescribeImages") == 1


def test_catch_up_of_several_repositories_describes_and_records_in_one_batch_each(
    world: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN three services following three repositories, each with a push whose event was lost
    services = []
    for name in ("api", "worker", "cron"):
        world.repository(name)
        world.service("prod", name, world.task_definition(name, {"app": world.image(name, "v0")}))
        services.append({"name": name, "cluster": "prod", "containers": {"app": {"repository": name}}})
        world.push(name, "v1")
    rt = make_runtime({"version": 1, "services": services})
    recorder.reset()
    # WHEN reconcile catches up
    result = invoke("reconcile", {})
    # THEN all three roll, with one DescribeServices and one records write for the lot
    assert sorted(a["target"] for a in result["actions"] if a["change"] == "update") == [
        "prod/api",
        "prod/cron",
        "prod/worker",
    ]
    assert recorder.count("DescribeServices") == 1
    # one transaction claims each image's services, one writes the three records
    writes = [p["TransactItems"] for p in recorder.params("TransactWriteItems")]
    records = [w for w in writes if w[0]["Update"]["Key"]["pk"]["S"].startswith("DEPLOYMENT#")]
    assert [len(w) for w in records] == [3]
    assert [r["trigger"] for r in rt.history.deployments("prod", "cron")] == ["catch-up"]


def test_a_service_following_two_repositories_gets_both_missed_images(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    # GIVEN one service whose app and sidecar follow two repositories, both pushed without events
    world.repository("proxy")
    td = world.task_definition("web", {"app": world.image("web", "v0"), "proxy": world.image("proxy", "v0")})
    world.service("prod", "web-0", td)
    rt = make_runtime(
        {
            "version": 1,
            "services": [
                {
                    "name": "web-0",
                    "cluster": "prod",
                    "containers": {"app": {"repository": "web"}, "proxy": {"repository": "proxy"}},
                }
            ],
        }
    )
    world.push("web", "v1")
    world.push("proxy", "v1")
    # WHEN reconcile catches up both
    invoke("reconcile", {})
    # THEN the second deployment cloned the first's revision: both containers are pinned
    svc = rt.clients.ecs.describe_services(cluster="prod", services=["web-0"])["services"][0]
    containers = rt.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])[
        "taskDefinition"
    ]["containerDefinitions"]
    images = {c["name"]: c["image"] for c in containers}
    assert images == {
        "app": f"{world.registry}/web@{fake_digest('web:v1')}",
        "proxy": f"{world.registry}/proxy@{fake_digest('proxy:v1')}",
    }
