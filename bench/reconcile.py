"""Reconcile at scale: daemons on 50 clusters, and catch-up over 50 services, first and in-sync runs.

Two scenarios, each against one moto server process on loopback, through the
real ``reconcile`` handler (in this process, runtime built: a warm Lambda). Every
reconcile runs all its parts (daemons, schedules, catch-up), so the counts are
the whole handler's; the schedules part costs one ``ListSchedules`` (no jobs).

**Daemons** (issue 7, part 4): 50 clusters x 3 daemons (one with a placement
constraint), each daemon on its own task definition family.

- the first run creates the 150 DAEMON services; the second finds them in sync
  and must make no write call (checked: the benchmark fails loudly otherwise);
- baseline, measured in the same run on an identical fresh world: the naive
  per-item script a user would write (:func:`naive_daemons`): for each cluster,
  for each daemon, one ``DescribeTaskDefinition`` of the family, one
  ``DescribeServices`` of that one service, then create or update, one call at a time;
- floor: what any reconciler must send: 1 ``DescribeTaskDefinition`` per daemon,
  1 ``DescribeServices`` per cluster (3 names fit in one call), plus 150
  ``CreateService`` on the first run.

The first run needs an empty world, so each repeat resets moto (``/moto-api/reset``)
and rebuilds it; the in-sync run repeats on the world the first run left.

**Catch-up** (issue 8): 50 services over 2 clusters, each on its own task definition
family, following 1, 5 or 50 ECR repositories (50, 10 or 1 services each). Each
repeat pushes a new tag to every repository *without* its push event (a missed
push), then runs reconcile twice:

- the missed-push run must deploy all 50 services (checked), pinned by digest;
- the in-sync run must make no write call (checked), and is compared with what
  issue 8 expects: 1 ``DescribeImages`` per repository + ``DescribeServices`` in
  batches of 10 (per cluster, per repository: catch-up deploys one image at a time)
  + 1 ``DescribeTaskDefinition`` per distinct task definition (+ the schedules
  part's ``ListSchedules``).

Calls are the requests moto's recorder saw (setup calls are left out by their
User-Agent marker); ecspilot's client-side count (:class:`CallRecorder`) is
compared with it, so a retry would show. Wall times are medians; moto answers in
about a millisecond, so they measure round trips and ecspilot's own overhead.
"""

from __future__ import annotations

import collections
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from bench.harness import Pilot, Runs, check, timed
from bench.server import MotoServer, moto_server
from ecspilot_dev.sandbox import Sandbox, create_state_table, fake_digest

# --- daemons ---------------------------------------------------------------------------------
N_CLUSTERS = 50
# fixed-width names: moto matches clusters by substring, so no name may contain another
DAEMON_CLUSTERS = tuple(f"fleet-{i:02d}" for i in range(N_CLUSTERS))
LINUX = "attribute:ecs.os-type == linux"
# (daemon name = service name, task definition family, placement constraints)
DAEMONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("log-agent", "bench-log-agent", (LINUX,)),
    ("metrics-agent", "bench-metrics-agent", ()),
    ("node-exporter", "bench-node-exporter", ()),
)
FIRST_REPEATS = 3  # each on a freshly reset world
INSYNC_REPEATS = 5  # on the world the first run left

# --- catch-up --------------------------------------------------------------------------------
N_SERVICES = 50
CATCHUP_CLUSTERS = ("catchup-alpha", "catchup-omega")
REPOSITORY_SHAPES = (1, 5, 50)  # repositories the 50 services follow
CATCHUP_REPEATS = 3
DESCRIBE_SERVICES_BATCH = 10
TABLE = "bench-reconcile-state"
SCHEDULE_GROUP = "ecspilot"


def summary(result: dict[str, Any], kind: str) -> dict[str, int]:
    out: dict[str, int] = collections.Counter()
    for action in result["actions"]:
        if action["kind"] == kind:
            out[action["change"]] += 1
    return dict(out)


# --- daemons ---------------------------------------------------------------------------------


def daemon_config() -> dict[str, Any]:
    return {
        "version": 1,
        "daemons": [
            {
                "name": name,
                "clusters": list(DAEMON_CLUSTERS),
                "task_definition": family,
                "placement_constraints": list(constraints),
            }
            for name, family, constraints in DAEMONS
        ],
    }


def build_daemon_world(server: MotoServer) -> None:
    """An empty moto, then 50 clusters, one task definition per daemon, ecspilot's schedule group."""
    server.reset()
    clients = server.setup_clients()
    sb = Sandbox(clients)
    for cluster in DAEMON_CLUSTERS:
        sb.cluster(cluster)
    for name, family, _ in DAEMONS:
        sb.task_definition(family, {name: f"public.ecr.aws/bench/{name}:1"})
    clients.scheduler.create_schedule_group(Name=SCHEDULE_GROUP)


def naive_daemons(ecs: Any) -> None:
    """The baseline: the per-item loop a user would write, one call at a time.

    For each cluster and daemon: resolve the family, describe that one service,
    create it when missing (or INACTIVE), update it when its task definition moved.
    """
    for cluster in DAEMON_CLUSTERS:
        for name, family, constraints in DAEMONS:
            arn = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["taskDefinitionArn"]
            found = ecs.describe_services(cluster=cluster, services=[name])["services"]
            svc = found[0] if found else None
            if svc is None or svc["status"] == "INACTIVE":
                ecs.create_service(
                    cluster=cluster,
                    serviceName=name,
                    taskDefinition=arn,
                    schedulingStrategy="DAEMON",
                    launchType="EC2",
                    placementConstraints=[{"type": "memberOf", "expression": c} for c in constraints],
                )
            elif svc["taskDefinition"] != arn:
                ecs.update_service(cluster=cluster, service=name, taskDefinition=arn)


def daemon_services(server: MotoServer) -> int:
    """How many DAEMON services of the configured names exist (the first run's result)."""
    ecs = server.setup_clients().ecs
    names = [name for name, _, _ in DAEMONS]
    found = 0
    for cluster in DAEMON_CLUSTERS:
        services = ecs.describe_services(cluster=cluster, services=names)["services"]
        found += sum(1 for s in services if s["status"] == "ACTIVE" and s["schedulingStrategy"] == "DAEMON")
    return found


def daemon_floor(first: bool) -> dict[str, int]:
    per_cluster = math.ceil(len(DAEMONS) / DESCRIBE_SERVICES_BATCH)
    floor = {"DescribeTaskDefinition": len(DAEMONS), "DescribeServices": N_CLUSTERS * per_cluster}
    if first:
        floor["CreateService"] = N_CLUSTERS * len(DAEMONS)
    return floor


def run_daemons(server: MotoServer, tmp: Path) -> dict[str, Runs]:
    pilot = Pilot("reconcile", daemon_config(), tmp, schedule_group=SCHEDULE_GROUP)
    naive_session = boto3.Session()
    naive_ecs = naive_session.client("ecs")
    runs = {key: Runs() for key in ("pilot-first", "pilot-insync", "naive-first", "naive-insync")}
    expected = N_CLUSTERS * len(DAEMONS)
    for r in range(FIRST_REPEATS):
        # ecspilot: a fresh world, the first run (creates), then the in-sync runs
        build_daemon_world(server)
        result = pilot.invoke(server, runs["pilot-first"], {})
        check(summary(result, "daemon") == {"create": expected}, f"first run: {result['summary']}")
        check(daemon_services(server) == expected, "first run did not leave 150 DAEMON services")
        for _ in range(INSYNC_REPEATS if r == 0 else 1):
            result = pilot.invoke(server, runs["pilot-insync"], {})
            check(summary(result, "daemon") == {"in-sync": expected}, f"second run: {result['summary']}")
            check(
                runs["pilot-insync"].writes == 0,
                f"the in-sync run made write calls: {dict(runs['pilot-insync'].ops)}",
            )
        # the naive baseline: the same fresh world, the same two runs
        build_daemon_world(server)
        timed(server, runs["naive-first"], lambda: naive_daemons(naive_ecs))
        check(daemon_services(server) == expected, "the naive baseline did not create 150 services")
        for _ in range(INSYNC_REPEATS if r == 0 else 1):
            timed(server, runs["naive-insync"], lambda: naive_daemons(naive_ecs))
            check(runs["naive-insync"].writes == 0, "the naive in-sync run wrote")
    return runs


def print_daemons(runs: dict[str, Runs]) -> None:
    n_insync = len(runs["pilot-insync"].walls)
    print(f"## Reconcile at scale: {N_CLUSTERS} clusters x {len(DAEMONS)} daemons, first and in-sync run")
    print(
        "moto server (own process, loopback); the real `reconcile` handler, warm; baseline: the naive "
        "per-item loop (DescribeTaskDefinition + DescribeServices per daemon per cluster, then create/update, "
        f"sequential) on an identical fresh world; medians of {len(runs['pilot-first'].walls)} first runs "
        f"(moto reset before each) and {n_insync} in-sync runs; calls = requests seen by moto's recorder\n"
    )
    print(
        "| run | floor | ecspilot calls | ecspilot writes | ecspilot wall s "
        "| naive calls | naive writes | naive wall s | naive/ecspilot calls | naive/ecspilot wall |"
    )
    print("| " + " | ".join(["---"] * 10) + " |")
    for label, key, first in (
        ("first (creates 150)", "first", True),
        ("second (in sync)", "insync", False),
    ):
        p, n = runs[f"pilot-{key}"], runs[f"naive-{key}"]
        print(
            f"| {label} | {sum(daemon_floor(first).values())} | {p.call_count:.0f} | {p.writes} "
            f"| {p.wall:.3f} | {n.call_count:.0f} | {n.writes} | {n.wall:.3f} "
            f"| {n.call_count / p.call_count:.1f}x | {n.wall / p.wall:.1f}x |"
        )
    print("\nRequests by operation (one run each):\n")
    print(
        "| operation | floor (first) | ecspilot first | naive first | floor (in sync) "
        "| ecspilot in sync | naive in sync |"
    )
    print("| " + " | ".join(["---"] * 7) + " |")
    f1, f2 = daemon_floor(True), daemon_floor(False)
    keys = ("pilot-first", "naive-first", "pilot-insync", "naive-insync")
    names = sorted(set(f1) | {op for k in keys for op in runs[k].ops})
    for op in names:
        print(
            f"| {op} | {f1.get(op, 0)} | {runs['pilot-first'].ops.get(op, 0)} | {runs['naive-first'].ops.get(op, 0)} "
            f"| {f2.get(op, 0)} | {runs['pilot-insync'].ops.get(op, 0)} | {runs['naive-insync'].ops.get(op, 0)} |"
        )
    print(
        f"\nChecked: every first run left {N_CLUSTERS * len(DAEMONS)} ACTIVE DAEMON services; every in-sync "
        f"run ({n_insync}) reported {N_CLUSTERS * len(DAEMONS)} in-sync actions and made **no write call**."
    )
    mismatch = sum(runs[k].client_mismatch for k in ("pilot-first", "pilot-insync"))
    if mismatch:
        print(
            f"note: ecspilot's client-side call count differed from the server's in {mismatch} run(s) (retries)"
        )
    print()


# --- catch-up --------------------------------------------------------------------------------


@dataclass
class CatchUpWorld:
    repositories: list[str]
    services: list[tuple[str, str, str]]  # (cluster, service, repository)


def build_catchup_world(server: MotoServer, n_repos: int) -> tuple[CatchUpWorld, Sandbox]:
    """50 services over 2 clusters, each on its own family, running ``v0`` of its repository by digest."""
    server.reset()
    clients = server.setup_clients()
    sb = Sandbox(clients)
    for cluster in CATCHUP_CLUSTERS:
        sb.cluster(cluster)
    create_state_table(clients, TABLE)
    clients.scheduler.create_schedule_group(Name=SCHEDULE_GROUP)
    repositories = [f"app-{i:02d}" for i in range(n_repos)]
    for repo in repositories:
        sb.repository(repo)
        sb.push(repo, "v0")
    per_repo = N_SERVICES // n_repos
    services = []
    for i in range(N_SERVICES):
        repo = repositories[i // per_repo]
        cluster, name = CATCHUP_CLUSTERS[i % len(CATCHUP_CLUSTERS)], f"svc-{i:02d}"
        image = f"{sb.registry}/{repo}@{fake_digest(f'{repo}:v0')}"  # pinned, as ecspilot leaves it
        sb.service(cluster, name, sb.task_definition(name, {"app": image, "sidecar": "busybox:1"}))
        services.append((cluster, name, repo))
    return CatchUpWorld(repositories, services), sb


def catchup_config(world: CatchUpWorld) -> dict[str, Any]:
    return {
        "version": 1,
        "services": [
            {"name": name, "cluster": cluster, "containers": {"app": {"repository": repo, "tags": ["v*"]}}}
            for cluster, name, repo in world.services
        ],
    }


def catchup_expected(world: CatchUpWorld) -> dict[str, int]:
    """Issue 8's in-sync expectation (+ the schedules part's ListSchedules, + issue 11's one
    BatchGetItem for the whole run: records missing on services already on the newest image)."""
    # catch-up describes every followed service in one pass: batches of 10 per cluster
    groups = collections.Counter(cluster for cluster, _, _ in world.services)
    return {
        "DescribeImages": len(world.repositories),
        "DescribeServices": sum(math.ceil(n / DESCRIBE_SERVICES_BATCH) for n in groups.values()),
        "DescribeTaskDefinition": len(world.services),  # one family per service
        "ListSchedules": 1,
        "BatchGetItem": 1,
    }


def push_all(sb: Sandbox, world: CatchUpWorld, tag: str, last_push: list[float]) -> None:
    """Push ``tag`` to every repository, with no push event (missed).

    ECR's ``imagePushedAt`` has one-second resolution and catch-up picks the newest by it,
    so the pushes wait for the next second after the previous round.
    """
    wait = math.floor(last_push[0]) + 1.05 - time.time()
    if wait > 0:
        time.sleep(wait)
    for repo in world.repositories:
        sb.push(repo, tag)
    last_push[0] = time.time()


def running_digests(sb: Sandbox, world: CatchUpWorld) -> set[str]:
    ecs = sb.clients.ecs
    out = set()
    for cluster in CATCHUP_CLUSTERS:
        names = [name for c, name, _ in world.services if c == cluster]
        for i in range(0, len(names), DESCRIBE_SERVICES_BATCH):
            for svc in ecs.describe_services(cluster=cluster, services=names[i : i + 10])["services"]:
                td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
                out.add({c["name"]: c["image"] for c in td["containerDefinitions"]}["app"].rsplit("@", 1)[-1])
    return out


def run_catchup(server: MotoServer, tmp: Path, n_repos: int) -> dict[str, Any]:
    world, sb = build_catchup_world(server, n_repos)
    pilot = Pilot("reconcile", catchup_config(world), tmp, table_name=TABLE, schedule_group=SCHEDULE_GROUP)
    missed, insync = Runs(), Runs()
    last_push = [time.time()]
    for r in range(1, CATCHUP_REPEATS + 1):
        push_all(sb, world, f"v{r}", last_push)
        result = pilot.invoke(server, missed, {})
        check(
            summary(result, "catch-up") == {"update": N_SERVICES},
            f"missed push v{r} ({n_repos} repositories): {result['summary']}",
        )
        pushed = {fake_digest(f"{repo}:v{r}") for repo in world.repositories}
        check(running_digests(sb, world) == pushed, f"services do not all run v{r} by digest")
        result = pilot.invoke(server, insync, {})
        check(summary(result, "catch-up") == {"in-sync": N_SERVICES}, f"in-sync run: {result['summary']}")
        check(insync.writes == 0, f"the in-sync catch-up run made write calls: {dict(insync.ops)}")
    return {"repos": n_repos, "expected": catchup_expected(world), "missed": missed, "insync": insync}


def print_catchup(rows: Sequence[dict[str, Any]]) -> None:
    print(f"## Reconcile catch-up: {N_SERVICES} services, a missed push vs already on the newest image")
    print(
        f"moto server (own process, loopback); the real `reconcile` handler, warm; {N_SERVICES} services over "
        f"{len(CATCHUP_CLUSTERS)} clusters, one task definition family each, following 1, 5 or 50 repositories; "
        f"medians of {CATCHUP_REPEATS} rounds of (push a new tag everywhere without its event -> reconcile "
        "(missed push) -> reconcile (in sync)); expected = issue 8: 1 DescribeImages per repository + "
        "DescribeServices in batches of 10 per cluster + 1 DescribeTaskDefinition per "
        "distinct task definition, + 1 ListSchedules (schedules part), + 1 BatchGetItem (issue 11: "
        "deployment records an earlier run could not write, checked once per run)\n"
    )
    print(
        "| repositories x services | in sync: expected calls | in-sync calls | in-sync writes | in-sync wall s "
        "| missed push: calls | writes | services deployed | wall s |"
    )
    print("| " + " | ".join(["---"] * 9) + " |")
    for row in rows:
        ins, mis = row["insync"], row["missed"]
        print(
            f"| {row['repos']} x {N_SERVICES // row['repos']} | {sum(row['expected'].values())} "
            f"| {ins.call_count:.0f} | {ins.writes} | {ins.wall:.3f} "
            f"| {mis.call_count:.0f} | {mis.writes} | {N_SERVICES} | {mis.wall:.3f} |"
        )
    print("\nRequests by operation (one run each; in sync = `in`, missed push = `missed`):\n")
    header = " | ".join(f"{r['repos']} repo(s): expected in / in / missed" for r in rows)
    print(f"| operation | {header} |")
    print("| " + " | ".join(["---"] * (1 + len(rows))) + " |")
    names = sorted(
        {op for r in rows for k in ("insync", "missed") for op in r[k].ops} | set(rows[0]["expected"])
    )
    for op in names:
        cells = " | ".join(
            f"{r['expected'].get(op, 0)} / {r['insync'].ops.get(op, 0)} / {r['missed'].ops.get(op, 0)}"
            for r in rows
        )
        print(f"| {op} | {cells} |")
    off = [r["repos"] for r in rows if dict(r["insync"].ops) != r["expected"]]
    print(
        f"\nChecked: every missed-push run deployed all {N_SERVICES} services to the new digest; every in-sync "
        "run reported 50 in-sync actions and made **no write call**; in-sync calls "
        + (
            "match issue 8's expectation exactly."
            if not off
            else f"differ from the expectation at {off} repositories."
        )
    )
    mismatch = sum(r[k].client_mismatch for r in rows for k in ("insync", "missed"))
    if mismatch:
        print(
            f"note: ecspilot's client-side call count differed from the server's in {mismatch} run(s) (retries)"
        )
    print()


def main() -> None:
    with moto_server() as server, tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        daemons = run_daemons(server, tmp)
        print_daemons(daemons)
        rows = [run_catchup(server, tmp, n) for n in REPOSITORY_SHAPES]
        print_catchup(rows)


if __name__ == "__main__":
    main()
