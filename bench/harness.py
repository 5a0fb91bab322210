"""What the benchmarks share: a warm ecspilot handler, repeated measurements, loud checks.

- :class:`Pilot` runs a real handler in this process with its runtime built once
  and its clients created (a warm Lambda), counting the client-side calls with
  :class:`ecspilot_dev.local.CallRecorder` beside the server-side count;
- :class:`Runs` keeps the wall times and request counts of repeated runs;
- :func:`check` fails a benchmark loudly when a *correctness* expectation breaks
  (never on speed).
"""

from __future__ import annotations

import collections
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml

from bench.server import MotoServer
from ecspilot.aws.clients import Clients
from ecspilot.interfaces import runtime
from ecspilot.interfaces.runtime import Runtime
from ecspilot.obs import metrics
from ecspilot_dev.local import CallRecorder, invoke

READS = ("Describe", "List", "Get", "Query", "Scan", "BatchGet", "Receive")


def is_write(op: str) -> bool:
    return not op.startswith(READS)


def writes(ops: collections.Counter[str]) -> int:
    return sum(n for op, n in ops.items() if is_write(op))


@dataclass
class Runs:
    """Repeated runs of one tool in one situation: wall seconds and requests per run."""

    walls: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    ops: collections.Counter[str] = field(default_factory=collections.Counter)  # of the last run
    client_mismatch: int = 0  # runs where the client saw fewer calls than the server (retries)

    def add(self, wall: float, ops: collections.Counter[str], client_calls: int | None = None) -> None:
        self.walls.append(wall)
        self.calls.append(sum(ops.values()))
        self.ops = ops
        if client_calls is not None and client_calls != sum(ops.values()):
            self.client_mismatch += 1

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def call_count(self) -> float:
        return statistics.median(self.calls)

    @property
    def writes(self) -> int:
        return writes(self.ops)


class Pilot:
    """An ecspilot handler in this process, its runtime built once (a warm Lambda)."""

    def __init__(
        self,
        handler: str,
        config: dict[str, Any],
        tmp: Path,
        clients: tuple[str, ...] = ("ecs", "ecr", "dynamodb", "scheduler"),
        **settings: Any,
    ) -> None:
        self.handler = handler
        path = tmp / f"ecspilot-{handler}.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.recorder = CallRecorder()
        session = boto3.Session()
        self.recorder.attach(session)
        built = runtime.Settings.from_env(config_path=str(path), **settings)
        self.rt = Runtime.build(settings=built, clients=Clients(session=session))
        for name in clients:
            self.rt.clients.get(name)  # create the clients now: a warm Lambda has them

    def invoke(self, server: MotoServer, runs: Runs, event: Any) -> dict[str, Any]:
        """One invocation, recorded into ``runs``; returns the handler's answer."""
        runtime.reset(self.rt)
        self.recorder.reset()
        try:
            with server.recording() as ops:
                t0 = time.perf_counter()
                result: dict[str, Any] = invoke(self.handler, event)
                wall = time.perf_counter() - t0
        finally:
            runtime.reset()
            # with POWERTOOLS_METRICS_DISABLED, Powertools never clears its metric set, and prints it
            # (disabled or not) once a metric holds 100 values: clear it, as a flush would in Lambda
            metrics.clear_metrics()
        runs.add(wall, ops, len(self.recorder.calls))
        return result


def timed(server: MotoServer, runs: Runs, fn: Callable[[], None]) -> None:
    """Run ``fn`` (a baseline), recorded into ``runs``."""
    with server.recording() as ops:
        t0 = time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
    runs.add(wall, ops)


def check(condition: bool, message: str) -> None:
    """Fail loudly when a correctness expectation breaks (never used for speed)."""
    if not condition:
        raise RuntimeError(f"benchmark check failed: {message}")


def queue_world(
    server: MotoServer, cluster: str, family: str, table: str, queue_name: str = "ecspilot-jobs"
) -> tuple[Any, str, str]:
    """A clean moto with tasks frozen in their status (moto moves a task one status towards
    STOPPED on every DescribeTasks), one cluster with instances, the job's task definition, the
    state table and the jobs queue with its DLQ: the world of the queue benchmarks."""
    from ecspilot_dev.local import moto_api  # noqa: PLC0415
    from ecspilot_dev.sandbox import Sandbox, create_jobs_queue, create_state_table  # noqa: PLC0415

    server.reset()
    moto_api(
        server.endpoint,
        "state-manager/set-transition",
        {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}},
    )
    clients = server.setup_clients()
    sb = Sandbox(clients)
    sb.cluster(cluster, instances_per_zone=1)
    sb.task_definition(family, {"app": sb.image("render", "v1")})
    create_state_table(clients, table)
    queue_url, dlq_url = create_jobs_queue(clients, name=queue_name)
    return sb, queue_url, dlq_url
