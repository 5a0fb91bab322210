"""Hardening: the deploy's guarantees when AWS misbehaves (redeliveries, races, lost writes).

Each step forces the fault (a hook on the handlers' own boto3 clients delays or fails one call,
as the functional tests' fault fixture does), narrates what the handlers answered, and checks
the outcome: the demo stops with an error if a guarantee did not hold.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import yaml

from ecspilot.errors import EcspilotError
from ecspilot.interfaces import runtime
from ecspilot.interfaces.present import say, table
from ecspilot_dev.demo.base import Demo, DemoCheckError
from ecspilot_dev.demo.tracking import ecs_event, track
from ecspilot_dev.local import RESPONSE_URL, answers_to_loopback, invoke
from ecspilot_dev.sandbox import fake_digest

CLUSTER = "vault"
SERVICES = ["api", "api-worker"]


@contextlib.contextmanager
def interfere(
    client: Any,
    operation: str,
    when: Callable[[Mapping[str, Any]], bool],
    *,
    delay: float = 0.0,
    error: str = "",
) -> Iterator[list[int]]:
    """While inside, delay (``delay``) or fail with AWS error code ``error`` (before sending, so
    beyond botocore's retries) every ``operation`` call of ``client`` whose parameters match
    ``when``. Yields a one-item list: how many calls it touched."""
    from botocore.awsrequest import AWSResponse, HTTPHeaders  # noqa: PLC0415

    fired = [0]
    event = f"before-call.{client.meta.service_model.service_name}.{operation}"

    def hook(params: Mapping[str, Any], **_: Any) -> Any:
        body = params.get("body", params)
        if not when(json.loads(body) if isinstance(body, (bytes, str)) and body else body):
            return None
        fired[0] += 1
        if delay:
            time.sleep(delay)
            return None
        status = 500
        http = AWSResponse(
            url="https://injected-fault.invalid", status_code=status, headers=HTTPHeaders(), raw=None
        )
        return http, {
            "Error": {"Code": error, "Message": f"injected {error} on {operation}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }

    client.meta.events.register_first(event, hook, unique_id=f"demo-{operation}")
    try:
        yield fired
    finally:
        client.meta.events.unregister(event, unique_id=f"demo-{operation}")


def _image_of(demo: Demo, task_definition: str) -> str:
    td = demo.clients.ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
    return str(td["containerDefinitions"][0]["image"])


def _services(demo: Demo) -> list[Any]:
    return list(demo.clients.ecs.describe_services(cluster=CLUSTER, services=SERVICES)["services"])


def _running(demo: Demo) -> dict[str, str]:
    """service -> the digest its app container runs."""
    out = {}
    for svc in _services(demo):
        out[svc["serviceName"]] = _image_of(demo, svc["taskDefinition"]).rsplit("@", 1)[-1]
    return out


def _primary(demo: Demo, service: str) -> str:
    svc = demo.clients.ecs.describe_services(cluster=CLUSTER, services=[service])["services"][0]
    return str(next(d["id"] for d in svc["deployments"] if d["status"] == "PRIMARY"))


def _outcomes(result: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    return {o["service"]: (o["outcome"], o["reason"] or "") for o in result.get("services", [])}


def _narrate(demo: Demo, label: str, result: Mapping[str, Any]) -> None:
    for service, (outcome, reason) in _outcomes(result).items():
        demo.note(f"{label}{service:<11} {outcome:<9} {reason}")


def _setup(demo: Demo) -> None:
    sb = demo.sandbox
    demo.step(
        f"Repository 'api', cluster '{CLUSTER}': services api (circuit breaker with rollback) and "
        "api-worker, both on api:v0"
    )
    sb.repository("api")
    sb.cluster(CLUSTER)
    for name in SERVICES:
        sb.service(CLUSTER, name, sb.task_definition(name, {"app": sb.image("api", "v0")}))
    path = Path(os.environ["ECSPILOT_CONFIG"])
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    source = {"app": {"repository": "api", "tags": ["v*"]}}
    config["services"] += [
        {"name": "api", "cluster": CLUSTER, "containers": source, "rollback": True},
        {"name": "api-worker", "cluster": CLUSTER, "containers": source},
    ]
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    runtime.reset(runtime.Runtime.build(clients=demo.clients))
    demo.note("config: + services api and api-worker, following api:v*")
    v0 = {_image_of(demo, svc["taskDefinition"]).rsplit(":", 1)[-1] for svc in _services(demo)}
    demo.check(v0 == {"v0"}, f"both services on api:v0, got {v0}")


PUSHED_AGO = {"v1": 50, "v2": 40, "v3": 30, "v4": 20, "v5": 10}


def _push(demo: Demo, tag: str) -> dict[str, Any]:
    """Push api:TAG, with ``imagePushedAt`` backdated so that v1 < v2 < ... < v5: ECR stamps it to
    the second, and backdating (on moto's own objects) spares the demo a sleep between pushes."""
    from moto.ecr.models import ecr_backends  # noqa: PLC0415 - the demo's local AWS

    event = demo.sandbox.push("api", tag)
    digest = fake_digest(f"api:{tag}")
    repository = ecr_backends[demo.sandbox.account][demo.sandbox.region].repositories["api"]
    image = next(i for i in repository.images if i.image_digest == digest)
    image.image_pushed_at = int(time.time()) - PUSHED_AGO[tag]
    return event


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The injected failures are logged at ERROR by the handlers, as they should be; the narration
    says what happened instead (``--verbose`` keeps the logs)."""
    from ecspilot.obs import logger  # noqa: PLC0415

    level = logger.log_level
    if level >= logging.ERROR:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _rolled_back_push_is_held(demo: Demo) -> None:
    demo.step("Push api:v1, then api:v2 (a bad release): both services roll each time")
    invoke("deploy_on_push", _push(demo, "v1"))
    v1_deployment = _primary(demo, "api")
    v1_revision = demo.clients.ecs.describe_services(cluster=CLUSTER, services=["api"])["services"][0][
        "taskDefinition"
    ]
    v2 = _push(demo, "v2")
    invoke("deploy_on_push", v2)
    v2_deployment = _primary(demo, "api")
    running = _running(demo)
    demo.check(running == dict.fromkeys(SERVICES, fake_digest("api:v2")), f"both run v2, got {running}")
    demo.check(v2_deployment != v1_deployment, "v2 is a new deployment")
    demo.step("ECS: v2's tasks fail on api; the circuit breaker fails the deployment and rolls back to v1")
    track(
        demo,
        ecs_event("ecs_deployment_failed", v2_deployment, "api", cluster=CLUSTER),
        "IN_PROGRESS -> FAILED",
    )
    demo.clients.ecs.update_service(cluster=CLUSTER, service="api", taskDefinition=v1_revision)
    rollback = _primary(demo, "api")
    reason = f"ECS deployment circuit breaker: rolling back to deploymentId {v1_deployment}."
    rolled_back = ecs_event("ecs_deployment_rolled_back", rollback, "api", cluster=CLUSTER, reason=reason)
    track(demo, rolled_back, "FAILED -> ROLLED_BACK")
    demo.check(_running(demo)["api"] == fake_digest("api:v1"), "api runs v1 again")
    demo.step("EventBridge delivers the api:v2 push again (at least once): api is held on v1")
    result = invoke("deploy_on_push", v2)
    _narrate(demo, "", result)
    outcome = _outcomes(result)
    demo.check(outcome["api"][0] == "held", f"redelivered v2 held on api, got {outcome['api']}")
    demo.check(_running(demo)["api"] == fake_digest("api:v1"), "api still runs v1 after the redelivery")


def _racing_pushes_end_on_the_newer_image(demo: Demo) -> None:
    demo.step(
        "Push api:v3 and api:v4; both events arrive at once: two invocations on two threads, forced "
        "into the worst order (v4 claims the services after v3; v3's UpdateService lands at ECS last)"
    )
    v3, v4 = _push(demo, "v3"), _push(demo, "v4")
    v3_digest, v4_digest = fake_digest("api:v3"), fake_digest("api:v4")

    def v3_update(params: Mapping[str, Any]) -> bool:
        return _image_of(demo, str(params.get("taskDefinition", ""))).endswith(v3_digest)

    def v4_claim(params: Mapping[str, Any]) -> bool:
        text = json.dumps(params.get("TransactItems", []), default=str)
        return '"STATE"' in text and v4_digest in text

    results: dict[str, Any] = {}

    def deliver(tag: str, event: dict[str, Any], barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            results[tag] = invoke("deploy_on_push", event)
        except Exception as exc:  # reported below: the check fails with it
            results[tag] = exc

    barrier = threading.Barrier(2)
    threads = [
        threading.Thread(target=deliver, args=(tag, event, barrier))
        for tag, event in (("v3", v3), ("v4", v4))
    ]
    with (
        interfere(demo.clients.dynamodb, "TransactWriteItems", v4_claim, delay=0.3),
        interfere(demo.clients.ecs, "UpdateService", v3_update, delay=0.8) as late,
    ):
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    for tag in ("v3", "v4"):
        demo.check(isinstance(results.get(tag), dict), f"the {tag} invocation answered: {results.get(tag)!r}")
        _narrate(demo, f"{tag}: ", results[tag])
    running = _running(demo)
    demo.note(
        f"v3's UpdateService calls delayed: {late[0]}; every service runs v4: {set(running.values()) == {v4_digest}}"
    )
    demo.check(set(running.values()) == {v4_digest}, f"every service ends on v4, got {running}")


def _missing_record_is_written_once(demo: Demo) -> None:
    demo.step("Push api:v5 while the state table refuses the deployment records (after both services rolled)")
    v5 = _push(demo, "v5")

    def record_write(params: Mapping[str, Any]) -> bool:
        return "DEPLOYMENT#" in json.dumps(params.get("TransactItems", []), default=str)

    with (
        _quiet(),
        interfere(demo.clients.dynamodb, "TransactWriteItems", record_write, error="InternalServerError"),
    ):
        try:
            invoke("deploy_on_push", v5)
            demo.check(False, "the invocation fails when its records are not written")
        except EcspilotError as exc:
            if isinstance(exc, DemoCheckError):
                raise
            demo.note(f"the invocation fails, so Lambda retries it: {str(exc).split(':', 1)[0]}")
    running = _running(demo)
    demo.check(running == dict.fromkeys(SERVICES, fake_digest("api:v5")), f"both rolled to v5: {running}")
    deployments = {service: _primary(demo, service) for service in SERVICES}
    demo.step("ECS reports both deployments COMPLETED before any ecspilot record exists")
    for service, deployment_id in deployments.items():
        completed = ecs_event("ecs_deployment_completed", deployment_id, service, cluster=CLUSTER)
        track(demo, completed, "-> COMPLETED")
    demo.note("the tracker created each record from the event alone (no image yet): deployer and tracker")
    demo.note("meet on one item per ECS deployment id, whichever writes first")
    demo.step("Lambda's retry of the push: the services already run v5; the missing records are written")
    _narrate(demo, "", invoke("deploy_on_push", v5))
    history = runtime.current().history
    rows = []
    for service, deployment_id in deployments.items():
        mine = [r for r in history.deployments(CLUSTER, service) if r.get("deployment_id") == deployment_id]
        rows += [{"service": service, **r} for r in mine]
        demo.check(len(mine) == 1, f"one record for {service}'s deployment, got {len(mine)}")
        demo.check(mine[0].get("image_tag") == "v5", f"{service}'s record names v5")
        demo.check(mine[0].get("status") == "COMPLETED", f"{service}'s record stays COMPLETED")
    table(rows, ["service", "deployment_id", "image_tag", "status", "trigger"])


class _Answers(BaseHTTPRequestHandler):
    """CloudFormation's pre-signed ResponseURL, on loopback: keeps each answer's body."""

    answers: ClassVar[list[dict[str, Any]]] = []

    def do_PUT(self) -> None:  # http.server names the handler after the method
        length = int(self.headers.get("Content-Length") or 0)
        self.answers.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:  # no access log in the narration
        return


def _custom_resource_always_answers(demo: Demo) -> None:
    demo.step("A stack deploy with a broken config: the custom resource answers FAILED at once")
    path = Path(os.environ["ECSPILOT_CONFIG"])
    good = path.read_text(encoding="utf-8")
    server = HTTPServer(("127.0.0.1", 0), _Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    request = {
        "ResponseURL": RESPONSE_URL,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/ecspilot/1",
        "RequestId": "demo-request",
        "LogicalResourceId": "Reconcile",
        "ResourceType": "Custom::Reconcile",
    }
    try:
        path.write_text(good.replace("version: 1", "version: 2", 1), encoding="utf-8")
        runtime.reset()  # the function builds its runtime (and loads the config) on this request
        for request_type in ("Update", "Delete"):
            with _quiet(), answers_to_loopback(server.server_port):
                invoke("reconcile", {**request, "RequestType": request_type})
            answer = _Answers.answers[-1]
            reason = answer["Reason"].splitlines()
            demo.note(f"{request_type:<7} -> {answer['Status']}: {reason[0][:100]}")
            for line in reason[1:4]:  # the config's problems: what to fix, not only that it failed
                demo.note(f"          {line.strip()[:110]}")
            if request_type == "Update":
                demo.check("version" in answer["Reason"], "the answer names the config problem (version)")
            demo.check(answer["Status"] == ("FAILED" if request_type == "Update" else "SUCCESS"), "answer")
    finally:
        server.shutdown()
        path.write_text(good, encoding="utf-8")
        runtime.reset(runtime.Runtime.build(clients=demo.clients))


def chapter_hardening(demo: Demo) -> None:
    """Redelivered, racing and half-recorded pushes, and a broken stack deploy: what still holds."""
    say("\n=== Hardening: what holds when events repeat, pushes race and writes fail ===")
    _setup(demo)
    _rolled_back_push_is_held(demo)
    _racing_pushes_end_on_the_newer_image(demo)
    _missing_record_is_written_once(demo)
    _custom_resource_always_answers(demo)
