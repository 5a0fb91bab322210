"""Running the real handlers locally: for the demo, the tests and the benchmarks.

Handlers live in ``functions/<name>/app.py`` beside the layer in a checkout of
the repository; events in ``events/<name>.json``.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO_ROOT / "functions"
EVENTS = REPO_ROOT / "events"

Handler = Callable[[Any, Any], Any]


@dataclass
class LocalContext:
    """The attributes of a Lambda context object that Powertools reads."""

    function_name: str = "ecspilot-local"
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ecspilot-local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/ecspilot-local"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


_handlers: dict[str, Handler] = {}


def load_handler(name: str) -> Handler:
    """Import ``functions/<name>/app.py`` (once) and return its ``lambda_handler``."""
    if name not in _handlers:
        path = FUNCTIONS / name / "app.py"
        spec = importlib.util.spec_from_file_location(f"ecspilot_fn_{name}", path)
        if spec is None or spec.loader is None:
            raise FileNotFoundError(path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _handlers[name] = _attributed(name, module.lambda_handler)
    return _handlers[name]


_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("ecspilot_function", default=None)


def running_functions() -> frozenset[str]:
    """The function whose handler this code runs in (its thread, or a thread its fan-out pool
    runs work on when the pool copies the context: tests/iam_check.py makes it): the AWS calls
    made there are that function's (the IAM check compares them with its role)."""
    name = _function.get()
    return frozenset({name}) if name else frozenset()


def _attributed(name: str, handler: Handler) -> Handler:
    def run(event: Any, context: Any) -> Any:
        token = _function.set(name)
        try:
            return handler(event, context)
        finally:
            _function.reset(token)

    return run


def invoke(name: str, event: Any) -> Any:
    """Invoke a handler as Lambda would, with a fresh context."""
    return load_handler(name)(event, LocalContext(function_name=name))


def load_event(name: str, detail: Mapping[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    """Load ``events/<name>.json``; ``detail`` replaces keys of its detail, ``top`` top-level keys."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    if detail:
        event["detail"] = {**event.get("detail", {}), **detail}
    event.update(top)
    return event


def task_stopped_event(
    sample: str, task: Mapping[str, Any], images: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The ``ECS Task State Change`` event ECS sends when ``task`` stops (moto sends none).

    ``events/<sample>.json`` gives the outcome (exit codes, stop code, reason, timestamps);
    ``task``, as RunTask or DescribeTasks returns it, gives the identity the tracker and the
    EventBridge rule match on: task ARN, cluster, task definition, ``startedBy``, group.
    ``images`` (container name -> image, from the task definition) sets what each container ran,
    with its ``imageDigest`` when the image is pinned by digest.
    """
    identity = ("taskArn", "clusterArn", "taskDefinitionArn", "startedBy", "group", "containerInstanceArn")
    event = load_event(sample, {k: task[k] for k in identity if task.get(k)}, resources=[task["taskArn"]])
    containers = []
    for sample_container in event["detail"].get("containers", []):
        container = {**sample_container, "taskArn": task["taskArn"]}
        image = (images or {}).get(container["name"])
        if image:
            container["image"] = image
            container.pop("imageDigest", None)
            if "@sha256:" in image:
                container["imageDigest"] = image.rsplit("@", 1)[1]
        containers.append(container)
    event["detail"]["containers"] = containers
    event["id"] = f"{sample}-{task['taskArn'].rsplit('/', 1)[-1]}"
    return event


class CallRecorder:
    """Records the AWS API calls (operation and parameters) made through a boto3 session.

    It listens to botocore's ``provide-client-params`` event, emitted once per
    API call (retries are not calls).

    Register it before the session creates its clients: clients copy the
    session's event hooks when they are made. Thread-safe enough for counting:
    list.append is atomic in CPython.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def attach(self, session: Any) -> CallRecorder:
        session.events.register("provide-client-params.*.*", self._record)
        return self

    def _record(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.service_model.service_name, model.name, dict(params)))

    def params(self, operation: str) -> list[dict[str, Any]]:
        """The parameters of every call of ``operation``."""
        return [p for _, op, p in self.calls if op == operation]

    def ops(self, service: str | None = None) -> list[str]:
        """Operation names in call order (optionally of one service)."""
        return [op for svc, op, _ in self.calls if service is None or svc == service]

    def count(self, operation: str) -> int:
        return sum(1 for _, op, _ in self.calls if op == operation)

    def writes(self) -> list[str]:
        """Operations that change state (anything but Describe/List/Get/Query/Scan)."""
        reads = ("Describe", "List", "Get", "Query", "Scan", "BatchGet")
        return [op for _, op, _ in self.calls if not op.startswith(reads)]

    def reset(self) -> None:
        self.calls.clear()


LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "ECSPILOT_ACCOUNT_ID": "123456789012",  # moto's default account: the events it trusts
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    """A free TCP port on loopback."""
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def local_aws(port: int | None = None) -> Iterator[str]:
    """Start moto's server in this process on loopback and point boto3 at it (fake credentials).

    Yields the endpoint URL. Environment variables are restored on exit.
    """
    import logging  # noqa: PLC0415

    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - moto is a dev/demo dependency

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log lines in the narration
    port = port or free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        with pointed_at(f"http://127.0.0.1:{port}") as endpoint:
            yield endpoint
    finally:
        server.stop()


@contextlib.contextmanager
def pointed_at(endpoint: str) -> Iterator[str]:
    """Point this process's boto3 at ``endpoint`` with fake credentials; restore the environment after."""
    saved = {k: os.environ.get(k) for k in [*LOCAL_AWS_ENV, "AWS_ENDPOINT_URL", "AWS_PROFILE"]}
    os.environ.update(LOCAL_AWS_ENV)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ.pop("AWS_PROFILE", None)
    try:
        yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def moto_api(endpoint: str, path: str, body: Any = None) -> str:
    """Call moto's own API (``/moto-api/...``): state manager, recorder, reset."""
    import urllib.request  # noqa: PLC0415

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{endpoint}/moto-api/{path}", data=data, method="POST" if data else "GET"
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return str(resp.read().decode())


@contextlib.contextmanager
def ecs_deployment_per_update() -> Iterator[None]:
    """Make moto start a new deployment (a new ``ecs-svc/...`` id) on every UpdateService that
    changes the task definition, as ECS does; moto otherwise keeps one PRIMARY deployment and
    its id for the life of a service. Works for moto in-process and for the in-process server.
    """
    from moto.ecs.models import EC2ContainerServiceBackend  # noqa: PLC0415 - dev/demo dependency

    original = EC2ContainerServiceBackend.update_service

    def update_service(self: Any, service_properties: dict[str, Any]) -> Any:
        if service_properties.get("task_definition"):
            service_properties["force_new_deployment"] = True
        return original(self, service_properties)

    EC2ContainerServiceBackend.update_service = update_service  # type: ignore[method-assign]
    try:
        yield
    finally:
        EC2ContainerServiceBackend.update_service = original  # type: ignore[method-assign]


# CloudFormation's pre-signed response URL as a stack deploy sends it (the custom resource answers
# only there); a loopback stand-in receives what is PUT to it through :func:`answers_to_loopback`
RESPONSE_URL = (
    "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/"
    "arn%3Aaws%3Acloudformation%3Aus-east-1%3A123456789012%3Astack/ecspilot/1%7CReconcile%7Creq-1"
    "?X-Amz-Signature=abc"
)


@contextlib.contextmanager
def answers_to_loopback(port: int) -> Iterator[None]:
    """While inside, the custom resource's answers (sent to a checked CloudFormation URL) go to
    ``http://127.0.0.1:<port>`` with the same path and query: the response bucket, on loopback."""
    import urllib.parse  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    from ecspilot.reconcile import custom_resource  # noqa: PLC0415

    def opener(request: urllib.request.Request, timeout: float) -> Any:
        parts = urllib.parse.urlsplit(request.full_url)
        request.full_url = urllib.parse.urlunsplit(("http", f"127.0.0.1:{port}", parts.path, parts.query, ""))
        return urllib.request.urlopen(request, timeout=timeout)

    custom_resource.use_opener(opener)
    try:
        yield
    finally:
        custom_resource.use_opener(None)
