"""Faults, push side: one push to 50 services while 30% of ECS calls fail, then Lambda's retries.

In this process, on moto (``mock_aws``) with real boto3 clients: 50 services on two clusters,
spread over 10 task definition families (5 services each), all following one repository. One
push event goes to the real ``deploy_on_push`` handler while a seeded 30% of its ECS calls fail
beyond botocore's retries (``ThrottlingException``, :mod:`tests.faults`), then the same event
again twice, as Lambda retries a failed asynchronous invocation two times. After each attempt:
services on the new digest, revisions registered (per family: the target is exactly one), and
deployment records written. A seed fixes the draws, not which call meets each: the fan-out's
threads interleave differently from run to run, so a row can differ by a service or two between
runs (seen: seed 1 ends 49/50 in one run and 50/50 in the next, with the same code).

The baseline is ecspilot on the calm path (no fault) in the same run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

SERVICES = 50
FAMILIES = 10
CLUSTERS = ("faults-alpha", "faults-omega")
FAILURE_RATE = 0.3
SEEDS = (1, 2, 3)
ATTEMPTS = 3  # the invocation and Lambda's two retries of an asynchronous event


@dataclass
class Attempt:
    on_new: int
    revisions: int  # new revisions registered so far, all families
    max_per_family: int
    records: int
    failed: bool
    ecs_faults: int


def _run(seed: int | None, mode: str = "error") -> list[Attempt]:
    import boto3  # noqa: PLC0415 - after the environment is set
    from moto import mock_aws  # noqa: PLC0415

    from ecspilot.aws.clients import Clients  # noqa: PLC0415
    from ecspilot.domain.config import parse_config  # noqa: PLC0415
    from ecspilot.errors import DeployFailuresError  # noqa: PLC0415
    from ecspilot.interfaces import runtime  # noqa: PLC0415
    from ecspilot.interfaces.runtime import Runtime  # noqa: PLC0415
    from ecspilot.interfaces.settings import Settings  # noqa: PLC0415
    from ecspilot.obs import metrics  # noqa: PLC0415
    from ecspilot_dev.local import ecs_deployment_per_update, invoke  # noqa: PLC0415
    from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox, create_state_table, fake_digest  # noqa: PLC0415
    from tests.faults import Faults  # noqa: PLC0415

    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }
    )
    with mock_aws(), ecs_deployment_per_update():
        session = boto3.Session(region_name=REGION)
        faults = Faults().attach(session)
        clients = Clients(session=session, region=REGION)
        world = Sandbox(clients)
        for cluster in CLUSTERS:
            world.cluster(cluster, instances_per_zone=0)
        world.repository("web")
        families = [f"web-{i}" for i in range(FAMILIES)]
        arns = {f: world.task_definition(f, {"app": world.image("web", "v0")}) for f in families}
        services: list[dict[str, Any]] = []
        for i in range(SERVICES):
            cluster, family = CLUSTERS[i % len(CLUSTERS)], families[i % FAMILIES]
            world.service(cluster, f"svc-{i}", arns[family])
            services.append(
                {"name": f"svc-{i}", "cluster": cluster, "containers": {"app": {"repository": "web"}}}
            )
        create_state_table(clients, "faults-push")
        rt = Runtime.build(
            settings=Settings(table_name="faults-push", region=REGION, account_id=ACCOUNT),
            config=parse_config({"version": 1, "services": services}),
            clients=clients,
        )
        event = world.push("web", "v1")
        digest = fake_digest("web:v1")
        if seed is not None:
            rule = faults.fail("*", mode, service="ecs", rate=FAILURE_RATE, seed=seed)  # type: ignore[arg-type]
        out: list[Attempt] = []
        for _ in range(ATTEMPTS):
            runtime.reset(rt)
            failed = False
            try:
                invoke("deploy_on_push", event)
            except DeployFailuresError:
                failed = True
            finally:
                metrics.clear_metrics()
            fired = rule.fired if seed is not None else 0
            faults.clear()  # measure without faults
            out.append(_measure(rt, services, families, digest, failed, fired))
            if seed is not None:
                faults.rules.append(rule)
            if not failed:
                break
        runtime.reset()
        return out


def _measure(
    rt: Any, services: list[dict[str, Any]], families: list[str], digest: str, failed: bool, fired: int
) -> Attempt:
    ecs = rt.clients.ecs
    on_new = 0
    for cluster in CLUSTERS:
        names = [s["name"] for s in services if s["cluster"] == cluster]
        for start in range(0, len(names), 10):
            for svc in ecs.describe_services(cluster=cluster, services=names[start : start + 10])["services"]:
                td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
                on_new += str(td["containerDefinitions"][0]["image"]).endswith(digest)
    per_family = [len(ecs.list_task_definitions(familyPrefix=f)["taskDefinitionArns"]) - 1 for f in families]
    records = sum(len(rt.history.deployments(s["cluster"], s["name"])) for s in services)
    return Attempt(on_new, sum(per_family), max(per_family), records, failed, fired)


def main() -> None:
    for mode, seeds in (("throttle", (None, 1)), ("error", (None, *SEEDS))):
        what = "throttled (botocore retries)" if mode == "throttle" else "failing beyond retries"
        print(
            f"\n## Faults, push: {SERVICES} services ({FAMILIES} task definitions), "
            f"{int(FAILURE_RATE * 100)}% of ECS calls {what}\n"
        )
        print(
            "| seed | attempt | invocation | services on the new digest "
            "| revisions (max per task def) | records | ECS faults |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for seed in seeds:
            for i, a in enumerate(_run(seed, mode)):
                name = "calm (baseline)" if seed is None else str(seed)
                attempt = "first" if i == 0 else f"retry {i}"
                print(
                    f"| {name} | {attempt} | {'failed' if a.failed else 'ok'} | {a.on_new}/{SERVICES} "
                    f"| {a.revisions} ({a.max_per_family}) | {a.records} | {a.ecs_faults} |"
                )
    print(f"\nTarget: {SERVICES}/{SERVICES} after the retries, exactly one revision per task definition.")


if __name__ == "__main__":
    main()
