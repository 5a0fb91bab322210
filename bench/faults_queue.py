"""The queue under faults: 50 messages, 30% of RunTask and DynamoDB calls failing, redelivered
until the queue is empty. Counts what matters: ran once, ran twice, never ran, in the DLQ (and
whether each DLQ entry says why).

Against one moto server process on loopback:

- the queue job ``render`` (EC2, no ``max_running``) on a cluster with 3 container instances,
  tasks frozen RUNNING by moto's state manager; the jobs queue and its DLQ with the redrive
  policy template.yaml gives them (``maxReceiveCount`` 5); the state table;
- 45 valid messages (each its own command) and 5 permanent ones (a forbidden override, an
  unknown job, bad JSON, a 10,000-deep body, a container the task definition lacks);
- the handler's boto3 session carries ``tests.faults.Faults`` (seeded, so a run is repeatable):
  RunTask fails 30% of the time (half throttled beyond retries, half applied with the reply
  lost), every DynamoDB call 30% of the time (half ``InternalServerError``, half
  ``ProvisionedThroughputExceededException``), all beyond botocore's retries;
- rounds: receive a batch of 10 (as Lambda's event source mapping does), invoke the real
  ``run_queued_jobs`` handler, delete what it did not report failed; until nothing is left
  (visible or in flight), at most 100 rounds.

Then each valid message's tasks are counted by the run tag RunTask puts on them
(``ecspilot:run``, a hash of the request key; a requeued copy keeps its original's key), and
the DLQ is read (an entry ecspilot moved names its source message; one SQS's redrive moved is
matched by its body). Targets, checked loudly: ran twice = 0, lost (never ran and not in the
DLQ) = 0, ran and dead-lettered = 0, every DLQ entry has a reason, the queue ends empty. A valid
message may end in the DLQ (with its reason, ``ecspilot_kind: transient``) when it failed on
each of its 5 deliveries before its run started: the figure to watch, not a target.
"""

from __future__ import annotations

import collections
import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import yaml

from bench.harness import check, queue_world
from bench.server import MotoServer, moto_server
from ecspilot.aws.clients import Clients
from ecspilot.interfaces import runtime
from ecspilot.interfaces.runtime import Runtime
from ecspilot.jobs.plan import RUN_TAG, started_by
from ecspilot.obs import logger, metrics
from ecspilot_dev.local import invoke
from ecspilot_dev.sandbox import QueuePump, Sandbox
from tests.faults import Faults

CLUSTER = "faultfarm"  # unrelated to any other name: moto matches clusters by substring
JOB = "render"
TABLE = "bench-faults-state"
VALID = 45
FAILURE_RATE = 0.3
MAX_ROUNDS = 100
SEED = 7
INVALID = {
    "forbidden override": json.dumps({"job": JOB, "overrides": {"taskRoleArn": "arn:aws:iam::1:role/admin"}}),
    "unknown job": json.dumps({"job": "nope"}),
    "bad JSON": "{not json",
    "10,000-deep body": "[" * 10_000 + "]" * 10_000,
    "unknown container": json.dumps({"job": JOB, "overrides": {"container": "sidecar", "command": ["x"]}}),
}


def job_config() -> dict[str, Any]:
    return {
        "version": 1,
        "jobs": [
            {
                "name": JOB,
                "cluster": CLUSTER,
                "task_definition": "faults-render",
                "launch_type": "EC2",
                "queue": {"allow": ["command"]},
            }
        ],
    }


def inject(faults: Faults) -> None:
    """30% of RunTask and of DynamoDB calls fail, beyond retries, seeded."""
    half = FAILURE_RATE / 2
    faults.fail("RunTask", "error", code="ThrottlingException", rate=half, seed=SEED)
    faults.fail("RunTask", "lost-reply", rate=half / (1 - half), seed=SEED + 1)
    faults.fail("*", "error", service="dynamodb", code="InternalServerError", rate=half, seed=SEED + 2)
    faults.fail(
        "*",
        "error",
        service="dynamodb",
        code="ProvisionedThroughputExceededException",
        rate=half / (1 - half),
        seed=SEED + 3,
    )


def build_world(server: MotoServer) -> tuple[Sandbox, str, str]:
    return queue_world(server, CLUSTER, "faults-render", TABLE, "faults-jobs")


def handler_runtime(tmp: Path, faults: Faults, dlq_url: str) -> Runtime:
    """The handler's runtime, on a session whose calls the faults may fail (a warm Lambda)."""
    path = tmp / "ecspilot-faults.yaml"
    path.write_text(yaml.safe_dump(job_config()), encoding="utf-8")
    session = boto3.Session()
    faults.attach(session)
    settings = runtime.Settings(config_path=str(path), table_name=TABLE, jobs_dlq_url=dlq_url)
    return Runtime.build(settings=settings, clients=Clients(session=session))


def source_id(message: dict[str, Any]) -> str:
    """The message id of the source message ecspilot moved to the DLQ ("" for SQS's redrive)."""
    attrs = message.get("MessageAttributes", {})
    return str(attrs.get("ecspilot_source_message_id", {}).get("StringValue", ""))


def send_all(sb: Sandbox, queue_url: str) -> tuple[dict[str, str], dict[str, str]]:
    """Send the 50 messages; return message id -> label, and message id -> body."""
    bodies = [
        (f"valid {i}", json.dumps({"job": JOB, "overrides": {"command": ["render", str(i)]}}))
        for i in range(VALID)
    ]
    bodies += list(INVALID.items())
    labels: dict[str, str] = {}
    sent: dict[str, str] = {}
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        entries: list[Any] = [{"Id": str(i), "MessageBody": body} for i, (_, body) in enumerate(chunk)]
        resp = sb.clients.sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        for ok in resp["Successful"]:
            labels[ok["MessageId"]], sent[ok["MessageId"]] = chunk[int(ok["Id"])]
    return labels, sent


def left_in_queue(sb: Sandbox, queue_url: str) -> int:
    attrs = sb.clients.sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


def tasks_per_run(sb: Sandbox) -> collections.Counter[str]:
    arns = sb.clients.ecs.list_tasks(cluster=CLUSTER, startedBy=started_by(JOB))["taskArns"]
    runs: collections.Counter[str] = collections.Counter()
    for start in range(0, len(arns), 100):
        tasks = sb.clients.ecs.describe_tasks(
            cluster=CLUSTER, tasks=arns[start : start + 100], include=["TAGS"]
        )
        for task in tasks["tasks"]:
            tags = {t["key"]: t["value"] for t in task.get("tags", [])}
            runs[tags.get(RUN_TAG, "")] += 1
    return runs


def run_id(message_id: str) -> str:
    """The run id of a queue message (ecspilot.queue.outcomes.request_key, hashed as ecspilot.jobs.plan.run_id_for does)."""
    return hashlib.sha256(f"queue:{JOB}:{message_id}".encode()).hexdigest()[:16]


def dead_letters(sb: Sandbox, dlq_url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        got = sb.clients.sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=60
        ).get("Messages", [])
        if not got:
            return out
        out.extend(got)


def run(server: MotoServer, tmp: Path) -> dict[str, Any]:
    sb, queue_url, dlq_url = build_world(server)
    faults = Faults()
    rt = handler_runtime(tmp, faults, dlq_url)
    labels, bodies = send_all(sb, queue_url)
    inject(faults)
    pump = QueuePump(sb.clients, queue_url)
    rounds = invocations_failed = 0
    started = time.perf_counter()
    while left_in_queue(sb, queue_url) and rounds < MAX_ROUNDS:
        rounds += 1
        event = pump.receive(10)
        if not event["Records"]:
            continue
        runtime.reset(rt)
        try:
            response = invoke("run_queued_jobs", event)
        except Exception:  # the whole batch comes back: Lambda would retry it
            invocations_failed += 1
            continue
        finally:
            runtime.reset()
            metrics.clear_metrics()
        pump.settle(event, response)
    wall = time.perf_counter() - started
    runs = tasks_per_run(sb)
    dlq = dead_letters(sb, dlq_url)
    # a message ecspilot moved names its source; one SQS's redrive moved keeps its body (unique here)
    by_body = {body: message_id for message_id, body in bodies.items()}
    dlq_ids = {source_id(m) or by_body.get(m["Body"], ""): m for m in dlq}
    rows: dict[str, int] = collections.Counter()
    for message_id, label in labels.items():
        n = runs.get(run_id(message_id), 0)
        if label.startswith("valid"):
            rows["valid: ran once"] += n == 1
            rows["valid: ran twice or more"] += n > 1
            rows["valid: in the DLQ"] += message_id in dlq_ids
            rows["valid: ran and in the DLQ"] += n > 0 and message_id in dlq_ids
            rows["valid: lost (never ran, not in the DLQ)"] += n == 0 and message_id not in dlq_ids
        else:
            rows["invalid: in the DLQ"] += message_id in dlq_ids
            rows["invalid: ran"] += n > 0
            rows["invalid: lost (not in the DLQ)"] += message_id not in dlq_ids
    no_reason = [m for m in dlq if not m.get("MessageAttributes", {}).get("ecspilot_reason")]
    return {
        "rows": rows,
        "rounds": rounds,
        "wall": wall,
        "dlq": dlq,
        "no_reason": len(no_reason),
        "faults": _fired(faults),
        "invocations_failed": invocations_failed,
        "left": left_in_queue(sb, queue_url),
        "labels": labels,
        "by_body": by_body,
    }


def _fired(faults: Faults) -> dict[str, tuple[int, int]]:
    out = {}
    for r in faults.rules:
        what = f"{r.service or 'ecs'} {r.operation} {r.mode}" + (f" {r.code}" if r.mode == "error" else "")
        out[what] = (r.fired, r.seen)
    return out


def print_table(result: dict[str, Any]) -> None:
    rows = result["rows"]
    print(
        f"## The queue under faults: {VALID + len(INVALID)} messages, {FAILURE_RATE:.0%} of RunTask and DynamoDB calls failing"
    )
    print(
        "moto server (own process, loopback); the real `run_queued_jobs` handler, warm; faults injected on its "
        f"boto3 session by tests.faults.Faults (seed {SEED}), beyond botocore's retries; batches of 10 "
        "redelivered until the queue is empty (redrive maxReceiveCount 5, as template.yaml)\n"
    )
    print("| messages | outcome | count | target |")
    print("| --- | --- | --- | --- |")
    targets = {
        "valid: ran twice or more": 0,
        "valid: ran and in the DLQ": 0,
        "valid: lost (never ran, not in the DLQ)": 0,
        "invalid: ran": 0,
        "invalid: lost (not in the DLQ)": 0,
    }
    for key in [
        "valid: ran once",
        "valid: ran twice or more",
        "valid: in the DLQ",
        "valid: ran and in the DLQ",
        "valid: lost (never ran, not in the DLQ)",
        "invalid: in the DLQ",
        "invalid: ran",
        "invalid: lost (not in the DLQ)",
    ]:
        group, outcome = key.split(": ", 1)
        size = VALID if group == "valid" else len(INVALID)
        target = targets.get(key)
        mark = "" if target is None else f"= {target} ({'met' if rows[key] == target else 'MISSED'})"
        print(f"| {group} ({size}) | {outcome} | {rows[key]} | {mark} |")
    dlq = result["dlq"]
    print(
        f"| DLQ | entries with a reason | {len(dlq) - result['no_reason']} of {len(dlq)} "
        f"| all ({'met' if result['no_reason'] == 0 else 'MISSED'}) |"
    )
    print(
        f"\n{result['rounds']} batches delivered in {result['wall']:.1f} s; {result['invocations_failed']} invocation(s) "
        f"failed as a whole; {result['left']} message(s) left in the queue.\n"
    )
    print("Faults fired (fired / calls seen by the rule):\n")
    print("| fault | fired | seen |")
    print("| --- | --- | --- |")
    for what, (fired, seen) in result["faults"].items():
        print(f"| {what} | {fired} | {seen} |")
    print("\nDLQ reasons:\n")
    for m in dlq:
        reason = m.get("MessageAttributes", {}).get("ecspilot_reason", {}).get("StringValue", "(none)")
        label = result["labels"].get(source_id(m) or result["by_body"].get(m["Body"], ""), "?")
        print(f"- {label}: {reason[:160]}")
    print()


def main() -> None:
    logger.setLevel("ERROR")  # the handler warns on every injected fault: the table is the narration
    with moto_server() as server, tempfile.TemporaryDirectory() as tmpdir:
        result = run(server, Path(tmpdir))
        print_table(result)
        rows = result["rows"]
        check(rows["valid: ran twice or more"] == 0, "a message ran twice")
        check(rows["valid: lost (never ran, not in the DLQ)"] == 0, "a valid message was lost")
        check(rows["valid: ran and in the DLQ"] == 0, "a message that ran was dead-lettered")
        check(rows["invalid: lost (not in the DLQ)"] == 0, "an invalid message was lost")
        check(rows["invalid: ran"] == 0, "an invalid message ran")
        check(result["no_reason"] == 0, "a DLQ entry has no reason")
        check(result["left"] == 0, "messages left in the queue")


if __name__ == "__main__":
    main()
