"""End-to-end: moto's server on loopback, real boto3 clients over HTTP, real handlers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from ecspilot.aws.clients import Clients
from ecspilot.interfaces import runtime
from ecspilot.interfaces.runtime import Runtime
from ecspilot_dev.local import CallRecorder, local_aws, moto_api
from ecspilot_dev.sandbox import Sandbox, create_state_table
from tests.moto_state import new_deployment_per_update

TABLE = "ecspilot-e2e"


class World:
    """A local AWS with the sandbox, a call recorder and the handlers' runtime."""

    def __init__(self, endpoint: str, tmp: Path) -> None:
        self.endpoint = endpoint
        self.tmp = tmp
        self.recorder = CallRecorder()
        session = boto3.Session()
        self.recorder.attach(session)
        self.clients = Clients(session=session)
        self.sandbox = Sandbox(self.clients)
        create_state_table(self.clients, TABLE)

    def configure(self, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Runtime:
        """Write the config file and point the handlers' environment at it, as Lambda would."""
        path = self.tmp / "ecspilot.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        monkeypatch.setenv("ECSPILOT_CONFIG", str(path))
        monkeypatch.setenv("ECSPILOT_TABLE", TABLE)
        rt = Runtime.build(clients=self.clients)
        runtime.reset(rt)
        return rt


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with local_aws() as endpoint, new_deployment_per_update():
        # moto's state lives in this process, shared by every server it starts: start clean
        moto_api(endpoint, "reset", {})
        yield World(endpoint, tmp_path)
        moto_api(endpoint, "state-manager/unset-transition", {"model_name": "ecs::task"})
