"""``import copilot``: Copilot schedules -> Scheduler expressions, manifests -> a config that validates."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ecspilot.adoption.copilot import import_copilot
from ecspilot.adoption.copilot_schedule import translate_schedule
from ecspilot.domain.config import parse_config
from ecspilot.domain.schedule_expr import validate_expression
from ecspilot.errors import CopilotImportError

FIXTURE = Path(__file__).parents[1] / "fixtures" / "copilot"
API = "manifest copilot/api/manifest.yml"


@pytest.mark.parametrize(
    ("copilot", "scheduler"),
    [
        ("@hourly", "cron(0 * * * ? *)"),
        ("@daily", "cron(0 0 * * ? *)"),
        ("@weekly", "cron(0 0 ? * 1 *)"),  # Sunday: 0 in Unix cron, 1 in Scheduler
        ("@monthly", "cron(0 0 1 * ? *)"),
        ("@yearly", "cron(0 0 1 1 ? *)"),
        ("@annually", "cron(0 0 1 1 ? *)"),
        ("@every 1h", "rate(1 hour)"),
        ("@every 30m", "rate(30 minutes)"),
        ("@every 1h30m", "rate(90 minutes)"),
        ("@every 48h", "rate(2 days)"),
        ("@every 120s", "rate(2 minutes)"),
        ("rate(15 minutes)", "rate(15 minutes)"),
        ("cron(0 3 * * ? *)", "cron(0 3 * * ? *)"),
        ("0 * * * *", "cron(0 * * * ? *)"),  # both days free: '?' goes to day-of-week
        ("30 2 1 * *", "cron(30 2 1 * ? *)"),  # day-of-month set: '?' in day-of-week
        ("30 2 * * 1-5", "cron(30 2 ? * 2-6 *)"),  # Mon-Fri: Unix 1-5 is Scheduler 2-6
        ("0 9 * * 0", "cron(0 9 ? * 1 *)"),
        ("0 9 * * 7", "cron(0 9 ? * 1 *)"),  # Sunday as 7
        ("0 9 * * 5-7", "cron(0 9 ? * 6-7,1 *)"),  # Fri-Sun wraps in Scheduler's numbering
        ("0 9 * * mon,fri", "cron(0 9 ? * MON,FRI *)"),
        ("*/15 8-18 * jan-mar *", "cron(*/15 8-18 * JAN-MAR ? *)"),
    ],
)
def test_copilot_schedules_become_valid_scheduler_expressions(copilot: str, scheduler: str) -> None:
    # WHEN a Copilot schedule is translated THEN it is the Scheduler expression meaning the same
    out = translate_schedule(copilot)
    assert out == scheduler
    validate_expression(out)  # and Scheduler's rules (6 fields, one '?') hold


@pytest.mark.parametrize(
    ("copilot", "why"),
    [
        ("0 9 1 * 1", "restricts both day-of-month and day-of-week"),  # Unix ORs them
        ("@every 90s", "whole minutes"),
        ("@every 30s", "whole minutes"),
        ("@every soon", "not a duration"),
        ("@fortnightly", "not a Copilot schedule"),
        ("0 9 * *", "not a Copilot schedule"),
        ("0 25 * * *", "outside 0-23"),
        ("0 9 * * 8", "outside 0-7"),
    ],
)
def test_schedules_without_a_scheduler_equivalent_are_refused_with_the_reason(copilot: str, why: str) -> None:
    with pytest.raises(CopilotImportError, match=why):
        translate_schedule(copilot)


def test_the_workspace_becomes_a_config_that_validates_for_each_environment() -> None:
    for env in ("test", "prod"):
        config, _ = import_copilot(FIXTURE, env)
        parsed = parse_config(config)
        assert {j.name for j in parsed.jobs} == {"archive", "cleanup", "report", "sync"}
        assert {s.name for s in parsed.services} == {"api", "worker"}


def test_scheduled_jobs_keep_their_schedule_and_follow_their_repository() -> None:
    config, _ = import_copilot(FIXTURE, "prod", "main")
    jobs = {j["name"]: j for j in config["jobs"]}
    assert jobs["report"] == {
        "name": "report",
        "cluster": "main",
        "task_definition": "shop-prod-report",  # Copilot's family: <app>-<env>-<name>
        "launch_type": "FARGATE",
        "containers": {"report": {"repository": "shop/report", "tags": ["*"]}},  # built: <app>/<name>
        "schedule": "cron(0 0 * * ? *)",
    }
    assert jobs["cleanup"]["schedule"] == "rate(1 hour)"
    assert jobs["cleanup"]["containers"] == {"cleanup": {"repository": "shop/cleanup", "tags": ["*"]}}
    assert jobs["sync"]["schedule"] == "rate(15 minutes)"
    assert jobs["archive"]["schedule"] == "cron(30 2 ? * 2-6 *)"
    # THEN a push to the job's repository finds the job: jobs follow pushes
    parsed = parse_config(config)
    assert [j.name for j, _ in parsed.jobs_for("shop/report", "abc123")] == ["report"]


def test_timeout_retries_and_network_are_reported_as_differences_not_dropped() -> None:
    _, lines = import_copilot(FIXTURE, "prod", "main")
    report = [line for line in lines if line.startswith("report: ")]
    assert any("timeout 1h30m is not translated" in line for line in report)
    assert any("retries 3 is not translated" in line and "re-runs a task" in line for line in report)
    assert any("network" in line and "subnets" in line for line in report)
    assert "report: cpu stays in the task definition Copilot registered" in "\n".join(report)
    assert any(line.startswith("report: variables.LOG_LEVEL ") for line in report)


def test_rollback_comes_from_the_chosen_environments_rollback_alarms() -> None:
    prod, prod_lines = import_copilot(FIXTURE, "prod")
    test, _ = import_copilot(FIXTURE, "test")
    assert next(s for s in prod["services"] if s["name"] == "api")["rollback"] is True
    assert "rollback" not in next(s for s in test["services"] if s["name"] == "api")
    assert any("deployment.rollback_alarms" in line and "circuit breaker" in line for line in prod_lines)
    assert f"api: environments.test overrides not applied (environment 'prod') ({API})" in prod_lines


def test_every_unsupported_field_is_listed_one_line_each() -> None:
    _, lines = import_copilot(FIXTURE, "test", "main")
    for expected in (
        f"api: http.alias has no ecspilot equivalent ({API})",
        f"api: http.path has no ecspilot equivalent ({API})",
        f"api: http.healthcheck has no ecspilot equivalent ({API})",
        f"api: deployment.rolling has no ecspilot equivalent ({API})",
        "archive: publish.topics has no ecspilot equivalent (manifest copilot/archive/manifest.yml)",
    ):
        assert expected in lines
    assert any(line.startswith("api: count is not translated") for line in lines)
    assert any(line.startswith("api: sidecars.envoy.port stays in the task definition") for line in lines)


def test_an_added_unknown_field_is_reported_never_silently_dropped(tmp_path: Path) -> None:
    # GIVEN a manifest with fields the importer has never heard of, nested and at the top
    workspace = tmp_path / "ws"
    shutil.copytree(FIXTURE, workspace)
    manifest = workspace / "copilot" / "sync" / "manifest.yml"
    manifest.write_text(manifest.read_text() + "future:\n  knob: 1\n  list: [a, b]\non_the_side: x\n")
    _, lines = import_copilot(workspace, "test", "main")
    sync = [line for line in lines if line.startswith("sync: ")]
    assert "sync: future.knob has no ecspilot equivalent (manifest copilot/sync/manifest.yml)" in sync
    assert "sync: future.list has no ecspilot equivalent (manifest copilot/sync/manifest.yml)" in sync
    assert "sync: on_the_side has no ecspilot equivalent (manifest copilot/sync/manifest.yml)" in sync


def test_a_worker_becomes_a_service_and_its_queue_is_reported_not_translated() -> None:
    config, lines = import_copilot(FIXTURE, "test", "main")
    worker = next(s for s in config["services"] if s["name"] == "worker")
    assert worker == {
        "name": "worker",
        "cluster": "main",
        "containers": {"worker": {"repository": "shop/worker", "tags": ["*"]}},
    }
    assert not any("queue" in job for job in config["jobs"])
    assert any(line.startswith("worker: subscribe (topics ['orders', 'refunds'], queue)") for line in lines)


def test_defaults_name_the_cluster_and_environment_and_say_so() -> None:
    config, lines = import_copilot(FIXTURE)
    assert {j["cluster"] for j in config["jobs"]} == {"shop-prod"}  # first environment, sorted
    assert lines[0].startswith("environment: 'prod' used (found ['prod', 'test'])")
    assert lines[1].startswith("cluster: 'shop-prod' assumed")
    parse_config(config)


def test_an_untranslatable_schedule_leaves_an_on_demand_job_and_a_line(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    shutil.copytree(FIXTURE, workspace)
    (workspace / "copilot" / "sync" / "manifest.yml").write_text(
        'name: sync\ntype: Scheduled Job\non:\n  schedule: "0 9 1 * 1"\nimage:\n'
        "  location: docker.io/library/busybox:1\n"
    )
    config, lines = import_copilot(workspace, "test", "main")
    sync = next(j for j in config["jobs"] if j["name"] == "sync")
    assert "schedule" not in sync
    assert "containers" not in sync
    assert any(line.startswith("sync: on.schedule not translated") for line in lines)
    assert any("is not an ECR image" in line for line in lines if line.startswith("sync: "))
    parse_config(config)


def test_a_directory_without_a_workspace_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CopilotImportError, match="not a Copilot workspace"):
        import_copilot(tmp_path)


@pytest.mark.parametrize(
    ("manifest", "expected_line"),
    [
        (
            "name: web\ntype: Request-Driven Web Service\nimage:\n  build: Dockerfile\n",
            "web: type 'Request-Driven Web Service' does not run on ECS tasks ecspilot manages",
        ),
        (
            "name: web\ntype: Backend Service\nimage:\n  location: nginx:1.27\n",
            "web: no ECR image to follow: the service is left out",
        ),
    ],
)
def test_workloads_ecspilot_cannot_follow_are_left_out_with_a_line(
    tmp_path: Path, manifest: str, expected_line: str
) -> None:
    (tmp_path / "copilot" / "web").mkdir(parents=True)
    (tmp_path / "copilot" / ".workspace").write_text("application: shop\n")
    (tmp_path / "copilot" / "web" / "manifest.yml").write_text(manifest)
    config, lines = import_copilot(tmp_path, "test")
    assert config == {"version": 1}
    assert any(line.startswith(expected_line) for line in lines)


def test_a_backend_service_with_an_ecr_image_becomes_a_service(tmp_path: Path) -> None:
    (tmp_path / "copilot" / "be").mkdir(parents=True)
    (tmp_path / "copilot" / ".workspace").write_text("application: shop\n")
    (tmp_path / "copilot" / "be" / "manifest.yml").write_text(
        "name: be\ntype: Backend Service\nimage:\n"
        "  location: 123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/be@sha256:abc\n"
    )
    config, _ = import_copilot(tmp_path, "test", "main")
    assert config["services"] == [
        {"name": "be", "cluster": "main", "containers": {"be": {"repository": "shop/be", "tags": ["*"]}}}
    ]
    parse_config(config)


def test_environment_manifests_are_reported_not_translated() -> None:
    _, lines = import_copilot(FIXTURE, "test", "main")
    assert sum(line.startswith("environments/") for line in lines) == 2
