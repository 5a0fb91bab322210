"""The CLI's contract (issue 15): global options anywhere, --version and help, the same exit codes
for every verb, ``plan --event`` for every event ecspilot handles (a dry run: the call recorder
sees no write), and one error line instead of a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from ecspilot.interfaces.cli import main
from ecspilot.interfaces.cli_parser import build_parser
from ecspilot_dev.local import CallRecorder, invoke, load_event
from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox, create_state_table
from tests.conftest import TABLE
from tests.faults import Faults

CONFIG: dict[str, Any] = {
    "version": 1,
    "services": [{"name": "web", "cluster": "prod", "containers": {"app": {"repository": "web"}}}],
    "jobs": [
        {
            "name": "nightly-report",
            "cluster": "prod",
            "task_definition": "report",
            "schedule": "cron(0 3 * * ? *)",
        },
        {
            "name": "render-video",
            "cluster": "prod",
            "task_definition": "report",
            "queue": {"allow": ["environment"]},
        },
    ],
}
# every verb, with the arguments it needs (the global options are added before or after)
VERBS = {
    "validate": ["validate"],
    "plan": ["plan"],
    "reconcile": ["reconcile"],
    "run": ["run", "nightly-report"],
    "placement": ["placement", "check", "nightly-report"],
    "demo": ["demo"],
    "history": ["history", "web"],
    "status": ["status"],
    "enqueue": ["enqueue", "render-video"],
    "insights": ["insights"],
}
GLOBAL = ["--output", "json", "--region", "eu-west-1", "--profile", "ops", "--config", "x.yaml"]


@pytest.fixture
def world(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """prod with web on web:v0, the report task definition, a state table; the config file."""
    sandbox.cluster("prod")
    sandbox.repository("web")
    sandbox.service("prod", "web", sandbox.task_definition("web", {"app": sandbox.image("web", "v0")}))
    sandbox.task_definition("report", {"report": "report:1"})
    create_state_table(sandbox.clients, TABLE)
    path = tmp_path / "ecspilot.yaml"
    path.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    monkeypatch.setenv("ECSPILOT_CONFIG", str(path))
    monkeypatch.setenv("ECSPILOT_TABLE", TABLE)
    monkeypatch.setenv("ECSPILOT_ACCOUNT_ID", ACCOUNT)
    return path


@pytest.fixture
def session(moto: None, recorder: CallRecorder, faults: Faults) -> boto3.Session:
    """The CLI's session, its calls seen by the recorder and failed by ``faults``."""
    session = boto3.Session(region_name=REGION)
    faults.attach(session)
    recorder.attach(session)
    return session


# --- 1. global options anywhere, --version, help -------------------------------------------------


@pytest.mark.parametrize("verb", sorted(VERBS))
@pytest.mark.parametrize("where", ["before", "after"])
def test_global_options_are_accepted_before_or_after_every_subcommand(verb: str, where: str) -> None:
    argv = [*GLOBAL, *VERBS[verb]] if where == "before" else [*VERBS[verb], *GLOBAL]
    args = build_parser().parse_args(argv)
    assert (args.output, args.region, args.profile, args.config) == ("json", "eu-west-1", "ops", "x.yaml")


def test_a_global_option_before_the_subcommand_is_not_reset_by_the_subcommand() -> None:
    args = build_parser().parse_args(["--output", "json", "history", "web", "--region", "eu-west-1"])
    assert (args.output, args.region, args.profile, args.config) == ("json", "eu-west-1", None, None)


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from ecspilot import __version__  # noqa: PLC0415

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"ecspilot {__version__}"


@pytest.mark.parametrize("verb", sorted([*VERBS, "placement check", "init", "import", "import copilot"]))
def test_every_subcommand_help_has_a_one_line_description_and_an_example(
    verb: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main([*verb.split(), "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    description = out.split("\n\n")[1].strip()
    assert description
    assert "\n" not in description
    example = out.split("example:\n", 1)[1].strip()
    assert example.startswith(f"ecspilot {verb.split(maxsplit=1)[0]}")


def test_output_json_before_validate_prints_json(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--output", "json", "validate"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "config": str(world),
        "valid": True,
        "services": 1,
        "jobs": 2,
        "daemons": 0,
    }


# --- 2. exit codes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["run", "no-such"], "no job named 'no-such'"),
        (["placement", "check", "no-such"], "no job named 'no-such'"),
        (["history", "no-such"], "neither a configured service nor a job"),
        (["enqueue", "no-such"], "no-such"),
        (["plan", "--event", "events/ecr_push_malformed.json"], "ECR Image Action"),
    ],
)
def test_unknown_names_and_bad_events_are_bad_input_exit_2_for_every_verb(
    world: Path, session: boto3.Session, argv: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv, session=session) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert line in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "operation"),
    [
        (["run", "nightly-report"], "RunTask"),
        (["status"], "DescribeServices"),
        (["history", "web"], "Query"),
        (["insights"], "Query"),
        (["plan"], "ListSchedules"),
        (["reconcile"], "ListSchedules"),
        (["placement", "check", "nightly-report"], "ListContainerInstances"),
        (
            ["enqueue", "render-video", "--queue-url", "https://sqs.us-east-1.amazonaws.com/1/jobs"],
            "SendMessage",
        ),
    ],
)
def test_an_aws_failure_is_exit_1_with_one_error_line_for_every_verb(
    world: Path,
    session: boto3.Session,
    faults: Faults,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    operation: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a deployed stack's settings, and AWS throttling the verb's call beyond botocore's retries
    monkeypatch.setenv("ECSPILOT_RUN_JOB_ARN", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:run-job")
    monkeypatch.setenv("ECSPILOT_SCHEDULER_ROLE_ARN", f"arn:aws:iam::{ACCOUNT}:role/scheduler")
    faults.fail(operation)
    # WHEN the verb runs, THEN it failed (1) and said why in one line: no traceback, no log line
    assert main(argv, session=session) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ")
    assert "ThrottlingException" in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert "Traceback" not in captured.out + captured.err


@pytest.mark.parametrize("verb", ["reconcile", "placement"])
@pytest.mark.parametrize("output", ["table", "json"])
def test_reconcile_and_placement_answer_in_both_outputs(
    world: Path, session: boto3.Session, verb: str, output: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = VERBS[verb] + ["--output", output]
    assert main(argv, session=session) in (0, 1)
    out = capsys.readouterr().out
    if output == "json":
        json.loads(out)
    else:
        assert out.splitlines()[0].startswith(("reconcile applied", "job nightly-report on cluster prod"))


def test_plan_detailed_exitcode_is_3_with_changes_and_0_in_sync(
    world: Path, session: boto3.Session, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    push = world.parent / "push.json"
    push.write_text(json.dumps(sandbox.push("web", "v1")), encoding="utf-8")
    # a push of a new image would deploy: 3 behind --detailed-exitcode, 0 without it
    assert main(["plan", "--event", str(push), "--detailed-exitcode"], session=session) == 3
    assert main(["plan", "--event", str(push)], session=session) == 0
    # once deploy_on_push deployed it, the same event changes nothing: 0
    invoke("deploy_on_push", json.loads(push.read_text(encoding="utf-8")))
    capsys.readouterr()
    assert main(["plan", "--event", str(push), "--detailed-exitcode"], session=session) == 0
    assert "unchanged" in capsys.readouterr().out


def test_plan_of_a_push_whose_every_service_failed_exits_1_and_names_them(
    world: Path, session: boto3.Session, sandbox: Sandbox, faults: Faults, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a push, and ECS refusing the task definition read of the service it would deploy
    push = world.parent / "push.json"
    push.write_text(json.dumps(sandbox.push("web", "v1")), encoding="utf-8")
    faults.fail("DescribeTaskDefinition", code="AccessDeniedException")
    # WHEN it is planned, in both outputs
    for output in ("table", "json"):
        code = main(
            ["plan", "--event", str(push), "--output", output, "--detailed-exitcode"], session=session
        )
        # THEN the plan shows what it could and exits 1 (not 0, not 3), one error line naming the row
        captured = capsys.readouterr()
        assert code == 1, captured
        [line] = captured.err.strip().splitlines()
        assert line.startswith("error: 1 part(s) of the plan failed: prod/web")


# --- 3. plan --event: every event, a dry run, no write call ----------------------------------


@pytest.mark.parametrize(
    ("event", "function", "expect"),
    [
        ("ecr_push", "deploy_on_push", "services"),
        ("ecs_deployment_completed", "track_deployments", "moves"),
        ("ecs_task_stopped", "track_deployments", "ignored"),
        ("scheduler_run_job", "run_job", "outcome"),
        ("sqs_jobs_batch", "run_queued_jobs", "messages"),
        ("cloudtrail_delete_service", "reconcile", "actions"),
        ("cloudtrail_create_cluster", "reconcile", "actions"),
    ],
)
@pytest.mark.parametrize("output", ["table", "json"])
def test_plan_event_dry_runs_the_matching_function_and_makes_no_write_call(
    world: Path,
    session: boto3.Session,
    recorder: CallRecorder,
    event: str,
    function: str,
    expect: str,
    output: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recorder.reset()
    code = main(["plan", "--output", output, "--event", f"events/{event}.json"], session=session)
    out = capsys.readouterr().out
    assert code == 0
    # THEN the matching function's dry run answered, and nothing was written anywhere
    if output == "json":
        data = json.loads(out)
        assert data["function"] == function
        assert expect in data
    else:
        assert function in out
    assert recorder.calls, "the dry run reads AWS"
    assert recorder.writes() == []


def test_plan_event_of_a_queue_batch_shows_each_message_outcome(
    world: Path, session: boto3.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--output", "json", "plan", "--event", "events/sqs_jobs_batch.json"], session=session) == 0
    messages = json.loads(capsys.readouterr().out)["messages"]
    assert [m["outcome"] for m in messages] == ["would-run", "dead-lettered"]


@pytest.mark.parametrize("output", ["table", "json"])
def test_plan_event_from_another_account_is_ignored_as_the_function_would(
    world: Path, session: boto3.Session, sandbox: Sandbox, output: str, capsys: pytest.CaptureFixture[str]
) -> None:
    push = world.parent / "push.json"
    push.write_text(json.dumps({**sandbox.push("web", "v1"), "account": "999999999999"}), encoding="utf-8")
    assert (
        main(["plan", "--event", str(push), "--output", output, "--detailed-exitcode"], session=session) == 0
    )
    out = capsys.readouterr().out
    assert "untrusted origin account 999999999999" in out
    assert (
        ("ignored" in json.loads(out))
        if output == "json"
        else out.startswith("deploy_on_push: event ignored")
    )


def test_plan_event_of_something_else_is_bad_input(
    world: Path, session: boto3.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    other = world.parent / "other.json"
    other.write_text(json.dumps({"hello": "world"}), encoding="utf-8")
    assert main(["plan", "--event", str(other)], session=session) == 2
    assert "not an event ecspilot handles" in capsys.readouterr().err


# --- 4. one line instead of a traceback --------------------------------------------------------


def test_no_region_is_one_line_exit_2(
    world: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert main(["plan"]) == 2
    assert capsys.readouterr().err == (
        "error: no AWS region: give --region, set AWS_REGION, or use a profile that has one\n"
    )


def test_a_yaml_error_names_the_file_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("version: 1\nservices: [\n  - name: web\n", encoding="utf-8")
    assert main(["--config", str(path), "validate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}, line ")
    assert "<unicode string>" not in err
    assert len(err.strip().splitlines()) == 1


def test_enqueue_without_a_queue_url_says_to_give_queue_url(
    world: Path, session: boto3.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["enqueue", "render-video"], session=session) == 2
    assert "--queue-url" in capsys.readouterr().err


def test_plan_before_the_stack_is_deployed_shows_schedules_with_a_note(
    world: Path, session: boto3.Session, recorder: CallRecorder, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a scheduled job and no ECSPILOT_RUN_JOB_ARN (the stack is not deployed)
    recorder.reset()
    assert main(["plan", "--detailed-exitcode"], session=session) == 3
    out = capsys.readouterr().out
    schedule = next(line for line in out.splitlines() if "nightly-report" in line and "schedule" in line)
    assert "create" in schedule
    assert "note: ECSPILOT_RUN_JOB_ARN" in out
    assert recorder.writes() == []


def test_status_without_a_table_says_so_in_one_line_and_prints_a_clean_table(
    world: Path, session: boto3.Session, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ECSPILOT_TABLE")
    assert main(["status"], session=session) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("note: no state table: set ECSPILOT_TABLE")
    assert len(captured.err.strip().splitlines()) == 1
    assert "{" not in captured.out  # no JSON log line inside the table
    assert any(line.startswith("prod/web") for line in captured.out.splitlines())
    assert main(["history", "web"], session=session) == 2
    assert capsys.readouterr().err.startswith("error: no state table")


@pytest.mark.parametrize("output", ["table", "json"])
def test_run_dry_run_in_both_outputs(
    world: Path,
    session: boto3.Session,
    recorder: CallRecorder,
    output: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recorder.reset()
    assert main(["run", "nightly-report", "--dry-run", "--output", output], session=session) == 0
    out = capsys.readouterr().out
    assert "would-run" in out
    assert recorder.writes() == []


@pytest.mark.parametrize("output", ["table", "json"])
def test_enqueue_in_both_outputs_sends_the_validated_message(
    world: Path, session: boto3.Session, output: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = session.client("sqs").create_queue(QueueName="jobs")["QueueUrl"]
    argv = ["enqueue", "render-video", "--set", "environment.A=1", "--queue-url", url, "--output", output]
    assert main(argv, session=session) == 0
    out = capsys.readouterr().out
    body = json.loads(session.client("sqs").receive_message(QueueUrl=url)["Messages"][0]["Body"])
    assert body["job"] == "render-video"
    assert (json.loads(out)["body"] == body) if output == "json" else out.startswith("enqueued render-video")


def test_load_event_is_the_shared_event_loader() -> None:
    # the sample events the plan tests dispatch are the handlers' own samples
    assert load_event("scheduler_run_job")["job"] == "nightly-report"


def test_the_recorder_sees_the_clis_writes_so_an_empty_list_means_none_were_made(
    world: Path, session: boto3.Session, recorder: CallRecorder
) -> None:
    # GIVEN the CLI's session; WHEN a verb that writes runs (enqueue sends a message)
    url = session.client("sqs").create_queue(QueueName="jobs")["QueueUrl"]
    recorder.reset()
    assert main(["enqueue", "render-video", "--queue-url", url], session=session) == 0
    # THEN its write is on the recorder: the dry runs' empty write lists are not blind spots
    assert recorder.writes() == ["SendMessage"]
