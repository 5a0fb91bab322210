"""Parsers accept AWS's field set, no more required (issue 22): for every event model and its
published sample (events/README.md), each optional field removed in turn still parses; each
required one removed is refused as a malformed event naming the field, never a crash."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import BaseModel

from ecspilot.domain.envelope import parse_event
from ecspilot.domain.events import (
    CloudTrailApiCallEvent,
    EcrImageActionEvent,
    EcsDeploymentStateChangeEvent,
    EcsTaskStateChangeEvent,
    EventBridgeEnvelope,
)
from ecspilot.domain.hook_events import EcsHookStateChangeEvent
from ecspilot.errors import EventError
from ecspilot.jobs.handler import RunJobEvent
from ecspilot.reconcile.custom_resource import CustomResourceRequest
from ecspilot_dev.local import load_event

MODELS: list[tuple[type[BaseModel], str]] = [
    (EcsHookStateChangeEvent, "ecs_hook_awaiting_action"),
    (EcsHookStateChangeEvent, "ecs_hook_succeeded"),
    (EcrImageActionEvent, "ecr_push"),
    (EcrImageActionEvent, "ecr_delete"),
    (EcsDeploymentStateChangeEvent, "ecs_deployment_in_progress"),
    (EcsDeploymentStateChangeEvent, "ecs_deployment_failed"),
    (EcsTaskStateChangeEvent, "ecs_task_stopped"),
    (EcsTaskStateChangeEvent, "ecs_service_task_drained"),
    (CloudTrailApiCallEvent, "cloudtrail_create_cluster"),
    (EventBridgeEnvelope, "eventbridge_scheduled_event"),
    (CustomResourceRequest, "cloudformation_create"),
    (RunJobEvent, "scheduler_run_job"),
]


def _required(model: type[BaseModel]) -> set[str]:
    return {(f.alias or name) for name, f in model.model_fields.items() if f.is_required()}


def _nested(model: type[BaseModel], key: str) -> type[BaseModel] | None:
    for name, f in model.model_fields.items():
        if (
            (f.alias or name) == key
            and isinstance(f.annotation, type)
            and issubclass(f.annotation, BaseModel)
        ):
            return f.annotation
    return None


def _removals(model: type[BaseModel], event: dict[str, Any]) -> list[tuple[tuple[str, ...], bool]]:
    """Each key of the event and of its nested models' objects: (path, required)."""
    out: list[tuple[tuple[str, ...], bool]] = []
    for key, value in event.items():
        out.append(((key,), key in _required(model)))
        inner = _nested(model, key)
        if inner is not None and isinstance(value, dict):
            out += [((key, *path), req) for path, req in _removals(inner, value)]
    return out


CASES = [
    pytest.param(model, sample, path, required, id=f"{sample}-{'.'.join(path)}")
    for model, sample in MODELS
    for path, required in _removals(model, load_event(sample))
]


@pytest.mark.parametrize(("model", "sample", "path", "required"), CASES)
def test_each_field_removed_parses_when_optional_and_is_named_when_required(
    model: type[BaseModel], sample: str, path: tuple[str, ...], required: bool
) -> None:
    event = copy.deepcopy(load_event(sample))
    where: dict[str, Any] = event
    for key in path[:-1]:
        where = where[key]
    del where[path[-1]]
    if not required:
        parse_event(model, event, sample)  # no crash, no error
        return
    with pytest.raises(EventError) as refused:
        parse_event(model, event, sample)
    assert path[-1] in str(refused.value)


def test_the_hook_model_requires_only_the_event_name_the_hook_id_and_a_deployment_arn() -> None:
    detail = _required(EcsHookStateChangeEvent.model_fields["detail"].annotation)  # type: ignore[arg-type]
    assert detail == {"eventName", "hookId"}
    minimal = load_event("ecs_hook_awaiting_action")
    minimal["detail"] = {k: minimal["detail"][k] for k in ("eventName", "hookId")}
    parsed = parse_event(EcsHookStateChangeEvent, minimal, "hook")
    assert parsed.cluster_service == ("prod", "web")  # from resources
    assert parsed.detail.is_pause  # the type unsaid: a pause hook
