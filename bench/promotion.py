"""Promotion at scale (issue 13): a reconcile with 50 promoted services in sync, across accounts.

One moto server process on loopback; the real handlers in this process (runtimes built once: warm
Lambdas). The world:

- ecspilot's account (123456789012, us-east-1): ECR repository ``web``, cluster ``staging`` with 50
  **source** services ``web-00`` ... ``web-49``, each on its own task definition family;
- a member account (222222222222, eu-west-1), reached through ``sts:AssumeRole`` as the config's
  ``accounts.prod``: cluster ``prod`` with the 50 **target** services of the same names, each on its
  own family, each ``promote: {from: web-NN-staging, bake_minutes: 30}``.

The story, through the handlers: web:v1 is pushed (``deploy_on_push`` rolls the 50 sources), ECS's
COMPLETED event of each source deployment reaches ``track_deployments`` with a completion time 31
minutes ago (the bake is over: a backdated event, not a faked clock); then the 50 targets join the
config (promotion added to a running staging) and ``reconcile`` runs:

- **first** run: promotes the 50 targets (checked: each runs v1's digest, in the source's registry);
- **in sync**, warm: the same process again, repeated (its assumed-role session is cached until
  near expiry: no AssumeRole at all);
- **in sync**, fresh: a new runtime (a cold Lambda process): at most one AssumeRole per account.

Targets: no write call in sync (checked: the benchmark fails loudly otherwise) and no AssumeRole
beyond one per account. Requests are what moto's recorder saw (setup calls left out by their
User-Agent marker), split by account through the request's credential scope (the member account's
region is its own here), so the table shows which calls cross the account boundary.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import json
import re
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bench.harness import Pilot, Runs, check, is_write
from bench.server import SETUP_MARKER, MotoServer, moto_server, rest_operation
from ecspilot.aws.clients import Clients
from ecspilot.interfaces import runtime
from ecspilot.obs import metrics
from ecspilot_dev.local import invoke, load_event, moto_api
from ecspilot_dev.sandbox import Sandbox, create_state_table, fake_digest

N = 50
OWN, OWN_REGION = "123456789012", "us-east-1"
MEMBER, MEMBER_REGION = "222222222222", "eu-west-1"
ROLE = f"arn:aws:iam::{MEMBER}:role/ecspilot-deployer"
TABLE = "bench-promotion-state"
SCHEDULE_GROUP = "ecspilot"
INSYNC_REPEATS = 5
NAMES = tuple(f"web-{i:02d}" for i in range(N))


def config() -> dict[str, Any]:
    sources = [
        {
            "name": f"{n}-staging",
            "cluster": "staging",
            "service": n,
            "containers": {"app": {"repository": "web"}},
        }
        for n in NAMES
    ]
    targets = [
        {
            "name": f"{n}-prod",
            "account": "prod",
            "cluster": "prod",
            "service": n,
            "promote": {"from": f"{n}-staging", "bake_minutes": 30},
        }
        for n in NAMES
    ]
    return {
        "version": 1,
        "accounts": {"prod": {"role_arn": ROLE, "region": MEMBER_REGION}},
        "services": sources + targets,
    }


def member_clients() -> Clients:
    """Setup clients in the member account (assumed-role credentials: moto maps them to it)."""
    setup = Config(user_agent_extra=SETUP_MARKER, retries={"mode": "standard"})
    sts = boto3.client("sts", region_name=OWN_REGION, config=setup)
    creds = sts.assume_role(RoleArn=ROLE, RoleSessionName="bench-setup")["Credentials"]
    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=MEMBER_REGION,
    )
    overrides: dict[str, Any] = {name: session.client(name, config=setup) for name in ("ecs", "ec2")}
    return Clients(session=session, overrides=overrides)


def build_world(server: MotoServer) -> Sandbox:
    """Both accounts, every service on web:v0 pinned by digest (in the source registry)."""
    server.reset()
    own = Sandbox(server.setup_clients())
    create_state_table(own.clients, TABLE)
    own.clients.scheduler.create_schedule_group(Name=SCHEDULE_GROUP)
    own.repository("web")
    own.push("web", "v0")
    v0 = f"{own.registry}/web@{fake_digest('web:v0')}"
    member = Sandbox(member_clients(), account=MEMBER, region=MEMBER_REGION)
    for sb, cluster in ((own, "staging"), (member, "prod")):
        sb.cluster(cluster)
        for name in NAMES:
            sb.service(cluster, name, sb.task_definition(name, {"app": v0, "sidecar": "busybox:1"}))
    clusters = member.clients.ecs.list_clusters()["clusterArns"]
    check(
        clusters == [f"arn:aws:ecs:{MEMBER_REGION}:{MEMBER}:cluster/prod"],
        f"the member account sees other clusters than its own: moto did not separate the accounts: {clusters}",
    )
    return own


@dataclass
class Split:
    """Requests of one run by account: (account, operation) -> count."""

    by: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)

    def ops(self, account: str) -> collections.Counter[str]:
        return collections.Counter({op: n for (a, op), n in self.by.items() if a == account})

    def writes(self) -> int:
        """Calls that change state (AssumeRole only hands out credentials: counted on its own)."""
        return sum(n for (_, op), n in self.by.items() if is_write(op) and op != "AssumeRole")


SCOPE = re.compile(r"Credential=[^/]+/[^/]+/([^/]+)/([^/]+)/")


def request_body(entry: dict[str, Any]) -> str:
    body = entry.get("body") or ""
    return base64.b64decode(body).decode() if entry.get("body_encoded") else str(body)


@contextlib.contextmanager
def recording(server: MotoServer) -> Iterator[Split]:
    """The requests sent inside the block, by account (the member's region names it) and operation."""
    split = Split()
    moto_api(server.endpoint, "recorder/reset-recording", {})
    moto_api(server.endpoint, "recorder/start-recording", {})
    try:
        yield split
    finally:
        moto_api(server.endpoint, "recorder/stop-recording", {})
        for line in moto_api(server.endpoint, "recorder/download-recording").splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            headers = {k.lower(): v for k, v in entry["headers"].items()}
            if SETUP_MARKER in headers.get("user-agent", ""):
                continue
            scope = SCOPE.search(headers.get("authorization", ""))
            region, service = scope.groups() if scope else ("?", "?")
            target = headers.get("x-amz-target")
            if target:
                op = target.rsplit(".", 1)[-1]
            elif service in ("sts", "monitoring"):  # query protocol: the action is in the form
                found = re.search(r"Action=(\w+)", request_body(entry))
                op = found.group(1) if found else f"{service}?"
            else:  # REST (Scheduler): method and path
                op = rest_operation(service, entry["method"], urllib.parse.urlsplit(entry["url"]).path)
            split.by[(MEMBER if region == MEMBER_REGION else OWN, op)] += 1


def run_reconcile(server: MotoServer, pilot: Pilot, runs: Runs) -> tuple[dict[str, Any], Split]:
    """One reconcile through ``pilot``, its requests split by account."""
    with recording(server) as split:
        result = pilot.invoke(server, runs, {})
    return result, split


def promotions(result: dict[str, Any]) -> dict[str, int]:
    return dict(collections.Counter(a["change"] for a in result["actions"] if a["kind"] == "promotion"))


def release_v1(server: MotoServer, own: Sandbox, tmp: Path) -> None:
    """web:v1 pushed and deployed to the 50 sources; each COMPLETED 31 minutes ago (bake over)."""
    push = Pilot("deploy_on_push", config(), tmp, table_name=TABLE)
    result = push.invoke(server, Runs(), own.push("web", "v1"))
    check(
        [s["outcome"] for s in result["services"]] == ["deployed"] * N, f"v1 deployed: {result['services']}"
    )
    # the targets join the config afterwards (promotion added to a running staging): so the first
    # reconcile promotes them, not the tracker on the COMPLETED events (their bake is over)
    sources_only = {**config(), "services": [s for s in config()["services"] if "promote" not in s]}
    tracker = Pilot("track_deployments", sources_only, tmp, table_name=TABLE)
    runtime.reset(tracker.rt)
    try:
        completed_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 31 * 60))
        for svc in result["services"]:
            event = load_event(
                "ecs_deployment_completed",
                {"deploymentId": svc["deployment_id"], "updatedAt": completed_at},
                resources=[f"arn:aws:ecs:{OWN_REGION}:{OWN}:service/staging/{svc['service']}"],
            )
            moved = invoke("track_deployments", event).get("moved") or []
            moves = [moved] if isinstance(moved, dict) else moved
            check([m.get("to") for m in moves] == ["COMPLETED"], f"{svc['service']}: COMPLETED, got {moved}")
    finally:
        runtime.reset()
        metrics.clear_metrics()


def target_digests() -> set[str]:
    ecs = member_clients().ecs
    out = set()
    for i in range(0, N, 10):
        for svc in ecs.describe_services(cluster="prod", services=list(NAMES[i : i + 10]))["services"]:
            td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
            out.add({c["name"]: c["image"] for c in td["containerDefinitions"]}["app"])
    return out


def measure(server: MotoServer, tmp: Path) -> dict[str, Any]:
    own = build_world(server)
    release_v1(server, own, tmp)
    pilot = Pilot(
        "reconcile",
        config(),
        tmp,
        ("ecs", "ecr", "dynamodb", "scheduler", "sts"),
        table_name=TABLE,
        schedule_group=SCHEDULE_GROUP,
    )
    first = Runs()
    result, first_split = run_reconcile(server, pilot, first)
    check(promotions(result) == {"update": N}, f"first reconcile: {promotions(result)} ({result['summary']})")
    v1 = f"{own.registry}/web@{fake_digest('web:v1')}"
    check(target_digests() == {v1}, f"targets do not all run v1 from the source registry: {target_digests()}")
    warm, warm_split = Runs(), Split()
    for _ in range(INSYNC_REPEATS):
        result, warm_split = run_reconcile(server, pilot, warm)
        check(promotions(result) == {"in-sync": N}, f"in-sync reconcile: {promotions(result)}")
        check(warm_split.writes() == 0, f"the in-sync reconcile wrote: {dict(warm_split.by)}")
    fresh, fresh_split = Runs(), Split()
    for _ in range(INSYNC_REPEATS):
        cold = Pilot("reconcile", config(), tmp, table_name=TABLE, schedule_group=SCHEDULE_GROUP)
        result, fresh_split = run_reconcile(server, cold, fresh)
        check(promotions(result) == {"in-sync": N}, f"in-sync reconcile (fresh): {promotions(result)}")
        check(fresh_split.writes() == 0, f"the in-sync reconcile (fresh) wrote: {dict(fresh_split.by)}")
        assumed = fresh_split.ops(OWN)["AssumeRole"]
        check(assumed <= 1, f"{assumed} AssumeRole calls for one account in one invocation")
    return {
        "first": (first, first_split),
        "warm": (warm, warm_split),
        "fresh": (fresh, fresh_split),
    }


def print_results(runs: dict[str, Any]) -> None:
    print(f"## Promotion: a reconcile with {N} promoted services in sync, targets in another account")
    print(
        f"moto server (own process, loopback); the real `reconcile` handler; {N} source services in ecspilot's "
        f"account ({OWN}, {OWN_REGION}) and {N} targets in a member account ({MEMBER}, {MEMBER_REGION}, "
        "`sts:AssumeRole`), one task definition family each; first = promotes v1 to the 50 targets (bake over); "
        f"in sync = medians of {INSYNC_REPEATS} runs, warm (same process) and fresh (a new runtime, as a cold "
        "Lambda); requests by account from the credential scope of each request\n"
    )
    print("| run | requests, ecspilot's account | requests, member account | writes | AssumeRole | wall s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, key in (
        ("first (promotes 50)", "first"),
        ("in sync, warm", "warm"),
        ("in sync, fresh", "fresh"),
    ):
        r, split = runs[key]
        print(
            f"| {label} | {sum(split.ops(OWN).values())} | {sum(split.ops(MEMBER).values())} | {split.writes()} "
            f"| {split.ops(OWN)['AssumeRole']} | {r.wall:.3f} |"
        )
    print("\nRequests by operation (one run each; ecspilot's account / member account):\n")
    print("| operation | first | in sync, warm | in sync, fresh |")
    print("| --- | --- | --- | --- |")
    ops = sorted({op for _, split in runs.values() for (_, op) in split.by})
    for op in ops:
        cells = " | ".join(f"{split.ops(OWN)[op]} / {split.ops(MEMBER)[op]}" for _, split in runs.values())
        print(f"| {op} | {cells} |")
    print(
        f"\nChecked: the first run promoted all {N} targets to v1's digest in the source registry; every in-sync "
        f"run reported {N} in-sync promotions, made **no write call**, and at most one AssumeRole (fresh) or "
        "none (warm: the session is cached until near its expiry).\n"
    )


def main() -> None:
    with moto_server() as server, tempfile.TemporaryDirectory() as tmpdir:
        print_results(measure(server, Path(tmpdir)))


if __name__ == "__main__":
    main()
