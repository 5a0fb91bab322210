"""The strict reading (``ecspilot.domain.modeling.strict_validate``) is never more lenient than pydantic.

Every model is read both ways, pydantic's through the model's twin (``ecspilot.domain.modeling``):
whatever the strict reading accepts, pydantic accepts with the same values and the same fields set.
Inputs: AWS's published events in ``events/``, the configs of the repository, and every mutation
of each (each key removed; each value replaced by values of other types, edge strings and times).
The published events must be read strictly (a Lambda's first event needs no pydantic).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecspilot.domain.config import EcspilotConfig
from ecspilot.domain.events import (
    CloudTrailApiCallEvent,
    EcrImageActionEvent,
    EcsDeploymentStateChangeEvent,
    EcsTaskStateChangeEvent,
    EventBridgeEnvelope,
)
from ecspilot.domain.hook_events import EcsHookStateChangeEvent
from ecspilot.domain.modeling import PlainModel, from_twin, strict_validate, twin
from ecspilot.jobs.handler import RunJobEvent
from ecspilot.reconcile.custom_resource import CustomResourceRequest
from ecspilot.stopping.incidents import AlarmStateChangeEvent

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
# each published event and the model its handler reads it as
READ_AS: dict[str, type[PlainModel]] = {
    "cloudformation_create.json": CustomResourceRequest,
    "cloudtrail_create_cluster.json": CloudTrailApiCallEvent,
    "cloudtrail_delete_service.json": CloudTrailApiCallEvent,
    "cloudwatch_alarm_state_change.json": AlarmStateChangeEvent,
    "ecr_delete.json": EcrImageActionEvent,
    "ecr_push.json": EcrImageActionEvent,
    "ecr_push_failure.json": EcrImageActionEvent,
    "ecr_push_untagged.json": EcrImageActionEvent,
    "ecs_deployment_completed.json": EcsDeploymentStateChangeEvent,
    "ecs_deployment_failed.json": EcsDeploymentStateChangeEvent,
    "ecs_deployment_in_progress.json": EcsDeploymentStateChangeEvent,
    "ecs_deployment_rolled_back.json": EcsDeploymentStateChangeEvent,
    "ecs_hook_awaiting_action.json": EcsHookStateChangeEvent,
    "ecs_hook_succeeded.json": EcsHookStateChangeEvent,
    "ecs_task_stopped.json": EcsTaskStateChangeEvent,
    "ecs_task_failed_to_start.json": EcsTaskStateChangeEvent,
    "eventbridge_scheduled_event.json": EventBridgeEnvelope,
    "scheduler_run_job.json": RunJobEvent,
}
EVENT_MODELS = sorted(set(READ_AS.values()), key=lambda m: m.__name__)
REPLACEMENTS: list[Any] = [
    None,
    0,
    1,
    -1,
    2**40,
    True,
    False,
    1.5,
    "",
    " ",
    "x",
    "PUSH",
    "123456789012",
    "123456789012\n",
    "١٢٣٤٥٦٧٨٩٠١٢",
    "sha256:" + "a" * 64,
    "2026-12-07T06:00:00Z",
    "2026-12-07T06:00:00",
    "2026-02-30T00:00:00Z",
    "2026-12-07T06:00:00.1234567Z",
    1765087200,
    [],
    ["x"],
    [None],
    {},
    {"x": 1},
    "x" * 300,
]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key)
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield (*path, i)
            yield from _paths(item, (*path, i))


def _set(doc: Any, path: tuple[Any, ...], value: Any, delete: bool = False) -> Any:
    doc = json.loads(json.dumps(doc, default=str))
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def mutations(doc: Any) -> Iterator[Any]:
    yield doc
    for path in _paths(doc):
        yield _set(doc, path, None, delete=True)
        for value in REPLACEMENTS:
            yield _set(doc, path, value)


def _fields_sets(value: Any) -> Any:
    if isinstance(value, PlainModel):
        return (
            type(value).__name__,
            sorted(value.model_fields_set),
            [_fields_sets(v) for _, v in value._field_items()],
        )
    if isinstance(value, list):
        return [_fields_sets(v) for v in value]
    if isinstance(value, dict):
        return {k: _fields_sets(v) for k, v in value.items()}
    return None


def agree(model: type[PlainModel], data: Any) -> bool:
    """True when the strict reading accepted ``data`` (and then pydantic agrees); fails otherwise."""
    strict = strict_validate(model, data)
    if strict is None:
        return False
    by_pydantic = from_twin(twin(model).model_validate(data))  # raises when pydantic refuses
    assert strict == by_pydantic, (model.__name__, data)
    assert strict.model_dump() == by_pydantic.model_dump()
    assert _fields_sets(strict) == _fields_sets(by_pydantic), (model.__name__, data)
    return True


@pytest.mark.parametrize("name", sorted(READ_AS))
def test_a_published_event_is_read_without_pydantic(name: str) -> None:
    event = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    assert agree(READ_AS[name], event)


@pytest.mark.parametrize("model", EVENT_MODELS, ids=lambda m: m.__name__)
def test_no_mutation_of_an_event_is_read_more_leniently_than_pydantic(model: type[PlainModel]) -> None:
    accepted = tried = 0
    for name in READ_AS:
        event = json.loads((EVENTS / name).read_text(encoding="utf-8"))
        for variant in mutations(event):
            tried += 1
            accepted += agree(model, variant)
    assert tried > 500
    assert accepted > 0  # the strict path is exercised, not only refused


CONFIGS = sorted(
    [*ROOT.glob("config/*.yaml"), ROOT / "bench" / "coldstart.yaml", *ROOT.glob("tests/**/*.yaml")]
)


@pytest.mark.parametrize(
    "path", [p for p in CONFIGS if "version" in p.read_text(encoding="utf-8")], ids=lambda p: p.name
)
def test_no_mutation_of_a_config_is_read_more_leniently_than_pydantic(path: Path) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        pytest.skip("not a config document")
    models = [EcspilotConfig, *{type(v) for v in _models_in(doc)}]
    for variant in mutations(doc):
        for model in models:
            agree(model, variant)


def _models_in(doc: dict[str, Any]) -> Iterator[PlainModel]:
    """The config's nested models (each is also read alone, as code builds them)."""
    try:
        config = EcspilotConfig.model_validate(doc)
    except ValueError:
        return
    stack: list[Any] = [config]
    while stack:
        value = stack.pop()
        if isinstance(value, PlainModel):
            yield value
            stack.extend(v for _, v in value._field_items())
        elif isinstance(value, list | tuple):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())


def test_a_model_built_in_code_needs_no_pydantic() -> None:
    """What the Lambda path builds itself (a crash-loop policy's defaults) is read strictly."""
    from ecspilot.domain.config import CrashLoopConfig  # noqa: PLC0415

    assert strict_validate(CrashLoopConfig, {}) == CrashLoopConfig.model_validate({})


def test_models_given_to_a_model_are_taken_as_they_are() -> None:
    """As pydantic takes its own instances: nested plain instances validate (through the twin too,
    where the strict reading is not used: a service's ``crash_loop`` is a ``StrictBool``)."""
    from ecspilot.domain.config import ImageSource, ServiceConfig  # noqa: PLC0415

    service = ServiceConfig(name="web", cluster="prod", containers={"app": ImageSource(repository="web")})
    config = EcspilotConfig(version=1, services=[service])
    assert config.services == [service]
    assert type(config.services[0]) is ServiceConfig
    assert EcspilotConfig.model_validate({"version": 1, "services": [service]}) == config
    assert config.model_dump(exclude_unset=True) == {
        "version": 1,
        "services": [service.model_dump(exclude_unset=True)],
    }
