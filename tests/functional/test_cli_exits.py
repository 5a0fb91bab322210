"""Every verb's exit code against the table (``ecspilot.interfaces.exits``), run as a user runs it:
``python -m ecspilot`` in a subprocess, once where there are no AWS credentials at all, once against
a moto server (``moto_server`` on loopback) with a config and a state table.

The region comes from ``AWS_REGION`` only (never ``AWS_DEFAULT_REGION``): the AWS CLI's order.
Bad input is exit 2 in both columns, found before any AWS call (so even without credentials);
missing credentials are exit 1, as any AWS failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from ecspilot.aws.clients import Clients
from ecspilot.aws.history import History
from ecspilot.aws.release_state import ReleaseRecords
from ecspilot.interfaces.exits import EXIT_BAD_INPUT, EXIT_CHANGES, EXIT_FAILED, EXIT_OK
from ecspilot_dev.local import free_port, pointed_at
from ecspilot_dev.sandbox import ACCOUNT, Sandbox, create_state_table

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
TABLE = "ecspilot-exits"
DIGEST = "sha256:" + "7" * 64
WAITING = "sha256:" + "8" * 64  # a version of web awaiting approval (issue 27), rejected on moto
FREEZES = "ecspilot-exits-freezes"  # freeze's cases write here: no other case sees their freezes
CONFIG: dict[str, Any] = {
    "version": 1,
    "services": [{"name": "web", "cluster": "prod", "containers": {"app": {"repository": "web"}}}],
    "jobs": [
        {"name": "nightly-report", "cluster": "prod", "task_definition": "report", "schedule": "rate(1 day)"},
        {
            "name": "render-video",
            "cluster": "prod",
            "task_definition": "report",
            "queue": {"allow": ["environment"]},
        },
    ],
}
QUEUE = "QUEUE_URL"  # replaced by the moto queue's URL (no credentials: a made-up one)
OK, FAILED, BAD, CHANGES = EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CHANGES
SKIP = -1  # not run there: bad input is found before any AWS call, so without credentials says it all
# argv -> (exit without credentials, exit against moto)
CASES: dict[str, tuple[list[str], int, int]] = {
    "validate": (["validate"], OK, OK),
    "validate missing config": (["validate", "--config", "nope.yaml"], BAD, SKIP),
    "plan": (["plan"], FAILED, OK),
    "plan --detailed-exitcode": (["plan", "--detailed-exitcode"], FAILED, CHANGES),
    "plan --event push": (["plan", "--event", "push.json"], FAILED, OK),
    "plan --event malformed": (["plan", "--event", "malformed.json"], BAD, SKIP),
    "plan --event other": (["plan", "--event", "other.json"], BAD, SKIP),
    "reconcile": (["reconcile"], FAILED, SKIP),  # moto lacks ListServiceDeployments: its part fails
    "run --dry-run": (["run", "nightly-report", "--dry-run"], FAILED, OK),
    "run unknown job": (["run", "nope"], BAD, SKIP),
    "placement check (no instances)": (["placement", "check", "nightly-report"], FAILED, FAILED),
    "history": (["history", "web"], FAILED, OK),
    "history --limit 0": (["history", "web", "--limit", "0"], BAD, SKIP),
    "history unknown": (["history", "nope"], BAD, SKIP),
    "status": (["status"], FAILED, OK),
    "status web": (["status", "web"], FAILED, OK),
    "status web --html": (["status", "web", "--html", "s.html"], BAD, SKIP),
    # moto's server lacks ListServiceDeployments (botocore retries its 500s): without credentials only
    "rollback": (["rollback", "web", "--dry-run"], FAILED, SKIP),
    "promote bad digest": (["promote", "web", "--digest", "bad"], BAD, SKIP),
    "promote not promoted": (["promote", "web", "--digest", DIGEST], BAD, SKIP),
    "approve (nothing waiting)": (["approve", "web"], FAILED, FAILED),
    "reject (nothing waiting)": (["reject", "web"], FAILED, FAILED),
    "approve unknown": (["approve", "nope"], BAD, SKIP),
    # release policies (issue 27): a version awaiting approval, by its digest
    "approve --digest bad": (["approve", "web", "--digest", "bad"], BAD, SKIP),
    "approve --digest unknown": (["approve", "nope", "--digest", DIGEST], BAD, SKIP),
    "approve --digest (nothing waiting)": (["approve", "web", "--digest", DIGEST], FAILED, FAILED),
    "reject --digest bad": (["reject", "web", "--digest", "sha256:abc"], BAD, SKIP),
    "reject --digest (nothing waiting)": (["reject", "web", "--digest", DIGEST], FAILED, FAILED),
    "reject --digest waiting": (["reject", "web", "--digest", WAITING], FAILED, OK),
    # stops (issue 25): freezes live in the state table (FREEZES), the caller's ARN from STS
    "freeze": (["freeze", "web", "--reason", "bad release", "--for", "2h"], FAILED, OK),
    "freeze --all": (["freeze", "--all", "--reason", "kill switch"], FAILED, OK),
    "freeze no target": (["freeze", "--reason", "why"], BAD, SKIP),
    "freeze unknown": (["freeze", "nope", "--reason", "why"], BAD, SKIP),
    "freeze web and --all": (["freeze", "web", "--all", "--reason", "why"], BAD, SKIP),
    "freeze blank reason": (["freeze", "web", "--reason", " "], BAD, SKIP),
    "freeze --for bad": (["freeze", "web", "--reason", "why", "--for", "2y"], BAD, SKIP),
    "freeze --until past": (
        ["freeze", "web", "--reason", "why", "--until", "2020-01-01T00:00:00Z"],
        BAD,
        SKIP,
    ),
    "freeze --for and --until": (
        ["freeze", "web", "--reason", "why", "--for", "1h", "--until", "2099-01-01T00:00:00Z"],
        BAD,
        SKIP,
    ),
    "unfreeze": (["unfreeze", "web"], FAILED, OK),
    "unfreeze --all": (["unfreeze", "--all"], FAILED, OK),
    "unfreeze no target": (["unfreeze"], BAD, SKIP),
    "unfreeze unknown": (["unfreeze", "nope"], BAD, SKIP),
    "freezes": (["freezes"], FAILED, OK),
    # insights (issue 28): the four keys from the state table
    "insights": (["insights"], FAILED, OK),
    "insights --service web --output json": (
        ["insights", "--service", "web", "--output", "json"],
        FAILED,
        OK,
    ),
    "insights --since bad": (["insights", "--since", "yesterday"], BAD, SKIP),
    "insights unknown service": (["insights", "--service", "nope"], BAD, SKIP),
    "insights --html unwritable": (["insights", "--html", "no/such/dir/i.html"], BAD, SKIP),
    "enqueue": (["enqueue", "render-video", "--queue-url", QUEUE], FAILED, OK),
    "enqueue bad --set": (["enqueue", "render-video", "--set", "nokey", "--queue-url", QUEUE], BAD, SKIP),
    "init": (["init", "--file", "init.yaml", "--force"], FAILED, OK),
    "init existing file": (["init", "--file", "ecspilot.yaml"], BAD, SKIP),
    "import copilot": (["import", "copilot", "shop", "--file", "-"], OK, OK),
    "import copilot --env missing": (["import", "copilot", "shop", "--env", "staging"], BAD, SKIP),
    "demo --region": (["demo", "--region", "eu-west-1"], BAD, SKIP),
    "unknown profile": (["status", "--profile", "nope"], BAD, SKIP),
    "bad argument": (["history"], BAD, SKIP),
}


def _copilot(workspace: Path) -> None:
    (workspace / "copilot" / "api").mkdir(parents=True)
    (workspace / "copilot" / ".workspace").write_text("application: shop\n", encoding="utf-8")
    manifest = {
        "name": "api",
        "type": "Load Balanced Web Service",
        "image": {"location": "shop/api:latest"},
        "environments": {"prod": {"count": 2}},
    }
    (workspace / "copilot" / "api" / "manifest.yml").write_text(yaml.safe_dump(manifest), encoding="utf-8")


def _files(cwd: Path) -> None:
    (cwd / "ecspilot.yaml").write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    push = json.loads((ROOT / "events" / "ecr_push.json").read_text(encoding="utf-8"))
    (cwd / "push.json").write_text(
        json.dumps({**push, "account": ACCOUNT, "region": REGION}), encoding="utf-8"
    )
    (cwd / "malformed.json").write_text('{"detail-type": "ECR Image Action", ', encoding="utf-8")
    (cwd / "other.json").write_text("[1, 2]", encoding="utf-8")
    _copilot(cwd / "shop")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ECSPILOT_"))}
    env.update(
        {
            "PYTHONPATH": f"{ROOT / 'layers' / 'ecspilot'}{os.pathsep}{ROOT / 'dev'}",
            "AWS_REGION": REGION,  # only AWS_REGION: the region must come from it
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
            "ECSPILOT_TABLE": TABLE,
            "ECSPILOT_ACCOUNT_ID": ACCOUNT,
            **extra,
        }
    )
    return env


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "ecspilot", *argv],
        check=False,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stderr


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def _world(endpoint: str) -> str:
    """prod/web on web:v0, the report task definition, the state tables (freeze's own too), a
    version of web awaiting approval, the jobs queue."""
    with pointed_at(endpoint):
        clients = Clients(session=boto3.Session(region_name=REGION))
        sandbox = Sandbox(clients)
        sandbox.cluster("prod")
        sandbox.repository("web")
        sandbox.service("prod", "web", sandbox.task_definition("web", {"app": sandbox.image("web", "v0")}))
        sandbox.task_definition("report", {"report": "report:1"})
        create_state_table(clients, TABLE)
        create_state_table(clients, FREEZES)
        waiting = {"repository": "web", "image_tag": "v2.0.0", "reason": "a major jump beyond allow: minor"}
        ReleaseRecords(History(clients.dynamodb, TABLE)).note("prod", "web", WAITING, "AWAITING", waiting)
        return str(clients.sqs.create_queue(QueueName="ecspilot-jobs")["QueueUrl"])


@pytest.fixture(scope="module")
def results(
    moto_server: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[int, str, int, str]]:
    """Every case run in both environments (in parallel: each is a fresh process)."""
    queue = _world(moto_server)
    fake = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/ecspilot-jobs"
    bare = _env()
    local = _env(
        AWS_ENDPOINT_URL=moto_server,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        # the stack's run_job and scheduler role, so that reconcile can create the schedule
        ECSPILOT_RUN_JOB_ARN=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecspilot-run-job",
        ECSPILOT_SCHEDULER_ROLE_ARN=f"arn:aws:iam::{ACCOUNT}:role/ecspilot-scheduler",
    )
    jobs = []
    for name, (argv, _, _) in CASES.items():
        for env, url in ((bare, fake), (local, queue)):
            cwd = tmp_path_factory.mktemp("cli")
            _files(cwd)
            jobs.append((name, [url if a == QUEUE else a for a in argv], env, cwd))

    def run(job: tuple[str, list[str], dict[str, str], Path]) -> tuple[int, str]:
        name, argv, env, cwd = job
        skip = CASES[name][2] == SKIP and env is local
        if name.startswith(("freeze", "unfreeze")):
            env = {**env, "ECSPILOT_TABLE": FREEZES}
        return (SKIP, "") if skip else _run(argv, env, cwd)

    with ThreadPoolExecutor(max_workers=4) as pool:
        done = list(pool.map(run, jobs))
    out: dict[str, tuple[int, str, int, str]] = {}
    for i, (name, *_) in enumerate(jobs[::2]):
        (bare_code, bare_err), (local_code, local_err) = done[2 * i], done[2 * i + 1]
        out[name] = (bare_code, bare_err, local_code, local_err)
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_verb_exits_as_the_table_says_without_credentials_and_against_moto(
    case: str, results: dict[str, tuple[int, str, int, str]]
) -> None:
    _, expected_bare, expected_local = CASES[case]
    bare_code, bare_err, local_code, local_err = results[case]
    assert (bare_code, local_code) == (expected_bare, expected_local), (bare_err, local_err)
    for code, err in ((bare_code, bare_err), (local_code, local_err)):
        if code in (FAILED, BAD):  # an error line on stderr, never a traceback
            assert "Traceback" not in err, err
            assert err.startswith(("error: ", "usage: ecspilot")), err


def test_missing_credentials_are_said_as_such_and_bad_input_is_said_before_them(
    results: dict[str, tuple[int, str, int, str]],
) -> None:
    assert "no AWS credentials" in results["history"][1]
    assert "is not an image digest" in results["promote bad digest"][1]
    assert "cannot read event malformed.json" in results["plan --event malformed"][1]
    assert "--limit takes 1 to 1000" in results["history --limit 0"][1]
    assert "no AWS credentials" in results["freeze"][1]
    assert "no configured service or daemon matches nope" in results["freeze unknown"][1]
    assert "is not an image digest" in results["approve --digest bad"][1]
    assert "'nope' is not a configured service" in results["insights unknown service"][1]
    assert "cannot write no/such/dir/i.html" in results["insights --html unwritable"][1]
