"""Fan-out at ECS's rate limits (issue 18): paced calls, and a rollout that outlives an invocation.

In this process, on moto (``mock_aws``) with real boto3 clients, behind a **rate-limited ECS**:
``tests.faults``'s ``bucket`` mode puts a token bucket per operation in front of moto at the HTTP
layer (RegisterTaskDefinition 20 then 1/s, UpdateService 50 then 5/s): an attempt without a token
is answered ``ThrottlingException`` and never reaches moto, so botocore's retries see real
throttling. The real ``deploy_on_push`` handler deploys one push to N services on one cluster:

- *shared*: N services on one task definition (one registration, N UpdateService);
- *distinct*: N services each on its own task definition (N registrations, N UpdateService).

The floor no deployer can beat is set by the buckets: shared ``(N - 50) / 5`` s, distinct
``(N - 20) / 1`` s. **Time compression**: a case runs with both refill rates (the simulated ECS's
and ecspilot's limiter's, ``ECSPILOT_ECS_RATES``) multiplied by ``k``, bursts unchanged, so its
floor is divided by ``k``; the table shows the compressed floor and wall time (the ratio is what
compression preserves). Each case also runs *unpaced* (ecspilot's limiter off: botocore's adaptive
retries alone, as before issue 18) when ``--unpaced`` is given.

The continuation run: 500 distinct services with a simulated Lambda budget of a few seconds
(the context's remaining time), the continuation queue on moto's SQS, its messages delivered to
the same handler as the event source mapping would, until the queue is empty.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

CLUSTER = "paced-bench"
TABLE = "paced-bench"
REGISTER, UPDATE = (20.0, 1.0), (50.0, 5.0)  # ECS's documented burst, refill per second
# k keeps each floor well above the CPU time moto itself needs for the case on a 2-core machine
# (in-process moto copies the whole DynamoDB table on every TransactWriteItems)
CASES = (("shared", 100, 1.0), ("shared", 500, 2.0), ("distinct", 60, 2.0), ("distinct", 500, 10.0))
BUDGET_SECONDS = 6.0  # the continuation run's simulated time per invocation (beyond the margin)
MARGIN_SECONDS = 20


@dataclass
class Row:
    kind: str
    n: int
    k: float
    paced: bool
    wall: float
    floor: float
    throttled: int
    deployed: int
    registered: int


@dataclass
class BudgetContext:
    """A Lambda context whose remaining time is the bench's simulated budget."""

    seconds: float
    function_name: str = "ecspilot-bench"
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ecspilot-bench"
    aws_request_id: str = "bench"
    log_group_name: str = "/aws/lambda/ecspilot-bench"
    log_stream_name: str = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return int((MARGIN_SECONDS + self.seconds) * 1000)


def floor(kind: str, n: int, k: float) -> float:
    if kind == "shared":
        return max(0.0, n - UPDATE[0]) / (UPDATE[1] * k)
    return max(max(0.0, n - REGISTER[0]) / REGISTER[1], max(0.0, n - UPDATE[0]) / UPDATE[1]) / k


def _world(kind: str, n: int, k: float, paced: bool, queue: bool = False) -> tuple[Any, Any, Any, Any]:
    """A fresh moto world behind the simulated ECS buckets; returns (runtime, faults, rules, clients)."""
    import boto3  # noqa: PLC0415 - after the environment is set

    from ecspilot.aws.clients import Clients  # noqa: PLC0415
    from ecspilot.aws.limiter import Rate  # noqa: PLC0415
    from ecspilot.domain.config import parse_config  # noqa: PLC0415
    from ecspilot.interfaces import runtime  # noqa: PLC0415
    from ecspilot.interfaces.runtime import Runtime  # noqa: PLC0415
    from ecspilot.interfaces.settings import Settings  # noqa: PLC0415
    from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox, create_state_table  # noqa: PLC0415
    from tests.faults import Faults  # noqa: PLC0415

    session = boto3.Session(region_name=REGION)
    faults = Faults().attach(session)
    rates = {
        "RegisterTaskDefinition": Rate(REGISTER[0], REGISTER[1] * k),
        "UpdateService": Rate(UPDATE[0], UPDATE[1] * k),
    }
    world = Sandbox(Clients(session=session, region=REGION, rates={}))  # the setup is not paced
    clients = Clients(session=session, region=REGION, rates=rates if paced else {})
    world.cluster(CLUSTER, instances_per_zone=0)
    world.repository("web")
    shared = world.task_definition("web", {"app": world.image("web", "v0")}) if kind == "shared" else ""
    services = []
    for i in range(n):
        td = shared or world.task_definition(f"web-{i}", {"app": world.image("web", "v0")})
        world.service(CLUSTER, f"svc-{i}", td, desired=1)
        services.append(
            {"name": f"svc-{i}", "cluster": CLUSTER, "containers": {"app": {"repository": "web"}}}
        )
    create_state_table(clients, TABLE)
    queue_url = clients.sqs.create_queue(QueueName="paced-continuations")["QueueUrl"] if queue else None
    rt = Runtime.build(
        settings=Settings(
            table_name=TABLE,
            region=REGION,
            account_id=ACCOUNT,
            continuation_queue_url=queue_url,
            time_margin_seconds=MARGIN_SECONDS,
        ),
        config=parse_config({"version": 1, "services": services}),
        clients=clients,
    )
    runtime.reset(rt)
    rules = [
        faults.fail("RegisterTaskDefinition", "bucket", burst=REGISTER[0], per_second=REGISTER[1] * k),
        faults.fail("UpdateService", "bucket", burst=UPDATE[0], per_second=UPDATE[1] * k),
    ]
    return rt, faults, rules, world


def _case(kind: str, n: int, k: float, paced: bool) -> Row:
    from moto import mock_aws  # noqa: PLC0415

    from ecspilot.obs import metrics  # noqa: PLC0415
    from ecspilot_dev.local import ecs_deployment_per_update, invoke  # noqa: PLC0415

    with mock_aws(), ecs_deployment_per_update():
        _rt, _, rules, world = _world(kind, n, k, paced)
        event = world.push("web", "v1")
        started = time.perf_counter()
        result = invoke("deploy_on_push", event)
        wall = time.perf_counter() - started
        metrics.clear_metrics()
        deployed = sum(s["outcome"] == "deployed" for s in result["services"])
        return Row(
            kind,
            n,
            k,
            paced,
            wall,
            floor(kind, n, k),
            sum(r.fired for r in rules),
            deployed,
            len(result["registered"]),
        )


def _continuation(n: int = 500, k: float = 20.0) -> list[str]:
    from moto import mock_aws  # noqa: PLC0415

    from ecspilot.obs import metrics  # noqa: PLC0415
    from ecspilot_dev.local import ecs_deployment_per_update, load_handler  # noqa: PLC0415
    from ecspilot_dev.sandbox import QueuePump  # noqa: PLC0415

    lines = []
    with mock_aws(), ecs_deployment_per_update():
        rt, _, rules, world = _world("distinct", n, k, paced=True, queue=True)
        handler = load_handler("deploy_on_push")
        pump = QueuePump(rt.clients, rt.settings.continuation_queue_url)
        started = time.perf_counter()
        result = handler(world.push("web", "v1"), BudgetContext(BUDGET_SECONDS))
        parts = [("push", time.perf_counter() - started, _count(result["services"]))]
        done = _deployments(rt)
        while True:
            event = pump.receive(max_messages=1)
            if not event["Records"]:
                break
            t0 = time.perf_counter()
            out = handler(event, BudgetContext(BUDGET_SECONDS))
            pump.settle(event, out)
            seconds = time.perf_counter() - t0
            now = _deployments(rt)  # outside the timed part
            parts.append((f"continuation {len(parts) + 1}", seconds, str(now - done)))
            done = now
        wall = sum(seconds for _, seconds, _ in parts)
        metrics.clear_metrics()
        families = rt.clients.ecs.list_task_definition_families(status="ACTIVE")["families"]
        revisions = sum(
            len(rt.clients.ecs.list_task_definitions(familyPrefix=f)["taskDefinitionArns"]) for f in families
        )
        items = _scan(rt)
        records = [i for i in items if i.get("type", {}).get("S") == "deployment"]
        rollouts = {r.get("rollout_id", {}).get("S", "") for r in records}
        on_new = _on_new(rt, n)
        lines.append(
            f"| {n} distinct, k={k:g} | {BUDGET_SECONDS:g} s | {len(parts)} | {wall:.1f} s | {floor('distinct', n, k):.1f} s "
            f"| {on_new}/{n} | {revisions - n} | {len(records)} | {len(rollouts)} | {sum(r.fired for r in rules)} |"
        )
        lines.append("")
        lines.append("| invocation | wall | services deployed in it (records written) |")
        lines.append("| --- | --- | --- |")
        for name, seconds, deployed in parts:
            lines.append(
                f"| {name} | {seconds:.1f} s | {deployed if deployed is not None else '(see logs)'} |"
            )
    return lines


def _count(services: list[dict[str, Any]]) -> str:
    deployed = sum(s["outcome"] == "deployed" for s in services)
    continued = sum(s["outcome"] == "continued" for s in services)
    return f"{deployed} (continued: {continued})"


def _deployments(rt: Any) -> int:
    return sum(i.get("type", {}).get("S") == "deployment" for i in _scan(rt))


def _scan(rt: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": TABLE}
    while True:
        page = rt.clients.dynamodb.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _on_new(rt: Any, n: int) -> int:
    from ecspilot_dev.sandbox import fake_digest  # noqa: PLC0415

    digest = fake_digest("web:v1")
    on_new = 0
    names = [f"svc-{i}" for i in range(n)]
    for start in range(0, n, 10):
        for svc in rt.clients.ecs.describe_services(cluster=CLUSTER, services=names[start : start + 10])[
            "services"
        ]:
            td = rt.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])[
                "taskDefinition"
            ]
            on_new += str(td["containerDefinitions"][0]["image"]).endswith(digest)
    return on_new


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    print("\n## Fan-out at ECS's rate limits (token buckets in front of moto; k = time compression)\n")
    print(
        "| case | k | limiter | wall | floor | wall / floor | throttled attempts | services deployed | registrations |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    modes = (True, False) if "--unpaced" in argv else (True,)
    for kind, n, k in CASES:
        for paced in modes:
            r = _case(kind, n, k, paced)
            print(
                f"| {r.n} {r.kind} | {r.k:g} | {'paced' if r.paced else 'off (adaptive retries only)'} "
                f"| {r.wall:.1f} s | {r.floor:.1f} s | {r.wall / r.floor:.2f}x | {r.throttled} "
                f"| {r.deployed}/{r.n} | {r.registered} |",
                flush=True,
            )
    print("\nTarget: within 1.15x of the floor.\n")
    print(f"## A rollout outliving its invocation: {BUDGET_SECONDS:g} s of simulated budget per invocation\n")
    print(
        "| case | budget | invocations | wall (all) | floor | services on the new digest "
        "| new revisions | deployment records | rollout ids | throttled attempts |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for line in _continuation():
        print(line)


if __name__ == "__main__":
    main()
