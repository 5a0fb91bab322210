"""The one place tests change moto's backend state directly, for behaviour moto does not simulate.

Every helper says what real AWS would have done that moto does not.
"""

from __future__ import annotations

import contextlib
import time

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
