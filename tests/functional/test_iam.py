"""IAM, checked: each function's role in template.yaml grants exactly what its handler calls.

Every function's handler runs through scenarios that cover each code path that calls AWS (the
managed-daemons API through botocore's Stubber, as moto lacks it); the ``CallRecorder`` sees each
call with its parameters. Each call maps to the IAM actions it needs, including the implied ones
(``ecs:TagResource`` when a create call carries tags, ``iam:PassRole`` when roles are handed to ECS
or Scheduler). The test fails on a call the role lacks and on a grant nothing calls, naming the
function and the action. Adding an AWS call? Add a scenario that reaches it, then the grant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from ecspilot.aws.clients import Clients
from ecspilot.domain.config import parse_config
from ecspilot.interfaces import runtime
from ecspilot.interfaces.runtime import Runtime
from ecspilot.interfaces.settings import Settings
from ecspilot_dev.local import CallRecorder, invoke, load_event, task_stopped_event
from ecspilot_dev.sandbox import ACCOUNT, REGION, QueuePump, Sandbox, create_jobs_queue, fake_digest
from tests.conftest import TABLE, MakeRuntime
from tests.moto_state import new_deployment_per_update, set_image_pushed_at
from tests.template import function_grants, function_ids

ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecs-app-task"
EXEC_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecs-app-exec"
ROLES = {"taskRoleArn": ROLE, "executionRoleArn": EXEC_ROLE}
TAGGED = {"tags": [{"key": "team", "value": "web"}]}
GROUP = "ecspilot-iam"
RECONCILE_SETTINGS = {  # what template.yaml gives the reconcile function
    "schedule_group": GROUP,
    "run_job_arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecspilot-RunJob",
    "scheduler_role_arn": f"arn:aws:iam::{ACCOUNT}:role/ecspilot-SchedulerRole",
    "scheduler_dlq_arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:ecspilot-SchedulerDeadLetterQueue",
}

Call = tuple[str, str, dict[str, Any]]


# --- what a call needs ---------------------------------------------------------------------------


# Implied grants: (service, operation) -> [(action, when the call needs it)]. Tags given at
# creation need ecs:TagResource conditioned on the creating action; roles handed to ECS tasks (a
# new task definition's roles; RunTask and CreateDaemon pass the task definition's task and
# execution roles, per the Service Authorization Reference) need iam:PassRole to ecs-tasks; a
# schedule's target role is passed to EventBridge Scheduler.
TO_TASKS = "iam:PassRole[ecs-tasks.amazonaws.com]"
IMPLIED: dict[tuple[str, str], list[tuple[str, Callable[[Mapping[str, Any]], bool]]]] = {
    ("ecs", "RegisterTaskDefinition"): [
        ("ecs:TagResource[CreateAction=RegisterTaskDefinition]", lambda p: bool(p.get("tags"))),
        (TO_TASKS, lambda p: bool(p.get("taskRoleArn") or p.get("executionRoleArn"))),
    ],
    ("ecs", "RunTask"): [
        ("ecs:TagResource[CreateAction=RunTask]", lambda p: bool(p.get("tags"))),
        (TO_TASKS, bool),
    ],
    ("ecs", "CreateService"): [
        ("ecs:TagResource[CreateAction=CreateService]", lambda p: bool(p.get("tags")))
    ],
    ("ecs", "CreateDaemon"): [
        ("ecs:TagResource[CreateAction=CreateDaemon]", lambda p: bool(p.get("tags"))),
        (TO_TASKS, lambda p: True),
    ],
    ("sns", "Publish"): [
        # the notification topic is encrypted with the stack's own key (template.yaml NotifyTopicKey)
        ("kms:GenerateDataKey*", lambda p: True),
        ("kms:Decrypt", lambda p: True),
    ],
    ("scheduler", "CreateSchedule"): [
        ("iam:PassRole[scheduler.amazonaws.com]", lambda p: bool(p.get("Target", {}).get("RoleArn")))
    ],
    ("scheduler", "UpdateSchedule"): [
        ("iam:PassRole[scheduler.amazonaws.com]", lambda p: bool(p.get("Target", {}).get("RoleArn")))
    ],
}


TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def needed(service: str, operation: str, params: Mapping[str, Any]) -> set[str]:
    """The IAM actions one API call needs, in the keys tests/template.py gives grants."""
    if (service, operation) == ("dynamodb", "TransactWriteItems"):
        # IAM has no action of that name: each item needs its own operation's action
        kinds = {next(iter(item)) for item in params.get("TransactItems", [])}
        return {f"dynamodb:{TRANSACT_ACTIONS[k]}" for k in kinds}
    action = f"{service}:{operation}"
    if service == "dynamodb" and params.get("IndexName"):
        action += "@index"  # a query on an index needs the index's ARN as resource
    return {action} | {a for a, applies in IMPLIED.get((service, operation), []) if applies(params)}


# --- scenarios -------------------------------------------------------------------------------------


@dataclass
class Run:
    """The calls each scenario's handler invocations made (setup calls excluded)."""

    recorder: CallRecorder
    sandbox: Sandbox
    make_runtime: MakeRuntime
    calls: list[Call] = field(default_factory=list)

    def invoke(self, function: str, event: Any, raises: type[BaseException] | None = None) -> Any:
        self.recorder.reset()
        try:
            if raises is None:
                return invoke(function, event)
            with pytest.raises(raises):
                invoke(function, event)
            return None
        finally:
            self.calls += self.recorder.calls
            self.recorder.reset()

    def runtime(self, config: dict[str, Any], **settings: Any) -> Runtime:
        return self.make_runtime(config, table=False, table_name=TABLE, **settings)


def web_world(sb: Sandbox, cluster: str = "prod") -> None:
    sb.cluster(cluster)
    sb.repository("web")
    td = sb.task_definition("web", {"app": sb.image("web", "v0")}, **ROLES, **TAGGED)
    sb.service(cluster, "web", td)
    sb.service(cluster, "api", td)


WEB = {
    "version": 1,
    "services": [
        {"name": n, "cluster": "prod", "containers": {"app": {"repository": "web", "tags": ["v*"]}}}
        for n in ("web", "api")
    ],
}


def deploy_on_push(run: Run) -> None:
    web_world(run.sandbox)
    run.runtime(WEB)
    old, new = run.sandbox.push("web", "v1"), run.sandbox.push("web", "v2")
    set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=60)
    run.invoke("deploy_on_push", new)  # describe, register (tags, roles), roll, record
    run.invoke("deploy_on_push", new)  # duplicate: no-op
    run.invoke("deploy_on_push", old)  # stale: the push times are compared
    # a push that outlives its invocation (1 s of budget, UpdateService paced at 1 then 1 per 10 s):
    # one service now, the other sent to the continuation queue, consumed by the same function
    url = run.sandbox.clients.sqs.create_queue(QueueName="ecspilot-iam-continuations")["QueueUrl"]
    run.runtime(WEB, continuation_queue_url=url, ecs_rates="UpdateService=1/0.1", time_margin_seconds=299)
    result = run.invoke("deploy_on_push", run.sandbox.push("web", "v3"))
    assert sorted(s["outcome"] for s in result["services"]) == ["continued", "deployed"]
    run.runtime(WEB, continuation_queue_url=url, ecs_rates="UpdateService=50/5")
    event = QueuePump(run.sandbox.clients, url).receive()
    assert run.invoke("deploy_on_push", event) == {"batchItemFailures": []}
    gates(run)
    signature_gate(run)
    express(run, "deploy_on_push", lambda: run.invoke("deploy_on_push", run.sandbox.push("api", "v2")))
    push_to_another_account(run)
    deferred_push(run)
    release_policy(run)


def release_policy(run: Run) -> None:
    """Issue 27: ``order: semver``. The running digest has no version tag: its version is looked
    up in its deployment records (gsi1); the digest's release item is read before it deploys (a
    rejected digest stays refused), and a major jump waits (its item read and recorded)."""
    sb = run.sandbox
    sb.repository("ver")
    build = fake_digest("ver:build-7")
    sb.push("ver", "build-7", build)
    td = sb.task_definition("ver", {"app": f"{sb.registry}/ver@{build}"}, **ROLES, **TAGGED)
    sb.service("prod", "ver", td)
    source = {"repository": "ver", "tags": ["v*"], "order": "semver", "allow": "minor"}
    run.runtime(
        {"version": 1, "services": [{"name": "ver", "cluster": "prod", "containers": {"app": source}}]}
    )
    result = run.invoke("deploy_on_push", sb.push("ver", "v1.0.0"))
    assert [s["outcome"] for s in result["services"]] == ["deployed"]
    result = run.invoke("deploy_on_push", sb.push("ver", "v3.0.0"))
    assert [s["outcome"] for s in result["services"]] == ["awaiting approval"]


def deferred_push(run: Run) -> None:
    """Issue 25: a push inside a freeze is deferred: the freezes read, the deferral recorded and
    told, and the reopen timer set (invoking reconcile as its timer role)."""
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    now = datetime.now(UTC)
    freeze = {
        "name": "iam",
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
    }
    topic = run.sandbox.clients.sns.create_topic(Name="ecspilot-iam-deferred")["TopicArn"]
    if GROUP not in [
        g["Name"] for g in run.sandbox.clients.scheduler.list_schedule_groups()["ScheduleGroups"]
    ]:
        run.sandbox.clients.scheduler.create_schedule_group(Name=GROUP)
    run.runtime(
        {**WEB, "freezes": [freeze]},
        notify_topic_arn=topic,
        schedule_group=GROUP,
        reconcile_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecspilot-Reconcile",
        scheduler_role_arn=f"arn:aws:iam::{ACCOUNT}:role/ecspilot-PromotionTimerRole",
    )
    result = run.invoke("deploy_on_push", run.sandbox.push("web", "v12"))
    assert {s["outcome"] for s in result["services"]} == {"deferred"}


def push_to_another_account(run: Run) -> None:
    """Issue 13: a service with ``account`` (not promoted) is deployed by a push in its account,
    through the configured role (sts:AssumeRole; the ECS calls there are the member role's)."""
    from tests.promotion_world import ROLE_ARN, TARGET_ACCOUNT, TARGET_REGION, assumed_clients  # noqa: PLC0415

    sb = run.sandbox
    far = Sandbox(assumed_clients(sb.clients, ROLE_ARN, TARGET_REGION), TARGET_ACCOUNT, TARGET_REGION)
    far.cluster("prod")
    far.service("prod", "web", far.task_definition("web", {"app": sb.image("web", "v0")}))
    follow = {"app": {"repository": "web", "tags": ["v*"]}}
    config = {
        **WEB,
        "accounts": {"far": {"role_arn": ROLE_ARN, "region": TARGET_REGION}},
        "services": [
            {"name": "web-far", "account": "far", "cluster": "prod", "service": "web", "containers": follow}
        ],
    }
    run.runtime(config)
    result = run.invoke("deploy_on_push", sb.push("web", "v6"))
    assert [(s["name"], s["outcome"]) for s in result["services"]] == [("web-far", "deployed")]


GATED = {
    "version": 1,
    "services": [
        {
            "name": "web",
            "cluster": "prod",
            "containers": {"app": {"repository": "web", "tags": ["v*"]}},
            "gates": {"image_scan": {"max_severity": "HIGH"}},
        }
    ],
}


def gates(run: Run) -> None:
    """The image scan gate (issue 14): a clean image passes, a CRITICAL one is refused and told."""
    from tests.scans import scanned  # noqa: PLC0415

    topic = run.sandbox.clients.sns.create_topic(Name="ecspilot-iam-refused")["TopicArn"]
    run.runtime(GATED, notify_topic_arn=topic)
    for tag, counts in (("v4", {"LOW": 1}), ("v5", {"CRITICAL": 1})):
        event = run.sandbox.push("web", tag)
        scanned(run.sandbox.clients.ecr, "web", fake_digest(f"web:{tag}"), counts)
        run.invoke("deploy_on_push", event)


SIGNED = {
    "version": 1,
    "services": [
        {
            "name": "web",
            "cluster": "prod",
            "containers": {"app": {"repository": "web", "tags": ["v*"]}},
            "gates": {
                "signature": {"profiles": [f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-profiles/release"]}
            },
        }
    ],
}
TIMER_SETTINGS = {  # what template.yaml gives deploy_on_push for the signature re-check timers
    "schedule_group": GROUP,
    "reconcile_arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecspilot-Reconcile",
    "scheduler_role_arn": f"arn:aws:iam::{ACCOUNT}:role/ecspilot-PromotionTimerRole",
}


def signing(run: Run, state: str, tag: str) -> tuple[Any, dict[str, Any]]:
    """An image pushed and its signing status (moto lacks DescribeImageSigningStatus: botocore's
    Stubber answers that one operation of the runtime's ECR client)."""
    from ecspilot_dev.service_deployments import OperationStubber  # noqa: PLC0415

    event = run.sandbox.push("web", tag)
    stub = OperationStubber(runtime.current().clients.ecr, ("DescribeImageSigningStatus",))
    profile = SIGNED["services"][0]["gates"]["signature"]["profiles"][0]  # type: ignore[index]
    stub.add_response(
        "describe_image_signing_status",
        {"signingStatuses": [{"signingProfileArn": profile, "status": state}]},
    )
    return stub, event


def signature_gate(run: Run) -> None:
    """Issue 27: IN_PROGRESS is deferred (two re-check timers set), FAILED refused and told."""
    run.sandbox.clients.scheduler.create_schedule_group(Name=GROUP)
    topic = run.sandbox.clients.sns.create_topic(Name="ecspilot-iam-unsigned")["TopicArn"]
    run.runtime(SIGNED, notify_topic_arn=topic, **TIMER_SETTINGS)
    for state, tag, expected in (("IN_PROGRESS", "v7", "deferred"), ("FAILED", "v8", "refused")):
        stub, event = signing(run, state, tag)
        with stub:
            result = run.invoke("deploy_on_push", event)
        assert [s["outcome"] for s in result["services"]] == [expected]


def signature_timer(run: Run) -> None:
    """Issue 27: a signature re-check timer fires; COMPLETE now: deployed."""
    run.runtime(SIGNED, **RECONCILE_SETTINGS)
    stub, event = signing(run, "COMPLETE", "v10")
    detail = event["detail"]
    timer = {
        "trigger": "signature",
        "services": ["web"],
        "repository": "web",
        "tag": "v10",
        "digest": detail["image-digest"],
        "registry_id": ACCOUNT,
        "region": REGION,
    }
    with stub:
        result = run.invoke("reconcile", timer)
    assert [s["outcome"] for s in result["services"]] == ["deployed"]
    # pushed before the scenarios that follow push theirs (moto's push times have one-second
    # resolution): reconcile's catch-up must not take web back to v10 under a promotion's source
    set_image_pushed_at("web", detail["image-digest"], seconds_ago=60)


def express(run: Run, function: str, act: Callable[[], Any]) -> None:
    """An Express Mode service (moto lacks the API: a Stubber answers) deployed by ``act``."""
    from tests.functional.test_express import NEW_TD, World  # noqa: PLC0415 - its Stubber builders

    session = boto3.Session(region_name=REGION)
    run.recorder.attach(session)
    with Stubber(session.client("ecs")) as stub:
        world = World.__new__(World)
        world.stub = stub
        world.clients = Clients(session=session, region=REGION, overrides={"ecs": stub.client})
        config = {
            "version": 1,
            "services": [
                {
                    "name": "api",
                    "cluster": "prod",
                    "express": True,
                    "containers": {"main": {"repository": "api"}},
                }
            ],
        }
        if "api" not in [
            r["repositoryName"] for r in run.sandbox.clients.ecr.describe_repositories()["repositories"]
        ]:
            run.sandbox.repository("api")
        if function == "reconcile":
            run.sandbox.push("api", "v2")
            stub.add_response(
                "describe_services",
                {"services": [{"serviceName": "api", "status": "ACTIVE"}], "failures": []},
            )  # catch-up describes every followed service first
        digest = fake_digest("api:v2")
        world.expect_current()
        world.expect_update(f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/api@{digest}")
        world.expect_deployments([{"id": "ecs-svc/9", "status": "PRIMARY", "taskDefinition": NEW_TD}])
        rt = Runtime.build(
            settings=Settings(
                table_name=TABLE, region=REGION, account_id=ACCOUNT, max_workers=1, **RECONCILE_SETTINGS
            )
            if function == "reconcile"
            else Settings(table_name=TABLE, region=REGION, account_id=ACCOUNT, max_workers=1),
            config=parse_config(config),
            clients=world.clients,
        )
        runtime.reset(rt)
        act()
        stub.assert_no_pending_responses()


JOB_CLUSTER = "batchfarm"


def job_world(sb: Sandbox) -> None:
    sb.cluster(JOB_CLUSTER, instances_per_zone=1)
    sb.task_definition("nightly-report", {"report": sb.image("report", "v1")}, **ROLES)


def job(name: str = "nightly-report", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "cluster": JOB_CLUSTER,
        "task_definition": "nightly-report",
        "launch_type": "EC2",
        **fields,
    }


def run_job(run: Run) -> None:
    job_world(run.sandbox)
    run.runtime({"version": 1, "jobs": [job(concurrency="forbid")]})
    firing = load_event("scheduler_run_job")
    run.invoke("run_job", firing)  # claim the firing, run, record
    run.invoke("run_job", firing)  # the same firing again: claimed already
    run.invoke("run_job", {"job": "nightly-report"})  # forbid: a task runs, skipped
    run.runtime({"version": 1, "jobs": [job(concurrency="replace")]})
    run.invoke("run_job", {"job": "nightly-report"})  # replace: stop the running task, start anew


def _cancelled(**_: Any) -> None:
    error = {"Error": {"Code": "TransactionCanceledException", "Message": "cancelled (test)"}}
    raise ClientError(error, "TransactWriteItems")


def run_queued_jobs(run: Run) -> None:
    job_world(run.sandbox)
    url, dlq_url = create_jobs_queue(run.sandbox.clients, name="ecspilot-iam-jobs")
    queued = job(concurrency="allow", queue={"allow": ["command"], "max_running": 5})
    rt = run.runtime({"version": 1, "jobs": [queued]}, jobs_dlq_url=dlq_url)  # as the template sets it
    sqs = run.sandbox.clients.sqs
    pump = QueuePump(run.sandbox.clients, url)  # visibility 0: what is not deleted comes again
    sqs.send_message(QueueUrl=url, MessageBody='{"job": "nightly-report"}')
    run.invoke("run_queued_jobs", pump.receive())  # claim, count running, run, record (one transaction)
    for body in ('{"job": "nightly-report"}', '{"job": "nope"}'):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    # the first message again (its claim is read), one more (running tasks described), one
    # unknown; the batch's transaction cancelled, so the run is recorded alone (BatchWriteItem)
    event = pump.receive()
    assert len(event["Records"]) == 3
    events = rt.clients.dynamodb.meta.events
    events.register("before-call.dynamodb.TransactWriteItems", _cancelled)
    try:
        pump.settle(event, run.invoke("run_queued_jobs", event))
    finally:
        events.unregister("before-call.dynamodb.TransactWriteItems", _cancelled)
    # a message waiting for room (max_running) on its last delivery: the redrive policy is read
    # and the message goes to the DLQ with its reason before SQS's redrive would move it
    full = job(concurrency="allow", queue={"allow": ["command"], "max_running": 1})
    run.runtime({"version": 1, "jobs": [full]}, jobs_dlq_url=dlq_url)
    sqs.send_message(QueueUrl=url, MessageBody='{"job": "nightly-report"}')
    event = pump.receive()
    for record in event["Records"]:
        record["attributes"]["ApproximateReceiveCount"] = "5"  # the queue's maxReceiveCount
    pump.settle(event, run.invoke("run_queued_jobs", event))


def track_deployments(run: Run) -> None:
    topic = run.sandbox.clients.sns.create_topic(Name="ecspilot-iam-notify")["TopicArn"]
    web_world(run.sandbox)
    job_world(run.sandbox)
    rt = run.runtime({**WEB, "jobs": [job()]}, notify_topic_arn=topic)
    with new_deployment_per_update():
        invoke("deploy_on_push", run.sandbox.push("web", "v1"))
    [record] = [r for r in rt.history.deployments("prod", "web") if r["image_tag"] == "v1"]
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/web"
    for sample, deployment in [
        ("ecs_deployment_completed", record["deployment_id"]),  # close ecspilot's record
        ("ecs_deployment_failed", "ecs-svc/0000000000000000001"),  # not ecspilot's: recorded, notified
    ]:
        run.invoke("track_deployments", load_event(sample, {"deploymentId": deployment}, resources=[arn]))
    # a circuit-breaker rollback: the service's newest deployments are read to find what it undid
    reason = f"ECS deployment circuit breaker: rolling back to deploymentId {record['deployment_id']}."
    rolled_back = {"deploymentId": "ecs-svc/0000000000000000002", "reason": reason}
    run.invoke("track_deployments", load_event("ecs_deployment_rolled_back", rolled_back, resources=[arn]))
    [started] = invoke("run_job", {"job": "nightly-report"})["task_arns"]
    task = rt.clients.ecs.describe_tasks(cluster=JOB_CLUSTER, tasks=[started])["tasks"][0]
    run.invoke("track_deployments", task_stopped_event("ecs_task_stopped_failed", task))
    promotions_by_the_tracker(run)  # before web turns LINEAR (its events then need the Stubber)
    linear_service_deployment(run, rt)
    service_task_stops(run, rt)
    pause_hooks(run, topic)


def service_task_stops(run: Run, rt: Runtime) -> None:
    """Issue 16: stops of web's tasks are recorded; five replacements make a crash loop (notified)."""
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    from ecspilot_dev.health_events import ELB_FAILED, service_task_stopped  # noqa: PLC0415

    td = rt.clients.ecs.describe_services(cluster="prod", services=["web"])["services"][0]["taskDefinition"]
    start = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    for n in range(5):
        at = start + timedelta(minutes=n)
        run.invoke("track_deployments", service_task_stopped(ELB_FAILED, n, at, task_definition=td))
    # a stop forwarded from the member account (web-far of the promotion scenario): its essential
    # containers are read there, through the role the tracker assumes
    from tests.promotion_world import TARGET_ACCOUNT, TARGET_REGION  # noqa: PLC0415

    far_td = f"arn:aws:ecs:{TARGET_REGION}:{TARGET_ACCOUNT}:task-definition/web:1"
    far = service_task_stopped(
        ELB_FAILED, 9, start, task_definition=far_td, account=TARGET_ACCOUNT, region=TARGET_REGION
    )
    assert run.invoke("track_deployments", far)["service"] == f"prod/web@{TARGET_ACCOUNT}:{TARGET_REGION}"


def pause_hooks(run: Run, topic: str) -> None:
    """A paused deployment (moto lacks these APIs: a Stubber answers): the image scan and the
    alarms evaluated, the hook continued; a redelivery; a hook that waits and is notified."""
    from tests.hook_world import World, hook_event  # noqa: PLC0415 - Stubber builders
    from tests.scans import scanned  # noqa: PLC0415

    session = boto3.Session(region_name=REGION)
    run.recorder.attach(session)
    with Stubber(session.client("ecs")) as stub:
        world = World.__new__(World)
        world.stub = stub
        world.clients = Clients(session=session, region=REGION, overrides={"ecs": stub.client})
        world.topic = topic
        if "web" not in [
            r["repositoryName"] for r in run.sandbox.clients.ecr.describe_repositories()["repositories"]
        ]:
            run.sandbox.repository("web")
        from tests.hook_world import DIGEST  # noqa: PLC0415

        run.sandbox.push("web", "v2", DIGEST)
        scanned(run.sandbox.clients.ecr, "web", DIGEST, {"LOW": 1})
        run.sandbox.clients.cloudwatch.put_metric_alarm(
            AlarmName="web-5xx",
            MetricName="5xx",
            Namespace="web",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
        )
        # quiet for 10 minutes cannot be proved in moto (it lacks the alarm history): the hook waits
        world.use(
            {"image_scan": {"max_severity": "HIGH"}, "alarms": {"names": ["web-5xx"], "quiet_minutes": 10}}
        )
        world.expect_images()
        run.invoke("track_deployments", hook_event("hook-1"))
        run.invoke("track_deployments", hook_event("hook-1"))  # redelivered: read, nothing answered
        world.use({"image_scan": {"max_severity": "HIGH"}})
        world.expect_images()
        world.expect_answer("CONTINUE", "hook-2")
        run.invoke("track_deployments", hook_event("hook-2"))
        stub.assert_no_pending_responses()


def linear_service_deployment(run: Run, rt: Runtime) -> None:
    """A LINEAR service: the tracker lists and describes its service deployment (moto lacks the
    API: botocore's Stubber answers it on the runtime's own ECS client)."""
    from datetime import UTC, datetime  # noqa: PLC0415

    from ecspilot_dev.service_deployments import (  # noqa: PLC0415
        OperationStubber,
        brief,
        deployment_arn,
        described,
        revision_arn,
        strategy_configuration,
    )

    conf = strategy_configuration("LINEAR")
    rt.clients.ecs.update_service(cluster="prod", service="web", deploymentConfiguration=conf)
    with new_deployment_per_update():
        invoke("deploy_on_push", run.sandbox.push("web", "v9"))
    [record] = [r for r in rt.history.deployments("prod", "web") if r["image_tag"] == "v9"]
    sd = deployment_arn(REGION, ACCOUNT, "prod", "web", "linear1")
    target = revision_arn(REGION, ACCOUNT, "prod", "web", record["deployment_id"])
    now = datetime.now(UTC)
    with OperationStubber(rt.clients.ecs) as stub:
        stub.add_response(
            "list_service_deployments", {"serviceDeployments": [brief(sd, "IN_PROGRESS", target, now)]}
        )
        shifting = described(
            sd, "IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", target, conf, created_at=now, updated_at=now
        )
        stub.add_response("describe_service_deployments", {"serviceDeployments": [shifting]})
        arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/web"
        event = load_event(
            "ecs_deployment_linear_in_progress", {"deploymentId": record["deployment_id"]}, resources=[arn]
        )
        run.invoke("track_deployments", event)
        assert stub.pending == 0


def reconcile(run: Run) -> None:
    sb = run.sandbox
    for cluster in ("alpha", "bravo"):
        sb.cluster(cluster)
    sb.task_definition("fluent-bit", {"fluent-bit": "public.ecr.aws/fluent-bit:stable"})
    web_world(sb)
    job_world(sb)
    sb.clients.scheduler.create_schedule_group(Name=GROUP)
    daemon = {"name": "log-agent", "clusters": "*", "task_definition": "fluent-bit"}
    jobs = [job(schedule="rate(1 day)"), job("cleanup", schedule="rate(1 hour)")]
    run.runtime({**WEB, "daemons": [daemon], "jobs": jobs}, **RECONCILE_SETTINGS)
    sb.push("web", "v1")
    run.invoke("reconcile", {})  # create daemons and schedules, catch up web and api
    sb.task_definition("fluent-bit", {"fluent-bit": "public.ecr.aws/fluent-bit:2"})
    run.runtime({**WEB, "daemons": [daemon], "jobs": [job(schedule="rate(2 days)")]}, **RECONCILE_SETTINGS)
    run.invoke("reconcile", {})  # update the daemons and a schedule, delete the other
    managed_daemons(run)
    # catch-up through the image scan gate (issue 14)
    from tests.scans import scanned  # noqa: PLC0415

    run.runtime({**GATED, "jobs": []}, **RECONCILE_SETTINGS)
    # v1 a minute old: moto's push times have one-second resolution, and catch-up only offers an
    # image pushed after the one running (in the same second, v9 would not be newer)
    set_image_pushed_at("web", fake_digest("web:v1"), seconds_ago=60)
    sb.push("web", "v9")
    scanned(sb.clients.ecr, "web", fake_digest("web:v9"), {"LOW": 1})
    run.invoke("reconcile", {})
    signature_timer(run)
    express(run, "reconcile", lambda: run.invoke("reconcile", {}))
    promotions_by_reconcile(run)
    open_deployments(run)
    paused_by_reconcile(run)


def paused_by_reconcile(run: Run) -> None:
    """Issue 22: a gated service paused at a hook whose event never arrived: reconcile lists its
    IN_PROGRESS service deployments, reads the hook, evaluates the image scan gate (the revision's
    images) and continues it (moto lacks these APIs: a Stubber answers on the runtime's client)."""
    from ecspilot_dev.service_deployments import (  # noqa: PLC0415
        OperationStubber,
        deployment_arn,
        expect_hooks,
        expect_paused_images,
    )
    from tests.scans import scanned  # noqa: PLC0415

    sb = run.sandbox
    rt = run.runtime(GATED, **RECONCILE_SETTINGS)
    digest = fake_digest("web:v12")
    sb.push("web", "v12", digest)
    scanned(sb.clients.ecr, "web", digest, {"LOW": 1})
    sd = deployment_arn(REGION, ACCOUNT, "prod", "web", "paused1")
    revision = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-revision/prod/web/77"
    operations = ("ListServiceDeployments", "DescribeServiceDeployments", "DescribeServiceRevisions")
    # the answer is sent once, through the single-attempt ECS client (tracking/hook_answer.py)
    once = rt.clients.single_attempt("ecs")
    with (
        OperationStubber(rt.clients.ecs, operations) as stub,
        OperationStubber(once, ("ContinueServiceDeployment",)) as answers,
    ):
        expect_hooks(stub, sd, revision, [("hook-r", "AWAITING_ACTION")])
        image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/web@{digest}"
        expect_paused_images(stub, sd, revision, [("app", digest, image)])
        answers.add_response(
            "continue_service_deployment",
            {"serviceDeploymentArn": sd},
            {"serviceDeploymentArn": sd, "hookId": "hook-r", "action": "CONTINUE"},
        )
        run.invoke("reconcile", {})
        assert stub.pending == 0
        assert answers.pending == 0


def open_deployments(run: Run) -> None:
    """Issue 14: a LINEAR deployment whose COMPLETED event came during the bake, rolled back with
    no further event: reconcile describes its service deployment (moto lacks the API: a Stubber
    answers on the runtime's own ECS client), holds the digest, moves the record, reads its
    stopped tasks for the message and publishes it."""
    from datetime import UTC, datetime  # noqa: PLC0415

    from ecspilot_dev.service_deployments import (  # noqa: PLC0415
        OperationStubber,
        brief,
        deployment_arn,
        described,
        revision_arn,
        strategy_configuration,
    )

    sb = run.sandbox
    topic = sb.clients.sns.create_topic(Name="ecspilot-iam-open-deployments")["TopicArn"]
    rt = run.runtime(WEB, notify_topic_arn=topic, **RECONCILE_SETTINGS)
    conf = strategy_configuration("LINEAR")
    rt.clients.ecs.update_service(cluster="prod", service="api", deploymentConfiguration=conf)
    with new_deployment_per_update():
        invoke("deploy_on_push", sb.push("web", "v11"))
    [record] = [r for r in rt.history.deployments("prod", "api") if r["image_tag"] == "v11"]
    sd = deployment_arn(REGION, ACCOUNT, "prod", "api", "baked1")
    target = revision_arn(REGION, ACCOUNT, "prod", "api", record["deployment_id"])
    now = datetime.now(UTC)
    with OperationStubber(rt.clients.ecs) as stub:
        stub.add_response(
            "list_service_deployments", {"serviceDeployments": [brief(sd, "IN_PROGRESS", target, now)]}
        )
        baking = described(sd, "IN_PROGRESS", "BAKE_TIME", target, conf, created_at=now, updated_at=now)
        stub.add_response("describe_service_deployments", {"serviceDeployments": [baking]})
        arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/api"
        event = load_event(
            "ecs_deployment_bluegreen_completed", {"deploymentId": record["deployment_id"]}, resources=[arn]
        )
        invoke("track_deployments", event)
        back = described(sd, "ROLLBACK_SUCCESSFUL", "CLEAN_UP", target, conf, created_at=now, updated_at=now)
        stub.add_response("describe_service_deployments", {"serviceDeployments": [back]})
        run.invoke("reconcile", {})
        assert stub.pending == 0
    assert (rt.history.deployment(record["deployment_id"]) or {})["status"] == "ROLLED_BACK"


def promotion_world(run: Run, targets: list[dict[str, Any]], **settings: Any) -> dict[str, Any]:
    """Issue 13 (after the function's other scenarios: web_world is there): promoted copies of
    web in this account (cluster ``prod``) and in another one (an assumed role); web:v7 deployed.
    Returns its deployment record."""
    from tests.promotion_world import ROLE_ARN, TARGET_ACCOUNT, TARGET_REGION, assumed_clients  # noqa: PLC0415

    sb = run.sandbox
    td = sb.task_definition("web-copies", {"app": sb.image("web", "v0")}, **ROLES, **TAGGED)
    for name in ("copy", "copy2", "later"):
        sb.service("prod", name, td)
    far = Sandbox(assumed_clients(sb.clients, ROLE_ARN, TARGET_REGION), TARGET_ACCOUNT, TARGET_REGION)
    far.cluster("prod")
    far.service("prod", "web", far.task_definition("web", {"app": sb.image("web", "v0")}))
    topic = sb.clients.sns.create_topic(Name="ecspilot-iam-promotion")["TopicArn"]
    config = {**WEB, "accounts": {"far": {"role_arn": ROLE_ARN, "region": TARGET_REGION}}}
    config["services"] = [*WEB["services"], *targets]
    rt = run.runtime(config, notify_topic_arn=topic, **settings)
    with new_deployment_per_update():
        invoke("deploy_on_push", sb.push("web", "v7"))
    [record] = [r for r in rt.history.deployments("prod", "web") if r["image_tag"] == "v7"]
    sb.clients.get("cloudwatch").put_metric_alarm(
        AlarmName="iam-flappy",
        MetricName="Errors",
        Namespace="web",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )
    return record


def promoted(
    name: str, service: str, bake: int, alarms: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "cluster": "prod",
        "service": service,
        "promote": {"from": "web", "bake_minutes": bake, "alarms": alarms or []},
        **extra,
    }


def completed_event(record: Mapping[str, Any], minutes_ago: int) -> dict[str, Any]:
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    at = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/web"
    return load_event(
        "ecs_deployment_completed",
        {"deploymentId": record["deployment_id"], "updatedAt": at},
        resources=[arn],
    )


def promotions_by_reconcile(run: Run) -> None:
    """A due own-account promotion, a cross-account one (AssumeRole), one blocked by an alarm
    whose history must be read (the notice: a conditional write, a record, a publish)."""
    targets = [
        promoted("web-copy", "copy", 30, ["iam-flappy"]),
        promoted("web-copy2", "copy2", 30),
        promoted("web-far", "web", 30, account="far"),
    ]
    record = promotion_world(run, targets, **RECONCILE_SETTINGS)
    with new_deployment_per_update():
        invoke("track_deployments", completed_event(record, 1))
    backdate(run, record, 31)
    with new_deployment_per_update():
        run.invoke("reconcile", {})


def backdate(run: Run, record: Mapping[str, Any], minutes: int) -> None:
    """Let the bake pass: the record completed ``minutes`` ago (ecspilot's own table)."""
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    at = (datetime.now(UTC) - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    run.sandbox.clients.dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": record["pk"]}, "sk": {"S": record["sk"]}},
        UpdateExpression="SET finished_at = :at",
        ExpressionAttributeValues={":at": {"S": at}},
    )


def promotions_by_the_tracker(run: Run) -> None:
    """On a COMPLETED event: a timer (bake 30), promotions right away (bake 0: own account and
    another through its role), one blocked by an alarm whose history must be read."""
    run.sandbox.clients.scheduler.create_schedule_group(Name=GROUP)
    gates = SIGNED["services"][0]["gates"]  # type: ignore[index]
    targets = [
        promoted("web-copy", "copy", 0, ["iam-flappy"]),
        promoted("web-copy2", "copy2", 0, gates=gates),  # issue 27: the release's signature is read
        promoted("web-far", "web", 0, account="far"),
        promoted("web-later", "later", 30),
    ]
    settings = {
        "schedule_group": GROUP,
        "reconcile_arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecspilot-Reconcile",
        "scheduler_role_arn": f"arn:aws:iam::{ACCOUNT}:role/ecspilot-PromotionTimerRole",
    }
    record = promotion_world(run, targets, **settings)
    from ecspilot_dev.service_deployments import OperationStubber  # noqa: PLC0415

    with (
        OperationStubber(runtime.current().clients.ecr, ("DescribeImageSigningStatus",)) as stub,
        new_deployment_per_update(),
    ):
        profile = gates["signature"]["profiles"][0]
        stub.add_response(
            "describe_image_signing_status",
            {"signingStatuses": [{"signingProfileArn": profile, "status": "COMPLETE"}]},
        )
        run.invoke("track_deployments", completed_event(record, 1))


MANAGED_PREFIX = f"arn:aws:ecs:{REGION}:{ACCOUNT}"


def managed_daemons(run: Run) -> None:
    """The Managed Daemons API (moto lacks it): a create, then an update of a pinned revision."""
    from tests.functional.test_managed_daemons import (  # noqa: PLC0415 - its Stubber builders
        CP_A,
        CP_B,
        DAEMON_ARN,
        OURS,
        daemon_td,
        expect_cluster,
        expect_existing,
        expect_latest,
        expect_update,
    )

    ecs = boto3.client("ecs", region_name=REGION)
    run.recorder.attach(ecs.meta)  # the recorder listens on the client's own hooks
    for pinned in (False, True):
        daemon = {
            "name": "node-agent",
            "clusters": ["prod"],
            "task_definition": "node-agent:3" if pinned else "node-agent",
            "capacity_providers": ["mi-general", "mi-gpu"],
        }
        with Stubber(ecs) as stub:
            expect_cluster(stub)
            if pinned:
                stub.add_response(
                    "describe_daemon_task_definition",
                    {"daemonTaskDefinition": {"daemonTaskDefinitionArn": daemon_td(3)}},
                    {"daemonTaskDefinition": "node-agent:3"},
                )
                expect_existing(stub, revision=2, providers=[CP_A, CP_B])
                expect_update(stub, revision=3, providers=[CP_A, CP_B])
            else:
                expect_latest(stub, 3)
                stub.add_response(
                    "list_daemons",
                    {"daemonSummariesList": []},
                    {"clusterArn": f"{MANAGED_PREFIX}:cluster/prod"},
                )
                stub.add_response(
                    "create_daemon",
                    {"daemonArn": DAEMON_ARN, "status": "ACTIVE"},
                    {
                        "daemonName": "node-agent",
                        "clusterArn": f"{MANAGED_PREFIX}:cluster/prod",
                        "daemonTaskDefinitionArn": daemon_td(3),
                        "capacityProviderArns": [CP_A, CP_B],
                        "tags": OURS,
                    },
                )
            rt = Runtime.build(
                settings=Settings(region=REGION, account_id=ACCOUNT, max_workers=1),
                config=parse_config({"version": 1, "daemons": [daemon]}),
                clients=Clients(region=REGION, overrides={"ecs": stub.client}),
            )
            runtime.reset(rt)
            result = run.invoke("reconcile", {})
            stub.assert_no_pending_responses()
            assert [a["change"] for a in result["actions"] if a["kind"] == "managed-daemon"] == [
                "update" if pinned else "create"
            ]


CHAT_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecspilot-chat"


def chat_answer(run: Run) -> None:
    """A chat button: a waiting pause hook approved (ContinueServiceDeployment through the
    Stubber), a release awaiting approval approved (promoted in its account, through its role),
    a failed deployment rolled back; each answered press claimed and told in its thread."""
    from tests.functional.test_rollback import CONFIG, completed, expect_open  # noqa: PLC0415
    from tests.hook_world import HOOK, World, hook_event  # noqa: PLC0415
    from tests.scans import scanned  # noqa: PLC0415

    topic = run.sandbox.clients.sns.create_topic(Name="ecspilot-iam-chat")["TopicArn"]
    web_world(run.sandbox)
    # a release awaiting approval, in another account
    # (promoted there), and one in this account whose alarm gate is read (and blocks: moto lacks
    # the alarm history)
    targets = [promoted("web-far", "web", 0, account="far"), promoted("web-copy", "copy", 0, ["iam-flappy"])]
    for target in targets:
        target["promote"]["approval"] = True
    record = promotion_world(run, targets, chat_role_arns=(CHAT_ROLE,))
    with new_deployment_per_update():
        invoke("track_deployments", completed_event(record, 1))
        for name in ("web-far", "web-copy"):
            press = {"action": "approve", "service": name, "release": record["deployment_id"]}
            assert run.invoke("chat_answer", press)["outcome"] == "answered"
    # a failed deployment rolled back (the service deployments API through the Stubber)
    from ecspilot_dev.service_deployments import OperationStubber  # noqa: PLC0415

    rt = run.runtime(CONFIG, notify_topic_arn=topic, chat_role_arns=(CHAT_ROLE,))
    with OperationStubber(rt.clients.ecs) as stub, new_deployment_per_update():
        completed(run.sandbox, rt, "v1")
        invoke("deploy_on_push", run.sandbox.push("web", "v2"))
        newest = rt.history.deployments("prod", "web", limit=1)[0]
        expect_open(stub)
        press = {"action": "rollback", "service": "web", "release": newest["deployment_id"]}
        assert run.invoke("chat_answer", press)["outcome"] == "answered"
        # one still deploying: stopped with ROLLBACK
        from tests.functional.test_rollback import SD_ARN  # noqa: PLC0415

        invoke("deploy_on_push", run.sandbox.push("web", "v4"))
        newest = rt.history.deployments("prod", "web", limit=1)[0]
        expect_open(stub, "IN_PROGRESS")
        stub.add_response(
            "stop_service_deployment",
            {"serviceDeploymentArn": SD_ARN},
            {"serviceDeploymentArn": SD_ARN, "stopType": "ROLLBACK"},
        )
        press = {"action": "rollback", "service": "web", "release": newest["deployment_id"]}
        assert run.invoke("chat_answer", press)["outcome"] == "answered"
    # a waiting pause hook approved, then pressed again
    session = boto3.Session(region_name=REGION)
    run.recorder.attach(session)
    with Stubber(session.client("ecs")) as ecs:
        world = World.__new__(World)
        world.stub = ecs
        world.clients = Clients(session=session, region=REGION, overrides={"ecs": ecs.client})
        world.topic = topic
        from tests.hook_world import DIGEST  # noqa: PLC0415

        run.sandbox.push("web", "v3", DIGEST)
        scanned(run.sandbox.clients.ecr, "web", DIGEST, {"LOW": 1})
        rt = world.use({"image_scan": {"max_severity": "HIGH"}, "approval": True})
        runtime.reset(
            Runtime.build(
                settings=replace(rt.settings, chat_role_arns=(CHAT_ROLE,)),
                config=rt.config,
                clients=rt.clients,
            )
        )
        world.expect_images()
        invoke("track_deployments", hook_event(HOOK))
        press = {"action": "approve", "service": "web-live", "hook": HOOK}
        a_failed_hook_answer(run, ecs, press)
        world.expect_answer("CONTINUE", HOOK)
        assert run.invoke("chat_answer", press)["outcome"] == "answered"
        assert run.invoke("chat_answer", press)["outcome"] == "already-answered"
        ecs.assert_no_pending_responses()
    chat_unfreeze_and_version(run, topic)


def a_failed_hook_answer(run: Run, ecs: Stubber, press: dict[str, Any]) -> None:
    """A press whose ContinueServiceDeployment fails: the hook's status is read at ECS (still
    waiting), nothing is answered."""
    from tests.hook_world import DEPLOYMENT, HOOK  # noqa: PLC0415

    ecs.add_client_error("continue_service_deployment", "ThrottlingException", http_status_code=400)
    waiting = {"hookId": HOOK, "targetType": "PAUSE", "status": "AWAITING_ACTION"}
    deployment = {
        "serviceDeploymentArn": DEPLOYMENT,
        "status": "IN_PROGRESS",
        "lifecycleStage": "POST_SCALE_UP",
        "lifecycleHookDetails": [waiting],
    }
    ecs.add_response(
        "describe_service_deployments",
        {"serviceDeployments": [deployment], "failures": []},
        {"serviceDeploymentArns": [DEPLOYMENT]},
    )
    assert run.invoke("chat_answer", press)["outcome"] == "failed"


def chat_unfreeze_and_version(run: Run, topic: str) -> None:
    """The chat's Unfreeze (a CLI freeze lifted) and a version awaiting approval approved by
    digest (issue 27: deployed through approve --digest's core, its gates read)."""
    from datetime import UTC, datetime  # noqa: PLC0415

    from ecspilot.aws.freezes import FreezeStore  # noqa: PLC0415
    from ecspilot_dev.service_deployments import OperationStubber  # noqa: PLC0415
    from tests.scans import scanned  # noqa: PLC0415

    sb = run.sandbox
    sb.repository("ver")
    sb.service(
        "prod", "ver", sb.task_definition("ver", {"app": sb.image("ver", "v1.0.0")}, **ROLES, **TAGGED)
    )
    profile = f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-profiles/release"
    source = {"repository": "ver", "tags": ["v*"], "order": "semver", "allow": "minor"}
    gates = {"image_scan": {"max_severity": "HIGH"}, "signature": {"profiles": [profile]}}
    cfg = {
        "version": 1,
        "services": [{"name": "ver", "cluster": "prod", "containers": {"app": source}, "gates": gates}],
    }
    rt = run.runtime(cfg, notify_topic_arn=topic, chat_role_arns=(CHAT_ROLE,))
    now = datetime.now(UTC)
    frozen = FreezeStore(rt.history).add(["ver"], "incident 42", CHAT_ROLE, now, None)
    press = {"action": "unfreeze", "service": "ver", "freeze": frozen.name}
    assert run.invoke("chat_answer", press)["outcome"] == "answered"
    digest = fake_digest("ver:v2.0.0")
    pushed = sb.push("ver", "v2.0.0", digest)
    scanned(sb.clients.ecr, "ver", digest, {"LOW": 1})
    with OperationStubber(rt.clients.ecr, ("DescribeImageSigningStatus",)) as stub:
        assert invoke("deploy_on_push", pushed)["services"][0]["outcome"] == "awaiting approval"
        stub.add_response(
            "describe_image_signing_status",
            {
                "repositoryName": "ver",
                "imageId": {"imageDigest": digest},
                "registryId": ACCOUNT,
                "signingStatuses": [{"signingProfileArn": profile, "status": "COMPLETE"}],
            },
            {"repositoryName": "ver", "imageId": {"imageDigest": digest}, "registryId": ACCOUNT},
        )
        with new_deployment_per_update():
            press = {"action": "approve", "service": "ver", "digest": digest}
            assert run.invoke("chat_answer", press)["outcome"] == "answered"
        stub.assert_no_pending_responses()


SCENARIOS: dict[str, Callable[[Run], None]] = {
    "deploy_on_push": deploy_on_push,
    "run_job": run_job,
    "run_queued_jobs": run_queued_jobs,
    "track_deployments": track_deployments,
    "reconcile": reconcile,
    "chat_answer": chat_answer,
}


@pytest.fixture
def run(recorder: CallRecorder, sandbox: Sandbox, make_runtime: MakeRuntime, frozen_tasks: None) -> Run:
    make_runtime({"version": 1})  # creates the state table once
    return Run(recorder, sandbox, make_runtime)


def test_every_function_has_scenarios() -> None:
    assert set(SCENARIOS) == set(function_ids())


@pytest.mark.parametrize("function", sorted(SCENARIOS))
def test_the_role_grants_exactly_what_the_function_calls(function: str, run: Run) -> None:
    # GIVEN the function's handler run through its scenarios
    SCENARIOS[function](run)
    called: dict[str, str] = {}
    for service, operation, params in run.calls:
        for action in needed(service, operation, params):
            called.setdefault(action, f"{service}.{operation}")
    # WHEN compared with what template.yaml grants the function's role
    logical_id = function_ids()[function]
    granted = {g.key: g.sid for g in function_grants(logical_id)}
    missing = sorted(set(called) - set(granted))
    unused = sorted(set(granted) - set(called))
    # THEN nothing is missing and nothing is granted for nothing
    problems = [
        f"{function} ({logical_id}) calls {a} (via {called[a]}) but its role lacks it" for a in missing
    ]
    problems += [
        f"{function} ({logical_id}) is granted {a} (Sid {granted[a]}) but nothing calls it" for a in unused
    ]
    assert not problems, "\n" + "\n".join(problems)
