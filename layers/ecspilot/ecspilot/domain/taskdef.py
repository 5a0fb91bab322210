"""Task definitions: clone a revision with new container images. Pure.

The clone keeps every field of the source revision (roles, cpu/memory,
network mode, volumes, secrets, log configuration, placement constraints,
runtime platform, tags...) and drops only what DescribeTaskDefinition returns
but RegisterTaskDefinition does not take.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ecspilot.errors import DeployError

# Fields DescribeTaskDefinition returns that RegisterTaskDefinition refuses.
READ_ONLY_FIELDS = frozenset(
    {
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
        "registeredBy",
        "deregisteredAt",
        "deleteRequestedAt",
    }
)


def container_images(task_definition: Mapping[str, Any]) -> dict[str, str]:
    """Container name -> image of a task definition."""
    return {c["name"]: c.get("image", "") for c in task_definition.get("containerDefinitions", [])}


def clone_with_images(
    task_definition: Mapping[str, Any],
    images: Mapping[str, str],
    tags: Sequence[Mapping[str, str]] = (),
    accepted: Collection[str] | None = None,
) -> dict[str, Any]:
    """RegisterTaskDefinition arguments for ``task_definition`` with ``images`` (container -> image).

    ``accepted``, when given, is the set of parameters RegisterTaskDefinition
    takes (from botocore's model): anything else is dropped too, so a field AWS
    adds to the describe output tomorrow does not break registration.
    """
    present = container_images(task_definition)
    missing = sorted(set(images) - set(present))
    if missing:
        raise DeployError(
            f"container(s) {', '.join(missing)} not in task definition "
            f"(it has {', '.join(sorted(present)) or 'none'})",
            task_definition=task_definition.get("taskDefinitionArn"),
        )
    params = {
        k: copy.deepcopy(v)
        for k, v in task_definition.items()
        if k not in READ_ONLY_FIELDS and (accepted is None or k in accepted)
    }
    for container in params["containerDefinitions"]:
        if container["name"] in images:
            container["image"] = images[container["name"]]
    if tags:
        params["tags"] = [dict(t) for t in tags]
    return params


def same_registration(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when two sets of RegisterTaskDefinition arguments (from :func:`clone_with_images`)
    register the same thing: every field equal, tags compared as a set."""

    def normal(params: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(params)
        out["tags"] = sorted((str(t.get("key")), str(t.get("value"))) for t in params.get("tags", []))
        return out

    return normal(a) == normal(b)


def family_of(arn: str) -> str:
    """The family of a task definition ARN or ``family:revision``."""
    return family_revision(arn).rsplit(":", 1)[0]


def family_revision(arn: str) -> str:
    """``family:revision`` from a task definition ARN (or the input when already short)."""
    return arn.rsplit("/", 1)[-1]
