"""The one place tests change moto's backend state directly, for behaviour moto does not simulate.

Every helper says what real AWS would have done that moto does not.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ecspilot_dev.sandbox import ACCOUNT, REGION


def set_image_pushed_at(repository: str, digest: str, seconds_ago: int) -> None:
    """Backdate an image's ``imagePushedAt`` (moto has one-second resolution, so two pushes
    in one test share a timestamp; real ECR orders them)."""
    from moto.ecr.models import ecr_backends  # noqa: PLC0415

    repo = ecr_backends[ACCOUNT][REGION].repositories[repository]
    for image in repo.images:
        if image.image_digest == digest:
            image.image_pushed_at = int(time.time()) - seconds_ago
            return
    raise LookupError(f"{repository}@{digest} not in moto")


def new_deployment_per_update() -> contextlib.AbstractContextManager[None]:
    """ECS starts a new deployment, with a new id, on every UpdateService that changes the task
    definition; moto keeps one deployment id per service. The tracker matches ECS's events by
    that id, so its tests need ECS's behaviour (``ecspilot_dev.local.ecs_deployment_per_update``,
    shared with the demo)."""
    from ecspilot_dev.local import ecs_deployment_per_update  # noqa: PLC0415

    return ecs_deployment_per_update()


def set_registered_at(family: str, revision: int, seconds_ago: int) -> None:
    """Give a task definition revision the ``registeredAt`` ECS records on every registration
    (moto keeps none, so DescribeTaskDefinition returns none)."""
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    from moto.ecs.models import ecs_backends  # noqa: PLC0415

    task_definition = ecs_backends[ACCOUNT][REGION].task_definitions[family][revision]
    task_definition.registered_at = datetime.now(UTC) - timedelta(seconds=seconds_ago)


@contextlib.contextmanager
def atomic_dynamodb_writes() -> Iterator[None]:
    """DynamoDB applies a conditional write atomically: its condition is checked and the item
    written with no other write in between. moto's in-memory backend checks then writes without
    a lock, so two threads can both pass a condition only one of them should. Tests that race
    real threads on conditional writes serialize moto's DynamoDB write operations, as DynamoDB
    does per item."""
    from moto.dynamodb.models import DynamoDBBackend  # noqa: PLC0415

    lock = threading.RLock()
    names = ("transact_write_items", "update_item", "put_item", "delete_item", "batch_write_item")
    originals = {name: getattr(DynamoDBBackend, name) for name in names}

    def locked(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return call

    for name, original in originals.items():
        setattr(DynamoDBBackend, name, locked(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(DynamoDBBackend, name, original)


@contextlib.contextmanager
def target_health(states: dict[str, tuple[str, str]]) -> Iterator[None]:
    """Real load balancers probe their targets and mark the failing ones ``unhealthy`` with a reason
    code; moto calls every registered target ``healthy``. Within the block, DescribeTargetHealth
    reports the targets named in ``states`` (target id -> (state, reason code)) so."""
    from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup  # noqa: PLC0415

    original = FakeTargetGroup.health_for

    def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        status = original(self, target, ec2_backend)
        if target["Id"] in states and target["Id"] in self.targets:
            state, reason = states[target["Id"]]
            return FakeHealthStatus(
                status.instance_id, status.port, status.health_check_port, state, reason, ""
            )
        return status

    FakeTargetGroup.health_for = health_for
    try:
        yield
    finally:
        FakeTargetGroup.health_for = original


@contextlib.contextmanager
def no_service_deployments_in_progress() -> Iterator[None]:
    """ECS answers ``ListServiceDeployments`` with an empty list for a service that has no
    service deployment in progress; moto does not implement the action (NotImplementedError).
    For tests whose services have nothing in progress and that do not stub ECS themselves."""
    import json  # noqa: PLC0415
    from unittest import mock  # noqa: PLC0415

    from moto.ecs.responses import EC2ContainerServiceResponse  # noqa: PLC0415

    def list_service_deployments(self: Any) -> str:
        return json.dumps({"serviceDeployments": []})

    with mock.patch.object(
        EC2ContainerServiceResponse, "list_service_deployments", list_service_deployments, create=True
    ):
        yield
