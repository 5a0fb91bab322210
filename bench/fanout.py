"""Deploy fan-out: one image push mapped to N services across two clusters, ecspilot vs the peer CLI.

For each N, against one moto server process on loopback:

- ecspilot: the real ``deploy_on_push`` handler, warm (in this process, runtime
  built, as a warm Lambda) and in a fresh process (interpreter start, imports,
  config and clients included: the fair match for one CLI run);
- the peer: ``ecs deploy CLUSTER SERVICE -i app IMAGE --timeout -1 --no-deregister`` once per
  service (N processes, one after the other, as a CI script would run them); it deregisters the
  previous revision by default, work ecspilot does not do, so that is switched off;
- the floor no deploy of N services can go below: N UpdateService +
  ceil(n/10) DescribeServices per cluster + 1 DescribeTaskDefinition +
  1 RegisterTaskDefinition + ceil(N/100) history writes (the records: TransactWriteItems of
  upserts, one item per ECS deployment id). What ecspilot adds above it is what its guarantees
  cost: the state items read for held digests and after UpdateService (BatchGetItem), the
  claims (TransactWriteItems) and the push times of the stale guard (DescribeImages).

Calls are the requests moto's recorder saw during the measured run (setup calls
are left out by their User-Agent marker), so both tools are counted the same way.
Each tool has its own services and its own shared task definition, so both start
from the same shape: N services on one task definition family.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import yaml

from bench import peer
from bench.harness import Runs
from bench.server import MotoServer, moto_server
from ecspilot.aws.clients import Clients
from ecspilot.aws.limiter import Buckets
from ecspilot.interfaces import runtime
from ecspilot.interfaces.runtime import Runtime
from ecspilot_dev.local import CallRecorder, invoke
from ecspilot_dev.sandbox import Sandbox, create_state_table

CLUSTERS = ("bench-alpha", "bench-omega")  # unrelated names: moto matches clusters by substring
SIZES = (1, 10, 50)
WARM_REPEATS = 5  # ecspilot, warm handler
FRESH_REPEATS = 3  # ecspilot, fresh process per push
PEER_REPEATS = {1: 5, 10: 3, 50: 3}  # peer: N processes per repeat, so fewer repeats at large N
CONTAINER = "app"
HISTORY_BATCH = 100  # TransactWriteItems: 100 actions per call

# One push in a fresh interpreter: what a cold Lambda does, minus the Lambda runtime itself.
FRESH_SCRIPT = (
    "import json, sys\n"
    "from ecspilot_dev.local import invoke\n"
    "result = invoke('deploy_on_push', json.load(open(sys.argv[1], encoding='utf-8')))\n"
    "print(json.dumps({'deployed': sum(s['outcome'] == 'deployed' for s in result['services'])}))\n"
)


def per_cluster(n: int) -> list[int]:
    """How N services are spread over the clusters (round robin)."""
    return [len(range(i, n, len(CLUSTERS))) for i in range(len(CLUSTERS))]


def floor_calls(n: int) -> int:
    describe = sum(math.ceil(k / 10) for k in per_cluster(n) if k)
    return n + describe + 1 + 1 + math.ceil(n / HISTORY_BATCH)


@dataclass
class World:
    """The resources of one N: a repository, and per tool its services on one task definition."""

    n: int
    repo: str
    table: str
    config_path: Path
    pilot: list[tuple[str, str]]  # (cluster, service)
    peers: list[tuple[str, str]]


def build_world(sb: Sandbox, n: int, tmp: Path) -> World:
    repo = f"bench-web-{n}"
    sb.repository(repo)
    table = f"bench-state-{n}"
    create_state_table(sb.clients, table)
    worlds: dict[str, list[tuple[str, str]]] = {}
    for tool in ("pilot", "peer"):
        td = sb.task_definition(f"{tool}-{n}", {CONTAINER: sb.image(repo, "v0"), "sidecar": "busybox:1"})
        worlds[tool] = []
        for i in range(n):
            cluster, name = CLUSTERS[i % len(CLUSTERS)], f"{tool}-{n}-{i:03d}"
            sb.service(cluster, name, td)
            worlds[tool].append((cluster, name))
    services = [
        {"name": name, "cluster": cluster, "containers": {CONTAINER: {"repository": repo}}}
        for cluster, name in worlds["pilot"]
    ]
    config_path = tmp / f"ecspilot-{n}.yaml"
    config_path.write_text(yaml.safe_dump({"version": 1, "services": services}), encoding="utf-8")
    return World(n, repo, table, config_path, worlds["pilot"], worlds["peer"])


def run_warm(server: MotoServer, sb: Sandbox, world: World) -> tuple[Runs, int]:
    """ecspilot's handler in this process, runtime already built (a warm Lambda)."""
    recorder = CallRecorder()
    session = boto3.Session()
    recorder.attach(session)
    settings = runtime.Settings.from_env(config_path=str(world.config_path), table_name=world.table)
    clients = Clients(session=session)
    runtime.reset(Runtime.build(settings=settings, clients=clients))
    measure = Runs()
    client_calls = 0
    for r in range(WARM_REPEATS):
        event = sb.push(world.repo, f"w{r}")
        # Pushes minutes apart, as releases come: ECS's buckets are full again at each (UpdateService
        # refills its burst of 50 in 10 s). Back to back, the warm process's limiter would rightly
        # pace pushes 2-5 at 5 UpdateService a second (that pacing is `python -m bench paced`'s).
        clients.limiter.buckets = Buckets()
        recorder.reset()
        with server.recording() as ops:
            t0 = time.perf_counter()
            result = invoke("deploy_on_push", event)
            wall = time.perf_counter() - t0
        deployed = sum(s["outcome"] == "deployed" for s in result["services"])
        if deployed != world.n:
            raise RuntimeError(f"ecspilot deployed {deployed} of {world.n}: {result}")
        measure.add(wall, ops)
        client_calls = len(recorder.calls)
    runtime.reset()
    return measure, client_calls


def run_fresh(server: MotoServer, sb: Sandbox, world: World, tmp: Path) -> Runs:
    """ecspilot's handler in a fresh interpreter per push: start-up, imports, config, clients."""
    env = server.env(
        ECSPILOT_CONFIG=str(world.config_path),
        ECSPILOT_TABLE=world.table,
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    measure = Runs()
    for r in range(FRESH_REPEATS):
        event_path = tmp / f"event-{world.n}-{r}.json"
        event_path.write_text(json.dumps(sb.push(world.repo, f"f{r}")), encoding="utf-8")
        with server.recording() as ops:
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", FRESH_SCRIPT, str(event_path)],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            wall = time.perf_counter() - t0
        if proc.returncode != 0 or json.loads(proc.stdout.splitlines()[-1])["deployed"] != world.n:
            raise RuntimeError(f"fresh ecspilot run failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        measure.add(wall, ops)
    return measure


def run_peer(server: MotoServer, sb: Sandbox, world: World, ecs: Path) -> tuple[Runs, str]:
    """``ecs deploy`` once per service, one process after the other; returns the last image deployed."""
    env = server.env()
    measure = Runs()
    image = ""
    for r in range(PEER_REPEATS[world.n]):
        image = sb.image(world.repo, f"p{r}")
        with server.recording() as ops:
            t0 = time.perf_counter()
            runs = [peer.deploy(ecs, cluster, name, CONTAINER, image, env) for cluster, name in world.peers]
            wall = time.perf_counter() - t0
        failed = [run for run in runs if run.returncode != 0]
        if failed:
            raise RuntimeError(f"ecs deploy failed {len(failed)}x: {failed[0].output[-500:]}")
        measure.add(wall, ops)
    return measure, image


def check_peer_result(sb: Sandbox, world: World, image: str) -> None:
    """Every peer service points at a task definition whose app container runs ``image``."""
    ecs = sb.clients.ecs
    for cluster in CLUSTERS:
        names = [name for c, name in world.peers if c == cluster]
        for i in range(0, len(names), 10):
            for svc in ecs.describe_services(cluster=cluster, services=names[i : i + 10])["services"]:
                td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
                got = {c["name"]: c["image"] for c in td["containerDefinitions"]}[CONTAINER]
                if got != image:
                    raise RuntimeError(f"{svc['serviceName']} runs {got}, expected {image}")


def main() -> list[dict[str, Any]]:
    ecs = peer.ensure_peer()
    rows: list[dict[str, Any]] = []
    with moto_server() as server, tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        sb = Sandbox(server.setup_clients())
        for cluster in CLUSTERS:
            sb.cluster(cluster)
        for n in SIZES:
            world = build_world(sb, n, tmp)
            warm, client_calls = run_warm(server, sb, world)
            fresh = run_fresh(server, sb, world, tmp)
            peer_measure, image = run_peer(server, sb, world, ecs)
            check_peer_result(sb, world, image)
            rows.append(
                {
                    "n": n,
                    "floor": floor_calls(n),
                    "warm": warm,
                    "fresh": fresh,
                    "peer": peer_measure,
                    "client_calls": client_calls,
                }
            )
        print_tables(rows, peer.version(ecs))
    return rows


def headline(rows: list[dict[str, Any]]) -> str:
    """Peer wall time over ecspilot's, warm AND fresh process, at the smallest and largest N: a fresh
    process is the fair match for one CLI run, and at N = 1 it is where the peer fares best."""
    parts = []
    for row in (rows[0], rows[-1]) if len(rows) > 1 else rows:
        warm, fresh, peer_m = row["warm"], row["fresh"], row["peer"]
        parts.append(
            f"N = {row['n']}: peer {peer_m.wall:.2f} s vs ecspilot {warm.wall:.3f} s warm "
            f"({peer_m.wall / warm.wall:.1f}x) and {fresh.wall:.3f} s in a fresh process "
            f"({peer_m.wall / fresh.wall:.1f}x)"
        )
    return "Headline: " + "; ".join(parts) + "."


def print_tables(rows: list[dict[str, Any]], peer_version: str) -> None:
    print("## Deploy fan-out: one push -> N services over 2 clusters, ecspilot vs `ecs deploy`")
    print(
        f"moto server (own process, loopback); peer: {peer_version}, `ecs deploy CLUSTER SERVICE -i app IMAGE "
        f"{' '.join(peer.DEPLOY_FLAGS)}` once per service; medians of {WARM_REPEATS} warm / {FRESH_REPEATS} fresh-process "
        f"ecspilot pushes and {'/'.join(str(PEER_REPEATS[n]) for n in SIZES)} peer rounds "
        f"(N = {'/'.join(str(n) for n in SIZES)}); calls = requests seen by moto's recorder\n"
    )
    print(headline(rows) + "\n")
    print(
        "| N | floor | ecspilot calls | calls/floor | peer calls | peer/floor "
        "| ecspilot wall s (warm) | ecspilot wall s (fresh process) | peer wall s (N runs) "
        "| peer/ecspilot wall (warm) | peer/ecspilot wall (fresh) |"
    )
    print("| " + " | ".join(["---"] * 11) + " |")
    for row in rows:
        warm, fresh, peer_m, fl = row["warm"], row["fresh"], row["peer"], row["floor"]
        print(
            f"| {row['n']} | {fl} | {warm.call_count:.0f} | {warm.call_count / fl:.2f} "
            f"| {peer_m.call_count:.0f} | {peer_m.call_count / fl:.2f} "
            f"| {warm.wall:.3f} | {fresh.wall:.3f} | {peer_m.wall:.2f} "
            f"| {peer_m.wall / warm.wall:.1f}x | {peer_m.wall / fresh.wall:.1f}x |"
        )
    last = rows[-1]
    print(f"\nRequests by operation at N = {last['n']} (one run each):\n")
    print("| operation | floor | ecspilot (warm) | ecspilot (fresh) | peer |")
    print("| --- | --- | --- | --- | --- |")
    floor_ops = floor_by_operation(last["n"])
    names = sorted(set(floor_ops) | set(last["warm"].ops) | set(last["fresh"].ops) | set(last["peer"].ops))
    for op in names:
        print(
            f"| {op} | {floor_ops.get(op, 0)} | {last['warm'].ops.get(op, 0)} "
            f"| {last['fresh'].ops.get(op, 0)} | {last['peer'].ops.get(op, 0)} |"
        )
    mismatched = [r["n"] for r in rows if r["client_calls"] != sum(r["warm"].ops.values())]
    if mismatched:
        print(f"\nnote: client-side call count differs from the server's at N = {mismatched} (retries)")
    print()


def floor_by_operation(n: int) -> dict[str, int]:
    return {
        "UpdateService": n,
        "DescribeServices": sum(math.ceil(k / 10) for k in per_cluster(n) if k),
        "DescribeTaskDefinition": 1,
        "RegisterTaskDefinition": 1,
        "TransactWriteItems": math.ceil(n / HISTORY_BATCH),
    }


if __name__ == "__main__":
    main()
