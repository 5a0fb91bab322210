"""``ecspilot init`` on moto: an account with services (ECR and not), a DAEMON service on two
clusters, an EventBridge rule and a Scheduler schedule running ECS tasks -> a config that
validates, lists each, and is the same file on a second run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from ecspilot.aws.clients import Clients
from ecspilot.domain.config import load_config, parse_config
from ecspilot.interfaces.cli import main
from ecspilot.interfaces.cli_parser import build_parser
from ecspilot.jobs.schedules import ScheduleTarget, sync_schedules
from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox
from tests.faults import Faults

CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/events-ecs"


@pytest.fixture
def account(sandbox: Sandbox, clients: Clients) -> Sandbox:
    """GIVEN an account: prod (web on v1.2.3 with the circuit breaker, api on latest, nginx from
    Docker Hub, an EXTERNAL-controller service, the log-agent daemon), batch (the same daemon), a
    scheduled EventBridge rule and a Scheduler schedule running tasks on batch."""
    for name in ("prod", "batch"):
        sandbox.cluster(name)
    web = sandbox.task_definition("web", {"app": sandbox.image("shop/web", "v1.2.3"), "proxy": "nginx:1.27"})
    api = sandbox.task_definition("api", {"app": sandbox.image("shop/api", "latest")})
    edge = sandbox.task_definition("edge", {"edge": "public.ecr.aws/nginx/nginx:1.27"})
    agent = sandbox.task_definition("log-agent", {"agent": sandbox.image("ops/log-agent", "v3")})
    report = sandbox.task_definition("report", {"report": sandbox.image("jobs/report", "v7")})
    breaker = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}
    sandbox.service("prod", "web", web, deploymentConfiguration=breaker)
    sandbox.service("prod", "api", api)
    sandbox.service("prod", "edge", edge)
    sandbox.service("prod", "blue-green", api, deploymentController={"type": "EXTERNAL"})
    for cluster in ("prod", "batch"):
        sandbox.service(cluster, "log-agent", agent, desired=0, schedulingStrategy="DAEMON")
    events = clients.get("events")
    events.put_rule(Name="nightly-report", ScheduleExpression="cron(0 3 * * ? *)", State="ENABLED")
    events.put_rule(Name="on-push", EventPattern=json.dumps({"source": ["aws.ecr"]}))
    overrides = {"containerOverrides": [{"name": "report", "command": ["report", "--full"]}]}
    events.put_targets(
        Rule="nightly-report",
        Targets=[
            {
                "Id": "report",
                "Arn": CLUSTER_ARN + "batch",
                "RoleArn": ROLE,
                "Input": json.dumps(overrides),
                "EcsParameters": {
                    "TaskDefinitionArn": report,
                    "TaskCount": 2,
                    "LaunchType": "FARGATE",
                    "NetworkConfiguration": {
                        "awsvpcConfiguration": {
                            "Subnets": ["subnet-b", "subnet-a"],
                            "AssignPublicIp": "DISABLED",
                        }
                    },
                    "PropagateTags": "TASK_DEFINITION",
                },
            }
        ],
    )
    clients.scheduler.create_schedule(
        Name="hourly-sync",
        ScheduleExpression="rate(1 hour)",
        ScheduleExpressionTimezone="Europe/Paris",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": CLUSTER_ARN + "batch",
            "RoleArn": ROLE,
            "EcsParameters": {
                "TaskDefinitionArn": report,
                "LaunchType": "EC2",
                "PlacementConstraints": [{"type": "distinctInstance"}],
            },
        },
    )
    return sandbox


@pytest.fixture
def session(clients: Clients, faults: Faults) -> boto3.Session:
    """The CLI's session, on the same moto, with the same fault rules."""
    session = boto3.Session(region_name=REGION)
    faults.attach(session)
    return session


def run_init(
    tmp_path: Path, session: boto3.Session, *args: str, name: str = "ecspilot.yaml"
) -> tuple[int, Path]:
    out = tmp_path / name
    code = main(["init", "--file", str(out), *args], session=session)
    return code, out


def entries(path: Path) -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(path.read_text())
    return {
        f"{section}/{e['name']}": e
        for section in ("services", "daemons", "jobs")
        for e in data[section] or []
    }


def test_init_writes_a_config_that_validates_and_lists_each_workload(
    account: Sandbox, session: boto3.Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN ecspilot init reads every cluster
    code, out = run_init(tmp_path, session)

    # THEN it validates (load_config, as `ecspilot validate` does) and so does `ecspilot validate`
    assert code == 0
    config = load_config(out)
    assert main(["--config", str(out), "validate"]) == 0
    got = entries(out)
    assert sorted(got) == [
        "daemons/log-agent",
        "jobs/hourly-sync",
        "jobs/nightly-report",
        "services/api",
        "services/web",
    ]
    # the release tag is followed as v*, latest as * (with a comment); moto drops the deployment
    # configuration (LOCAL-AWS.md), so the circuit breaker -> rollback is proved in tests/unit
    assert got["services/web"]["containers"] == {"app": {"repository": "shop/web", "tags": ["v*"]}}
    assert got["services/api"]["containers"] == {"app": {"repository": "shop/api", "tags": ["*"]}}
    assert "rollback" not in got["services/api"]
    # the daemon on two clusters is one entry
    assert got["daemons/log-agent"]["clusters"] == ["batch", "prod"]
    assert got["daemons/log-agent"]["task_definition"] == "log-agent:1"
    # the rule's target: schedule, network, count, overrides; never adopted by itself
    nightly = next(j for j in config.jobs if j.name == "nightly-report")
    assert (nightly.cluster, nightly.task_definition, nightly.schedule) == (
        "batch",
        "report:1",
        "cron(0 3 * * ? *)",
    )
    assert nightly.count == 2
    assert nightly.launch_type == "FARGATE"
    assert nightly.network is not None
    assert nightly.network.subnets == ["subnet-a", "subnet-b"]
    assert nightly.overrides.containers["report"].command == ["report", "--full"]
    hourly = next(j for j in config.jobs if j.name == "hourly-sync")
    assert (hourly.timezone, hourly.launch_type, hourly.schedule) == ("Europe/Paris", "EC2", "rate(1 hour)")
    assert not nightly.adopt
    assert not hourly.adopt
    # each entry says where it came from; what was left out says why
    text = out.read_text()
    assert "# from service prod/web" in text
    assert "# from DAEMON service batch/log-agent, prod/log-agent" in text
    assert "# from EventBridge rule nightly-report" in text
    assert "# from EventBridge Scheduler schedule default/hourly-sync" in text
    assert "runs tag 'latest', not a release pattern" in text
    assert "service prod/edge: no container runs an ECR image" in text
    assert "service prod/blue-green: uses the EXTERNAL deployment controller" in text
    assert "container proxy: image nginx:1.27 is not in ECR: left out" in text
    assert "left out: service prod/edge" in capsys.readouterr().err


def test_init_is_byte_identical_on_a_second_run(
    account: Sandbox, session: boto3.Session, tmp_path: Path
) -> None:
    # WHEN init runs twice on the same account
    _, first = run_init(tmp_path, session, name="one.yaml")
    _, second = run_init(tmp_path, session, name="two.yaml")

    # THEN the two files are the same, byte for byte
    assert first.read_bytes() == second.read_bytes()


def test_init_to_stdout_with_cluster_reads_only_that_cluster(
    account: Sandbox, session: boto3.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN init reads only the prod cluster, to stdout
    assert main(["init", "--cluster", "prod"], session=session) == 0

    # THEN only prod's workloads are there: the daemon on prod alone, no job (they run on batch)
    config = parse_config(yaml.safe_load(capsys.readouterr().out))
    assert [d.clusters for d in config.daemons] == [["prod"]]
    assert config.jobs == []
    assert sorted(s.name for s in config.services) == ["api", "web"]


def test_init_never_overwrites_a_file_without_force(
    account: Sandbox, session: boto3.Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a file where init would write
    out = tmp_path / "ecspilot.yaml"
    out.write_text("mine\n")

    # WHEN init writes there without --force: exit 2, one line, the file untouched
    assert main(["init", "--file", str(out)], session=session) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"error: {out} exists: give --force to overwrite it"]
    assert out.read_text() == "mine\n"

    # WHEN with --force: replaced by a config that validates
    assert main(["init", "--file", str(out), "--force"], session=session) == 0
    assert load_config(out).services


def test_init_with_an_unknown_cluster_is_bad_input(
    account: Sandbox, session: boto3.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "--cluster", "nope"], session=session) == 2
    assert capsys.readouterr().err.strip() == "error: no such cluster: nope (cluster=nope)"


@pytest.mark.parametrize(
    ("operation", "service", "mode", "said"),
    [
        ("ListClusters", "ecs", "error", "reading clusters failed"),
        ("DescribeServices", "ecs", "network", "reading the services of batch failed"),
        ("DescribeTaskDefinition", "ecs", "error", "reading the services of batch failed"),
        ("ListTargetsByRule", "events", "error", "reading EventBridge rules failed"),
        ("GetSchedule", "scheduler", "network", "reading Scheduler schedules failed"),
    ],
)
def test_a_failing_read_fails_init_with_one_line_and_writes_nothing(
    account: Sandbox,
    session: boto3.Session,
    faults: Faults,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    operation: str,
    service: str,
    mode: str,
    said: str,
) -> None:
    # GIVEN one of init's reads failing past botocore's retries (throttled, or the network gone)
    faults.fail(operation, mode, code="ThrottlingException", service=service)

    # WHEN init runs: exit 1, one error line naming the read, no file (never half a config)
    code, out = run_init(tmp_path, session)
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"error: {said}")
    assert not out.exists()


def test_adopt_false_jobs_keep_their_schedule_untouched_by_reconcile(clients: Clients) -> None:
    # GIVEN ecspilot's group with a schedule for `report` (made while it was adopted), and a config
    # where `report` is now `adopt: false` and `fresh` (also adopt: false) has none
    scheduler = clients.scheduler
    scheduler.create_schedule_group(Name="ecspilot")
    existing = {
        "ScheduleExpression": "rate(5 minutes)",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {"Arn": "arn:aws:lambda:us-east-1:123456789012:function:x", "RoleArn": ROLE},
    }
    scheduler.create_schedule(Name="report", GroupName="ecspilot", **existing)
    job = {"cluster": "batch", "task_definition": "report", "schedule": "rate(1 hour)", "adopt": False}
    config = parse_config({"version": 1, "jobs": [{"name": "report", **job}, {"name": "fresh", **job}]})
    target = ScheduleTarget(run_job_arn="arn:aws:lambda:us-east-1:123456789012:function:run", role_arn=ROLE)

    # WHEN the schedules part of reconcile runs
    actions = sync_schedules(scheduler, config, "ecspilot", target, dry_run=False)

    # THEN nothing is created, updated or deleted: the schedule is as it was
    assert actions == []
    names = [s["Name"] for s in scheduler.list_schedules(GroupName="ecspilot")["Schedules"]]
    assert names == ["report"]
    assert (
        scheduler.get_schedule(Name="report", GroupName="ecspilot")["ScheduleExpression"] == "rate(5 minutes)"
    )

    # AND the same job adopted (the default) is ecspilot's again: updated, and `fresh` created
    adopted = parse_config(
        {
            "version": 1,
            "jobs": [{"name": "report", **job, "adopt": True}, {"name": "fresh", **job, "adopt": True}],
        }
    )
    changes = {
        a.target: a.change for a in sync_schedules(scheduler, adopted, "ecspilot", target, dry_run=False)
    }
    assert changes == {"ecspilot/fresh": "create", "ecspilot/report": "update"}


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_options_work_around_init_and_file_names_the_file(where: str) -> None:
    given = ["--region", "eu-west-1", "--profile", "ops", "--config", "x.yaml", "--output", "json"]
    verb = ["init", "--cluster", "a", "--cluster", "b", "-f", "out.yaml"]
    args = build_parser().parse_args([*given, *verb] if where == "before" else [*verb, *given])
    assert (args.region, args.profile, args.config, args.output) == ("eu-west-1", "ops", "x.yaml", "json")
    assert (args.output_file, args.cluster, args.force) == ("out.yaml", ["a", "b"], False)


def test_import_copilot_of_a_missing_workspace_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", "copilot", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_import_copilot_never_overwrites_a_file_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ecspilot.yaml"
    out.write_text("mine\n")
    assert main(["import", "copilot", str(tmp_path), "--file", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {out} exists: give --force to overwrite it"
    assert out.read_text() == "mine\n"


def test_import_copilot_writes_a_config_that_validates_and_lists_the_unsupported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a Copilot workspace (copilot/.workspace names the application) with one scheduled job
    manifest = tmp_path / "copilot" / "report" / "manifest.yml"
    manifest.parent.mkdir(parents=True)
    (tmp_path / "copilot" / ".workspace").write_text("application: shop\n", encoding="utf-8")
    manifest.write_text(
        yaml.safe_dump(
            {
                "name": "report",
                "type": "Scheduled Job",
                "image": {"location": "123456789012.dkr.ecr.us-east-1.amazonaws.com/report:v1"},
                "on": {"schedule": "@daily"},
                "cpu": 256,
                "memory": 512,
                "publish": {"topics": [{"name": "done"}]},
            }
        )
    )
    out = tmp_path / "ecspilot.yaml"
    assert main(["import", "copilot", str(tmp_path), "--file", str(out)]) == 0
    assert [j.name for j in load_config(out).jobs] == ["report"]
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("wrote ")]
    assert all(line.startswith("unsupported: ") for line in err)
