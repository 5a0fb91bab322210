"""Deploy fan-out: one image push mapped to N services across two clusters.

Prints, per N, the AWS API calls and the wall time of the real deploy_on_push
handler against moto's server on loopback, beside the floor of calls a deploy
of N services cannot go below: N UpdateService + ceil(N/10) DescribeServices per
cluster + 1 DescribeTaskDefinition + 1 RegisterTaskDefinition + ceil(N/25) history writes.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import yaml

from ecspilot import runtime
from ecspilot.aws import Clients
from ecspilot.local import CallRecorder, invoke, local_aws
from ecspilot.runtime import Runtime
from ecspilot.sandbox import Sandbox, create_state_table

CLUSTERS = ("bench-alpha", "bench-omega")  # unrelated names: moto matches clusters by substring
SIZES = (1, 10, 50)
REPEATS = 5


def floor_calls(n: int) -> int:
    per_cluster = [
        math.ceil(n / len(CLUSTERS)) if i == 0 else n // len(CLUSTERS) for i in range(len(CLUSTERS))
    ]
    describe = sum(math.ceil(k / 10) for k in per_cluster if k)
    return n + describe + 1 + 1 + math.ceil(n / 25)


def run_size(n: int, tmp: Path) -> dict[str, Any]:
    recorder = CallRecorder()
    session = boto3.Session()
    recorder.attach(session)
    clients = Clients(session=session)
    sb = Sandbox(clients)
    table = f"bench-{n}"
    create_state_table(clients, table)
    repo = f"bench-web-{n}"
    sb.repository(repo)  # a repository per size, so each run starts from v0
    td = sb.task_definition(f"bench-{n}", {"app": sb.image(repo, "v0")})
    services = []
    for i in range(n):
        cluster = CLUSTERS[i % len(CLUSTERS)]
        name = f"svc-{n}-{i:03d}"
        sb.service(cluster, name, td)
        services.append({"name": name, "cluster": cluster, "containers": {"app": {"repository": repo}}})
    config_path = tmp / f"bench-{n}.yaml"
    config_path.write_text(yaml.safe_dump({"version": 1, "services": services}), encoding="utf-8")
    walls, calls = [], []
    for r in range(REPEATS):
        event = sb.push(repo, f"v{r + 1}")
        rt = Runtime.build(
            settings=runtime.Settings(config_path=str(config_path), table_name=table), clients=clients
        )
        runtime.reset(rt)
        recorder.reset()
        t0 = time.perf_counter()
        result = invoke("deploy_on_push", event)
        walls.append(time.perf_counter() - t0)
        calls.append(len(recorder.calls))
        assert sum(s["outcome"] == "deployed" for s in result["services"]) == n, result
    return {
        "n": n,
        "calls": statistics.median(calls),
        "floor": floor_calls(n),
        "wall": statistics.median(walls),
        "ops": dict.fromkeys(recorder.ops()),
    }


def main() -> list[dict[str, Any]]:
    print("## Deploy fan-out: one push -> N services over 2 clusters (moto server, loopback)")
    print(f"median of {REPEATS} pushes per N\n")
    print("| N services | API calls | floor | calls/floor | wall s | s per service |")
    print("| --- | --- | --- | --- | --- | --- |")
    rows = []
    with local_aws(), tempfile.TemporaryDirectory() as tmp:
        setup = Sandbox(Clients())
        for cluster in CLUSTERS:
            setup.cluster(cluster)
        for n in SIZES:
            row = run_size(n, Path(tmp))
            rows.append(row)
            print(
                f"| {n} | {row['calls']:.0f} | {row['floor']} | {row['calls'] / row['floor']:.2f} | "
                f"{row['wall']:.3f} | {row['wall'] / n:.4f} |"
            )
    return rows


if __name__ == "__main__":
    main()
