"""``ecspilot status`` for services in other accounts (issues 13 and 16), against moto with two
accounts: ecspilot's own (staging/web and a same-named prod/web) and 222222222222 / eu-west-1
(prod/web, promoted from staging), reached through ``sts:AssumeRole`` as the CLI does.

Each service is described with its own account's clients, its history and stops read under its
own state-table key; a role that cannot be assumed shows on its services' rows only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecspilot.aws.clients import Clients
from ecspilot.interfaces.cli_status import print_history, print_service_health, print_status
from ecspilot.interfaces.runtime import Runtime
from ecspilot_dev.health_events import ELB_FAILED, service_task_stopped
from ecspilot_dev.local import CallRecorder, invoke, load_event
from ecspilot_dev.sandbox import REGION, Sandbox
from tests.conftest import MakeRuntime
from tests.faults import Faults
from tests.promotion_world import TARGET_ACCOUNT, TARGET_REGION, World, config

KEY = f"web@{TARGET_ACCOUNT}:{TARGET_REGION}"
WHERE = f"prod ({TARGET_ACCOUNT} {TARGET_REGION})"


def accounts_config() -> dict[str, Any]:
    """web-staging (own staging/web), web-prod (account prod: prod/web there, promoted with no
    bake), worker-prod (account prod, prod/worker, never created), and web: ecspilot's own prod/web."""
    cfg = config(bake=0)
    cfg["services"] += [
        {
            "name": "worker-prod",
            "account": "prod",
            "cluster": "prod",
            "service": "worker",
            "containers": {"app": {"repository": "worker", "tags": ["v*"]}},
        },
        {
            "name": "web",
            "cluster": "prod",
            "service": "web",
            "containers": {"app": {"repository": "web", "tags": ["own-*"]}},
        },
    ]
    return cfg


@pytest.fixture
def world(sandbox: Sandbox, make_runtime: MakeRuntime) -> World:
    """The two accounts; v1 released in staging, promoted into the target account and completed
    there (the target's forwarded event); ecspilot's own prod/web on its own revision, desired 2."""
    w = World(sandbox, make_runtime, accounts_config())
    sandbox.cluster("prod")
    sandbox.service("prod", "web", sandbox.task_definition("web-own", {"app": sandbox.image("web", "v0")}))
    w.release("v1")
    [promoted] = w.rt.history.deployments("prod", KEY)
    w.ecs_event(
        "completed", promoted["deployment_id"], datetime.now(UTC), TARGET_ACCOUNT, TARGET_REGION, "prod"
    )
    return w


def cli(rt: Runtime) -> Runtime:
    """The runtime of a fresh CLI process (no assumed session cached yet) on the test's session
    (its recorder and faults)."""
    clients = Clients(session=rt.clients.base_session(), region=REGION)
    return Runtime.build(settings=rt.settings, config=rt.config, clients=clients)


def status_json(rt: Runtime, capsys: pytest.CaptureFixture[str], code: int = 0) -> dict[str, Any]:
    """``ecspilot status --output json`` in a fresh CLI process, its rows by configured name and
    its stderr (``errors``). ``code``: the exit code expected (README, "Exit codes": 1 when a row
    could not be read, the rest still shown)."""
    capsys.readouterr()
    assert print_status(cli(rt), output="json") == code
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    return {
        "services": {s["name"]: s for s in out["services"]},
        "health": {h["name"]: h for h in out["health"]},
        "errors": captured.err.strip().splitlines(),
    }


#: the error line of a ``status`` whose two services in the target account could not be read
UNREAD = f"error: 2 service(s) could not be read: prod/web @ {WHERE}, prod/worker @ {WHERE}"


def test_status_reads_a_service_of_another_account_there_and_a_same_named_own_service_here(
    world: World, recorder: CallRecorder, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN prod/web in the target account runs staging's v1 (promoted, COMPLETED there) with 3
    # desired, and ecspilot's own prod/web runs its own revision with 2 desired and no history
    recorder.reset()
    # WHEN a person runs `ecspilot status`
    out = status_json(world.rt, capsys)
    services, health = out["services"], out["health"]
    # THEN web-prod is read in the target account: its revision, its image (tagged from its own
    # records), its last deployment from the records under its account's key
    prod = services["web-prod"]
    assert prod["account"] == WHERE
    assert prod["state_service"] == KEY
    assert prod["task_definition"] == "web-prod:2"
    assert prod["images"] == {"app": "v1"}
    assert (prod["last_deployment"], prod["last_deployment_tag"]) == ("COMPLETED", "v1")
    assert prod["problem"] == ""
    assert (health["web-prod"]["desired"], health["web-prod"]["account"]) == (3, WHERE)
    # AND the own prod/web shows its own revision, desired count, and (no) history
    own = services["web"]
    assert (own["account"], own["state_service"]) == ("", "")
    assert own["task_definition"] == "web-own:1"
    assert own["last_deployment"] == "-"
    assert health["web"]["desired"] == 2
    # AND a service of that account that does not exist there is "not found" there, not here
    assert services["worker-prod"]["problem"] == "service not found"
    # AND one AssumeRole for the whole run (two services in that account, status and health)
    assert recorder.count("AssumeRole") == 1
    assert recorder.params("AssumeRole")[0]["RoleSessionName"] == "ecspilot-cli"


def test_status_table_and_detail_name_the_account(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN a person asks for status, then web-prod's in detail
    capsys.readouterr()
    assert print_status(cli(world.rt)) == 0
    table = capsys.readouterr().out
    assert print_service_health(cli(world.rt), "web-prod") == 0
    detail = capsys.readouterr().out.splitlines()
    # THEN the services table names where web-prod lives; the own prod/web is a line of its own
    assert f"prod/web @ {WHERE}" in table
    rows = [line for line in table.splitlines() if line.startswith("prod/web ")]
    assert len(rows) == 4  # services and health tables: the own prod/web and the other account's
    # AND the detail is the target account's service (3 desired there; the own one has 2)
    assert detail[0] == f"service prod/web (web-prod) in account {WHERE}"
    assert "  tasks:          0 running / 3 desired / 3 pending" in detail
    # AND the own web's detail is its own
    assert print_service_health(cli(world.rt), "web") == 0
    own = capsys.readouterr().out.splitlines()
    assert own[0] == "service prod/web (web)"
    assert "  tasks:          0 running / 2 desired / 2 pending" in own


def test_replacements_of_a_service_in_another_account_are_read_under_its_key(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN three of the target's prod/web tasks replaced in the last hour (forwarded events)
    td = str(world.prod_service()["taskDefinition"])
    now = datetime.now(UTC)
    for n in range(3):
        stop = service_task_stopped(
            ELB_FAILED,
            n,
            now - timedelta(minutes=30 - n),
            task_definition=td,
            account=TARGET_ACCOUNT,
            region=TARGET_REGION,
        )
        assert invoke("track_deployments", stop)["recorded"] is True
    # WHEN status is shown
    health = status_json(world.rt, capsys)["health"]
    # THEN web-prod counts them, the own prod/web none
    assert health["web-prod"]["replaced_last_hour"] == 3
    assert health["web-prod"]["top_reason"].startswith("Task failed ELB health checks")
    assert health["web"]["replaced_last_hour"] == 0


def test_a_role_that_cannot_be_assumed_shows_its_services_with_the_reason_and_the_rest_still_shows(
    world: World, faults: Faults, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the target account's role refuses to be assumed
    refusal = faults.fail("AssumeRole", service="sts", code="AccessDenied", status=403)
    # WHEN a person runs `ecspilot status`
    out = status_json(world.rt, capsys, code=1)
    services, health = out["services"], out["health"]
    # THEN it exits 1 naming that account's two services on stderr (issue 29: a partial failure)
    assert out["errors"] == [UNREAD]
    # AND both of that account's services show the reason, in both tables
    for name in ("web-prod", "worker-prod"):
        assert services[name]["problem"].startswith("account prod unreachable: ")
        assert "AccessDenied" in services[name]["problem"]
        assert health[name]["problem"] == services[name]["problem"]
    # AND web-prod's history (in ecspilot's own table) is still shown
    assert services["web-prod"]["last_deployment"] == "COMPLETED"
    # AND the role was asked once in the run, not once per service or table
    assert refusal.fired == 1
    # AND the own services are shown as usual
    assert services["web"]["task_definition"] == "web-own:1"
    assert services["web-staging"]["images"] == {"app": "v1"}
    assert health["web"]["problem"] == ""


def test_describe_failing_in_the_other_account_is_that_accounts_problem_only(
    world: World, faults: Faults, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN DescribeServices fails in the target account only (eu-west-1) beyond the retries
    faults.fail(
        "DescribeServices",
        service="ecs",
        code="AccessDeniedException",
        when=lambda p: p.get("cluster") == "prod" and p.get("services") == ["web", "worker"],
    )
    # WHEN a person runs `ecspilot status`
    out = status_json(world.rt, capsys, code=1)
    # THEN it exits 1 naming the target's services on stderr (issue 29: a partial failure)
    assert out["errors"] == [UNREAD]
    # AND the target's services say so; ecspilot's own still show
    assert "DescribeServices failed" in out["services"]["web-prod"]["problem"]
    assert "DescribeServices failed" in out["health"]["worker-prod"]["problem"]
    assert out["services"]["web"]["task_definition"] == "web-own:1"


def test_history_of_a_service_in_another_account_reads_its_key(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a deployment of the target's prod/worker (worker-prod: account prod, not promoted),
    # recorded by the tracker from the target's forwarded event
    event = load_event(
        "ecs_deployment_in_progress",
        {"deploymentId": "ecs-svc/77"},
        resources=[f"arn:aws:ecs:{TARGET_REGION}:{TARGET_ACCOUNT}:service/prod/worker"],
        account=TARGET_ACCOUNT,
        region=TARGET_REGION,
    )
    invoke("track_deployments", event)
    assert world.rt.history.deployment("ecs-svc/77")["service"] == f"worker@{TARGET_ACCOUNT}:{TARGET_REGION}"
    capsys.readouterr()
    # WHEN a person asks for worker-prod's history, then the own prod/web's
    assert print_history(world.rt, "worker-prod", output="json") == 0
    worker = json.loads(capsys.readouterr().out)
    assert print_history(world.rt, "web", output="json") == 0
    own = json.loads(capsys.readouterr().out)
    # THEN worker-prod's is the record under its account's key; the own prod/web has none
    assert [(r["deployment_id"], r["trigger"]) for r in worker] == [("ecs-svc/77", "external")]
    assert own == []
