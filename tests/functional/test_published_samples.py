"""Every sample in ``events/`` (AWS's published shapes, see events/README.md) is replayed through
the function that handles it and through ``ecspilot plan --event``, and the two agree: a dry run
that says "would-X" where the real run would fail, or ignore, is a defect.

The world: prod with web on web:v0, the report task definition, a state table, the config of
tests/functional/test_cli_contract.py (web followed, two jobs). A CloudFormation request keeps the
sample's ResponseURL (CloudFormation's response bucket, the only place the custom resource answers,
issue 24); what is PUT there reaches a local HTTP server (``answers_to_loopback``), so the custom
resource's answer is really sent and read.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from ecspilot.errors import EcspilotError
from ecspilot.interfaces.cli import main
from ecspilot.interfaces.cli_plan import event_function
from ecspilot_dev.local import CallRecorder, answers_to_loopback, invoke
from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox, create_state_table
from tests.conftest import TABLE
from tests.faults import Faults
from tests.functional.test_cli_contract import CONFIG

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLES = sorted(p.stem for p in EVENTS.glob("*.json"))
#: a dry run's word -> the real run's
SETTLED = {"would-deploy": "deployed", "would-register": "registered", "would-run": "started"}


class _Answers(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Answers.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def answers() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Answers)
    _Answers.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with answers_to_loopback(server.server_address[1]):
        yield f"http://127.0.0.1:{server.server_address[1]}", _Answers.received
    server.shutdown()


@pytest.fixture
def world(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    sandbox.cluster("prod")  # its one instance only where a task is run (moto's EC2 is slow)
    sandbox.repository("web")
    sandbox.service("prod", "web", sandbox.task_definition("web", {"app": sandbox.image("web", "v0")}))
    sandbox.task_definition("report", {"report": "report:1"})
    create_state_table(sandbox.clients, TABLE)
    path = tmp_path / "ecspilot.yaml"
    path.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    sandbox.clients.scheduler.create_schedule_group(Name="ecspilot")
    sqs = sandbox.clients.sqs
    dlq = sqs.create_queue(QueueName="ecspilot-SchedulerDeadLetterQueue")["QueueUrl"]
    jobs = sqs.create_queue(QueueName="ecspilot-JobsQueue")["QueueUrl"]
    jobs_dlq = sqs.create_queue(QueueName="ecspilot-JobsDeadLetterQueue")["QueueUrl"]
    settings = {  # what template.yaml gives the functions
        "ECSPILOT_CONFIG": str(path),
        "ECSPILOT_TABLE": TABLE,
        "ECSPILOT_ACCOUNT_ID": ACCOUNT,
        "ECSPILOT_RUN_JOB_ARN": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecspilot-RunJob",
        "ECSPILOT_SCHEDULER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/ecspilot-SchedulerRole",
        "ECSPILOT_SCHEDULER_DLQ_ARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:ecspilot-SchedulerDeadLetterQueue",
    }
    settings |= {"ECSPILOT_JOBS_QUEUE_URL": jobs, "ECSPILOT_JOBS_DLQ_URL": jobs_dlq}
    assert dlq
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return path


def _plan(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    session = boto3.Session(region_name=REGION)
    code = main(["--output", "json", "plan", "--event", str(path)], session=session)
    out = capsys.readouterr().out
    return code, (json.loads(out) if code == 0 and out.strip() else {})


def _words(function: str, result: dict[str, Any]) -> list[str]:
    if function == "deploy_on_push":
        return [str(s.get("outcome")) for s in result.get("services", [])]
    if function == "run_queued_jobs":  # the dry run's outcomes; the real run's failures are retried
        if "batchItemFailures" in result:
            return sorted(str(f["itemIdentifier"]) for f in result["batchItemFailures"])
        return sorted(str(m["message_id"]) for m in result.get("messages", []) if m["outcome"] == "retry")
    if function == "run_job":
        return [str(result.get("outcome"))]
    return []


@pytest.mark.parametrize("sample", SAMPLES)
def test_every_published_sample_gets_the_same_outcome_from_plan_and_from_its_handler(
    world: Path,
    sandbox: Sandbox,
    moto: None,
    recorder: CallRecorder,
    faults: Faults,
    sample: str,
    tmp_path: Path,
    answers: tuple[str, list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    event = json.loads((EVENTS / f"{sample}.json").read_text(encoding="utf-8"))
    path = tmp_path / f"{sample}.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    function = event_function(event)
    if function in ("run_job", "run_queued_jobs"):
        sandbox.container_instance("prod", "us-east-1a")
    # WHEN plan --event dry-runs it, then its function runs it for real
    code, planned = _plan(path, capsys)
    try:
        real: dict[str, Any] | EcspilotError = invoke(function, event)
    except EcspilotError as exc:
        real = exc
    # THEN they agree: refused by both, ignored by both, or the same outcome
    if code == 2:
        assert isinstance(real, EcspilotError), f"plan refused {sample}, the handler took it: {real}"
        return
    assert code == 0, f"plan failed on {sample}"
    assert not isinstance(real, EcspilotError), f"plan took {sample}, the handler failed: {real}"
    assert ("ignored" in planned) == ("ignored" in real), (planned, real)
    if "ignored" in planned:
        return
    planned_words = [SETTLED.get(w, w) for w in _words(function, planned)]
    assert planned_words == _words(function, real), (planned, real)
    if function == "track_deployments" and planned.get("moves") and "action" in real:
        assert planned["moves"][0]["to"] == real["action"]  # a hook: CONTINUE / ROLLBACK / WAIT
    if "RequestType" in event:
        assert [a["Status"] for a in answers[1]] == ["SUCCESS"]


@pytest.mark.parametrize(
    "url",
    ["http://pre-signed-S3-url-for-response", "https://attacker.example/x", "http://127.0.0.1:1/answer"],
)
def test_a_custom_resource_request_answering_elsewhere_is_refused_by_plan_and_by_its_handler(
    world: Path,
    moto: None,
    tmp_path: Path,
    answers: tuple[str, list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    url: str,
) -> None:
    # GIVEN the published Create request with a ResponseURL off CloudFormation's response bucket
    event = {
        **json.loads((EVENTS / "cloudformation_create.json").read_text(encoding="utf-8")),
        "ResponseURL": url,
    }
    path = tmp_path / "request.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    # WHEN plan --event dry-runs it THEN it is refused (exit 2), as the function refuses it
    code, _ = _plan(path, capsys)
    assert code == 2
    with pytest.raises(EcspilotError, match="ResponseURL"):
        invoke("reconcile", event)
    assert answers[1] == []  # nothing was sent


def test_an_incident_alarm_is_planned_as_the_function_records_it(
    world: Path,
    moto: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN the published alarm sample's alarm is an incident alarm of the config
    config = {**CONFIG, "incidents": {"alarms": ["ServerCpuTooHigh"]}}
    world.write_text(yaml.safe_dump(config), encoding="utf-8")
    path = EVENTS / "cloudwatch_alarm_state_change.json"
    # WHEN plan --event dry-runs it THEN it would record ALARM (the freeze starts), writing nothing
    code, planned = _plan(path, capsys)
    assert code == 0
    assert (planned["alarm"], planned["state"], planned["change"]) == (
        "ServerCpuTooHigh",
        "ALARM",
        "would-record",
    )
    table = boto3.Session(region_name=REGION).client("dynamodb")
    assert table.scan(TableName=TABLE)["Items"] == []
    # AND the function takes it: the freeze starts
    event = json.loads(path.read_text(encoding="utf-8"))
    assert invoke("reconcile", event)["transition"] == "started"
