"""`ecspilot history` and `ecspilot status` against a state table filled by the real handlers.

deploy_on_push starts the deployments, track_deployments closes them from the sample ECS events;
job runs are started by the real run_job handler and closed by track_deployments from the STOPPED
events of their tasks (tests.job_runs).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError

from ecspilot.aws.history import utc_now
from ecspilot.errors import AwsError, error_code
from ecspilot.interfaces.cli import main
from ecspilot.interfaces.runtime import Runtime
from ecspilot.interfaces.status import service_status
from ecspilot_dev.local import CallRecorder, invoke, load_event
from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox, fake_digest
from tests.conftest import TABLE, MakeRuntime
from tests.faults import Faults
from tests.job_runs import ends, fire
from tests.moto_state import new_deployment_per_update

CONFIG: dict[str, Any] = {
    "version": 1,
    "services": [
        {
            "name": "web",
            "cluster": "prod",
            "containers": {"app": {"repository": "web", "tags": ["v*"]}},
            "rollback": True,
        }
    ],
    "jobs": [{"name": "nightly-report", "cluster": "prod", "task_definition": "report"}],
}


@pytest.fixture(autouse=True)
def _ecs_deployment_ids() -> Iterator[None]:
    with new_deployment_per_update():
        yield


@pytest.fixture
def filled(
    sandbox: Sandbox,
    make_runtime: MakeRuntime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    frozen_tasks: None,
) -> Runtime:
    """web: v1 completed, v2 rolled back by the circuit breaker (ECS put v1 back);
    nightly-report: one run that succeeded, then one that exited 1."""
    sandbox.cluster("prod", instances_per_zone=1, zones=("us-east-1a",))
    sandbox.repository("web")
    sandbox.service("prod", "web", sandbox.task_definition("web", {"app": sandbox.image("web", "v0")}))
    sandbox.task_definition("report", {"report": "report:1", "log-router": "fluent-bit:stable"})
    rt = make_runtime(CONFIG)
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/web"

    def ecs_says(sample: str, deployment_id: str, **detail: Any) -> None:
        invoke(
            "track_deployments",
            load_event(sample, {"deploymentId": deployment_id, **detail}, resources=[arn]),
        )

    invoke("deploy_on_push", sandbox.push("web", "v1"))
    v1 = rt.history.deployments("prod", "web")[0]
    ecs_says("ecs_deployment_completed", v1["deployment_id"])
    invoke("deploy_on_push", sandbox.push("web", "v2"))
    v2 = rt.history.deployments("prod", "web")[0]
    ecs_says("ecs_deployment_failed", v2["deployment_id"])
    # ECS's rollback puts v1's revision back (moto does not roll back: UpdateService does it here)
    rt.clients.ecs.update_service(cluster="prod", service="web", taskDefinition=v1["to_task_definition"])
    reason = f"ECS deployment circuit breaker: rolling back to deploymentId {v1['deployment_id']}."
    ecs_says("ecs_deployment_rolled_back", "ecs-svc/999", reason=reason, updatedAt=utc_now())
    ecs_says("ecs_deployment_completed", "ecs-svc/999", updatedAt=utc_now())

    # two nights of nightly-report (concurrency forbid: the first run ends before the second)
    for night, sample in (("2026-11-25", "ecs_task_stopped"), ("2026-11-26", "ecs_task_stopped_failed")):
        task = fire(rt.clients, "nightly-report", f"{night}T02:00:00Z")
        invoke("track_deployments", ends(rt.clients, task, sample))

    config_path = tmp_path / "ecspilot.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    monkeypatch.setenv("ECSPILOT_CONFIG", str(config_path))
    monkeypatch.setenv("ECSPILOT_TABLE", TABLE)
    return rt


def test_history_of_a_service_lists_its_deployments_newest_first_with_outcomes(
    filled: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    # WHEN a person asks for web's history
    assert main(["history", "web"]) == 0
    out = capsys.readouterr().out.splitlines()
    # THEN a header, then the rollback, the rolled-back v2 and the completed v1, newest first
    assert out[0] == "service prod/web: last 3 deployment(s), newest first"
    assert out[1].split()[:4] == ["STARTED", "STATUS", "TRIGGER", "TAG"]
    statuses = [line.split()[1:4] for line in out[2:]]
    assert statuses[1:] == [["ROLLED_BACK", "push", "v2"], ["COMPLETED", "push", "v1"]]
    assert statuses[0][:2] == ["COMPLETED", "rollback"]
    assert fake_digest("web:v2")[:19] in out[3]


def test_history_of_a_job_as_json_gives_the_run_records_with_exit_codes(
    filled: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["history", "nightly-report", "--limit", "1", "--output", "json"]) == 0
    [run] = json.loads(capsys.readouterr().out)
    assert (run["job"], run["status"], run["exit_codes"]) == (
        "nightly-report",
        "FAILED",
        {"report": 1, "log-router": 137},
    )


def test_history_of_an_unknown_name_is_bad_input(filled: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "nope"]) == 2
    assert "neither a configured service nor a job" in capsys.readouterr().err


def test_status_shows_what_each_service_runs_and_each_jobs_last_run(
    filled: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["status"]) == 0
    out = capsys.readouterr().out.splitlines()
    # THEN web runs v1 again (pinned by digest, tag from the record) and its last deployment rolled back
    web = next(line for line in out if line.startswith("prod/web"))
    assert "web:2" in web
    assert "app=v1" in web
    assert fake_digest("web:v1")[:19] in web
    assert "ROLLED_BACK (v2)" in web
    # AND the job's last run failed with its exit codes and reason
    job = next(line for line in out if line.startswith("nightly-report"))
    assert "FAILED" in job
    assert "report=1,log-router=137" in job
    assert "report exited 1" in job


def test_status_as_json_is_machine_readable(filled: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["--output", "json", "status"]) == 0
    data = json.loads(capsys.readouterr().out)
    [web] = data["services"]
    assert (web["images"], web["digests"], web["last_deployment"]) == (
        {"app": "v1"},
        {"app": fake_digest("web:v1")},
        "ROLLED_BACK",
    )
    assert data["jobs"][0]["last_run"] == "FAILED"


# --- status's reads: the one ECS read layer, explicit dependencies -----------------------------


def _services_config(names_by_cluster: dict[str, list[str]]) -> dict[str, Any]:
    services = [
        {
            "name": f"{cluster}-{name}",
            "cluster": cluster,
            "service": name,
            "containers": {"app": {"repository": "web"}},
        }
        for cluster, names in names_by_cluster.items()
        for name in names
    ]
    return {"version": 1, "services": services}


def test_status_describes_services_ten_per_call_per_cluster_and_each_revision_once(
    sandbox: Sandbox, make_runtime: MakeRuntime, recorder: CallRecorder
) -> None:
    # GIVEN 12 services on one cluster sharing one revision, one on another cluster, one missing
    for cluster in ("alpha", "zeta"):
        sandbox.cluster(cluster)
    shared = sandbox.task_definition("web", {"app": sandbox.image("web", "v1")})
    other = sandbox.task_definition("api", {"app": sandbox.image("web", "v2")})
    many = [f"svc-{i:02d}" for i in range(12)]
    for name in many:
        sandbox.service("alpha", name, shared)
    sandbox.service("zeta", "solo", other)
    rt = make_runtime(_services_config({"alpha": many, "zeta": ["solo", "gone"]}))
    # WHEN status is read with the clients and history it is given
    rows = service_status(rt.config, rt.clients.ecs, rt.history)
    # THEN DescribeServices: 10 + 2 names on alpha, 2 on zeta; DescribeTaskDefinition once per revision
    batches = sorted((p["cluster"], len(p["services"])) for p in recorder.params("DescribeServices"))
    assert batches == [("alpha", 2), ("alpha", 10), ("zeta", 2)]
    assert recorder.count("DescribeTaskDefinition") == 2
    by_name = {r.name: r for r in rows}
    assert by_name["alpha-svc-00"].images == {"app": "v1"}
    assert by_name["zeta-solo"].images == {"app": "v2"}
    assert by_name["zeta-gone"].problem == "service not found"


def test_a_task_definition_status_cannot_read_fails_that_row_only(
    sandbox: Sandbox, make_runtime: MakeRuntime, faults: Faults
) -> None:
    # GIVEN two services, and ECS throttling the task definition read of one beyond botocore's retries
    sandbox.cluster("prod")
    sandbox.service("prod", "web", sandbox.task_definition("web", {"app": sandbox.image("web", "v1")}))
    sandbox.service("prod", "api", sandbox.task_definition("api", {"app": sandbox.image("web", "v2")}))
    rt = make_runtime(_services_config({"prod": ["web", "api"]}))
    faults.fail("DescribeTaskDefinition", when=lambda params: "/web:" in str(params["taskDefinition"]))
    # WHEN status is read
    rows = {r.service: r for r in service_status(rt.config, rt.clients.ecs, rt.history)}
    # THEN the row it could not read says why and is marked failed; the other row shows
    assert rows["web"].failed
    assert "DescribeTaskDefinition failed" in rows["web"].problem
    assert not rows["api"].failed
    assert rows["api"].images == {"app": "v2"}


@pytest.mark.parametrize(("operation", "context"), [("DescribeServices", {"cluster": "prod"})])
def test_status_throttled_past_botocores_retries_fails_with_a_typed_error_and_its_cause(
    sandbox: Sandbox, make_runtime: MakeRuntime, faults: Faults, operation: str, context: dict[str, str]
) -> None:
    # GIVEN a service, and ECS throttling one of status's reads beyond botocore's retries
    sandbox.cluster("prod")
    sandbox.service("prod", "web", sandbox.task_definition("web", {"app": sandbox.image("web", "v1")}))
    rt = make_runtime(_services_config({"prod": ["web"]}))
    faults.fail(operation)
    # WHEN status is read
    with pytest.raises(AwsError) as caught:
        service_status(rt.config, rt.clients.ecs, rt.history)
    # THEN a typed error names what failed, raised from the botocore error
    assert error_code(caught.value) == "ThrottlingException"
    assert isinstance(caught.value.__cause__, ClientError)
    assert operation in str(caught.value)
    for key, value in context.items():
        assert value in str(caught.value.context[key])


def test_status_with_one_configured_cluster_missing_shows_the_others_and_exits_1(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN prod/web running, and a service configured on a cluster that does not exist
    sandbox.cluster("prod")
    sandbox.service("prod", "web", sandbox.task_definition("web", {"app": sandbox.image("web", "v1")}))
    config = _services_config({"prod": ["web"], "gone": ["api"]})
    path = tmp_path / "ecspilot.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setenv("ECSPILOT_CONFIG", str(path))
    # WHEN status is asked for, in both outputs
    assert main(["status"]) == 1
    captured = capsys.readouterr()
    # THEN the healthy cluster's row shows what it runs; the missing one's row says why
    services_part = captured.out.split("\nhealth\n")[0].splitlines()
    rows = {line.split()[0]: line for line in services_part if line.startswith(("prod/", "gone/"))}
    assert "web:1" in rows["prod/web"]
    assert "app=v1" in rows["prod/web"]
    assert "DescribeServices failed" in rows["gone/api"] or "not found" in rows["gone/api"]
    assert captured.err.strip().splitlines()[-1].startswith("error: 1 service(s) could not be read: gone/api")
    assert main(["--output", "json", "status"]) == 1
    services = {s["service"]: s for s in json.loads(capsys.readouterr().out)["services"]}
    assert services["web"]["images"] == {"app": "v1"}
    assert not services["web"]["failed"]
    assert services["api"]["failed"]
    assert services["api"]["problem"]


def test_terminal_escapes_in_an_ecs_reason_are_printed_escaped(
    filled: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a deployment ECS failed with a reason carrying terminal escapes (clear screen, a new
    # window title, a right-to-left override): text AWS returns, printed by history and status
    client, table = filled.history.connection() or (None, "")
    assert client is not None
    [record] = [r for r in filled.history.deployments("prod", "web") if r["image_tag"] == "v2"]
    hostile = "boom\x1b[2J\x1b]0;pwned\x07\u202eevil\nnext"
    client.update_item(
        TableName=table,
        Key={"pk": {"S": record["pk"]}, "sk": {"S": record["sk"]}},
        UpdateExpression="SET reason = :r",
        ExpressionAttributeValues={":r": {"S": hostile}},
    )
    capsys.readouterr()
    # WHEN a person reads the history and the status
    assert main(["history", "web"]) == 0
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    # THEN no control or format character reached the terminal: each is shown escaped
    assert not any(ch in out for ch in "\x1b\x07\u202e")
    assert "boom\\x1b[2J" in out
    for line in out.splitlines():
        assert line.isprintable(), line


def test_printable_escapes_controls_and_keeps_what_is_asked() -> None:
    from ecspilot.interfaces.present import printable  # noqa: PLC0415

    assert printable("a\x1b[31mb\x9bc\u200bd\u202ee\x7f") == "a\\x1b[31mb\\x9bc\\u200bd\\u202ee\\x7f"
    assert printable("one\ntwo\tthree", keep="\n\t") == "one\ntwo\tthree"
    assert printable("one\ntwo") == "one\\x0atwo"
    assert printable("déjà vu — ok") == "déjà vu — ok"
