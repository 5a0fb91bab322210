"""moto's server in its own process on loopback, with its request recorder.

Every tool under measurement (ecspilot's handler in this process or a fresh
one, the peer CLI in its own processes) talks to the same server over HTTP, and
the server's recorder counts what each sent: the fair count for a tool we do
not control. Setup calls carry :data:`SETUP_MARKER` in their User-Agent and
are left out of the counts.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import botocore.session
from botocore.config import Config

from ecspilot.aws.clients import Clients
from ecspilot_dev.local import LOCAL_AWS_ENV, free_port, moto_api, pointed_at

SETUP_MARKER = "bench-setup"


class MotoServer:
    """A running ``moto_server`` process: endpoint, environment and recorder."""

    def __init__(self, endpoint: str, process: subprocess.Popen[bytes], workdir: Path) -> None:
        self.endpoint = endpoint
        self.process = process
        self.workdir = workdir

    def env(self, **extra: str) -> dict[str, str]:
        """The environment a child process needs to talk to this server (fake credentials)."""
        env = {k: v for k, v in os.environ.items() if k != "AWS_PROFILE"}
        env.update(LOCAL_AWS_ENV)
        env["AWS_ENDPOINT_URL"] = self.endpoint
        env.update(extra)
        return env

    def setup_clients(self) -> Clients:
        """Clients for building the world; their calls are never counted."""
        config = Config(user_agent_extra=SETUP_MARKER, retries={"mode": "standard"})
        session = boto3.Session(region_name=LOCAL_AWS_ENV["AWS_REGION"])
        names = ("ecs", "ecr", "dynamodb", "ec2", "scheduler", "sqs")
        overrides = {name: session.client(name, config=config) for name in names}  # type: ignore[call-overload]
        return Clients(session=session, overrides=overrides)

    def reset(self) -> None:
        """Forget every resource (moto's ``/moto-api/reset``): the next world starts empty."""
        moto_api(self.endpoint, "reset", {})

    @contextlib.contextmanager
    def recording(self) -> Iterator[collections.Counter[str]]:
        """Record the requests sent inside the block; the Counter (operation -> requests) fills on exit."""
        ops: collections.Counter[str] = collections.Counter()
        moto_api(self.endpoint, "recorder/reset-recording", {})
        moto_api(self.endpoint, "recorder/start-recording", {})
        try:
            yield ops
        finally:
            moto_api(self.endpoint, "recorder/stop-recording", {})
            ops.update(count_operations(moto_api(self.endpoint, "recorder/download-recording")))


def count_operations(recording: str) -> collections.Counter[str]:
    """Requests per operation in a recorder download, setup calls left out.

    JSON protocols (ECS, ECR, DynamoDB, SQS) name the operation in ``X-Amz-Target``;
    REST protocols (EventBridge Scheduler) are matched to the operation by method and
    path (:func:`rest_operation`); anything else is counted by method and path.
    """
    ops: collections.Counter[str] = collections.Counter()
    for line in recording.splitlines():
        if not line.strip():
            continue
        entry: dict[str, Any] = json.loads(line)
        headers = {k.lower(): v for k, v in entry["headers"].items()}
        if SETUP_MARKER in headers.get("user-agent", ""):
            continue
        target = headers.get("x-amz-target")
        if target:
            ops[target.rsplit(".", 1)[-1]] += 1
            continue
        path = urllib.parse.urlsplit(entry["url"]).path
        scope = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", headers.get("authorization", ""))
        ops[
            rest_operation(scope.group(1), entry["method"], path) if scope else f"{entry['method']} {path}"
        ] += 1
    return ops


@functools.cache
def _rest_routes(service: str) -> list[tuple[str, re.Pattern[str], str]]:
    """(method, path pattern, operation) for each operation of a REST service, from botocore's model."""
    model = botocore.session.get_session().get_service_model(service)
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        uri = http.get("requestUri", "/").split("?", 1)[0]
        pattern = re.sub(r"\\\{[^}]+\\\+\\\}", ".+", re.escape(uri))  # {Key+}: a greedy label
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern)  # {Name}: one path segment
        routes.append((http.get("method", "GET"), re.compile(pattern.rstrip("/") + "/?"), name))
    return routes


def rest_operation(service: str, method: str, path: str) -> str:
    """The operation a REST request calls (its service named by the request's credential scope)."""
    try:
        routes = _rest_routes(service)
    except botocore.exceptions.UnknownServiceError:
        return f"{method} {path}"
    matches = [name for m, pattern, name in routes if m == method and pattern.fullmatch(path)]
    return matches[0] if len(matches) == 1 else f"{method} {path}"


@contextlib.contextmanager
def moto_server() -> Iterator[MotoServer]:
    """Start ``moto_server`` (this interpreter's) on a free loopback port; point boto3 at it.

    The environment of this process is pointed at the server for the block and
    restored afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="ecspilot-bench-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        env = dict(os.environ, MOTO_RECORDER_FILEPATH=str(workdir / "recording.jsonl"))
        log = (workdir / "moto_server.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_up(endpoint, process)
            with pointed_at(endpoint):
                yield MotoServer(endpoint, process, workdir)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # a server still busy answering: its figures are taken
                process.kill()
                process.wait(timeout=10)
            log.close()


def _wait_until_up(endpoint: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode}")
        with contextlib.suppress(urllib.error.URLError, ConnectionError):
            moto_api(endpoint, "")
            return
        time.sleep(0.1)
    raise RuntimeError(f"moto_server did not answer on {endpoint} within {timeout} s")
