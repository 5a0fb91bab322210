"""Fixtures shared by every test: fake credentials, moto, the sandbox, a runtime."""

from __future__ import annotations

import os

# moto's EC2 would load its catalogue of real AMIs in every test that starts an instance (~1.5 s);
# the sandbox uses one fake AMI id. Must be set before moto is imported.
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from ecspilot.aws.clients import Clients
from ecspilot.domain.config import EcspilotConfig, parse_config
from ecspilot.interfaces import runtime
from ecspilot.interfaces.runtime import Runtime
from ecspilot.interfaces.settings import Settings
from ecspilot.queue import redrive
from ecspilot_dev.local import CallRecorder
from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox, create_state_table
from tests.faults import Faults
from tests.iam_check import iam_check  # noqa: F401 - autouse: least privilege on every call (issue 24)
from tests.moto_state import atomic_dynamodb_writes, new_deployment_per_update

TABLE = "ecspilot-state-test"


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never reach a real account: fake credentials, no endpoint, no profile."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "ECSPILOT_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ecspilot")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "ecspilot")
    runtime.reset()
    # the redrive policy is read once per process (per queue ARN): a test's queue must not answer
    # with the policy of an earlier test's queue of the same name (which test ran before depends on
    # how xdist distributes them)
    redrive._redrive_cache.clear()


@pytest.fixture
def moto() -> Iterator[None]:
    from moto import mock_aws  # noqa: PLC0415

    # ECS gives every deployment its own id (moto keeps one per service unless told otherwise),
    # and DynamoDB applies a conditional write atomically (moto checks, then writes, unlocked)
    with mock_aws(), new_deployment_per_update(), atomic_dynamodb_writes():
        yield


@pytest.fixture
def frozen_tasks(moto: None) -> Iterator[None]:
    """Keep moto's tasks in their status: moto moves a task one status towards STOPPED on every
    DescribeTasks, while a real task runs until it exits or is stopped."""
    from moto.moto_api import state_manager  # noqa: PLC0415

    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
    yield
    state_manager.unset_transition("ecs::task")


@pytest.fixture
def recorder() -> CallRecorder:
    return CallRecorder()


@pytest.fixture
def faults() -> Faults:
    """Fault rules for the ``clients`` session (tests/faults.py): throttling, network errors,
    lost replies, outages, exceptions."""
    return Faults()


@pytest.fixture
def clients(moto: None, recorder: CallRecorder, faults: Faults) -> Clients:
    """Clients on a session whose API calls the ``recorder`` sees and ``faults`` may fail."""
    session = boto3.Session(region_name=REGION)
    faults.attach(session)
    recorder.attach(session)
    return Clients(session=session, region=REGION)


@pytest.fixture
def sandbox(clients: Clients) -> Sandbox:
    return Sandbox(clients)


MakeRuntime = Callable[..., Runtime]


@pytest.fixture
def make_runtime(clients: Clients, recorder: CallRecorder) -> MakeRuntime:
    """Build the process runtime the handlers will use, from a config dict."""

    def make(config: dict[str, Any] | EcspilotConfig, table: bool = True, **settings: Any) -> Runtime:
        if table:
            create_state_table(clients, TABLE)
        parsed = config if isinstance(config, EcspilotConfig) else parse_config(config)
        rt = Runtime.build(
            settings=Settings(
                **{
                    "table_name": TABLE if table else None,
                    "region": REGION,
                    "account_id": ACCOUNT,
                    **settings,
                }
            ),
            config=parsed,
            clients=clients,
        )
        runtime.reset(rt)
        recorder.reset()
        return rt

    return make
