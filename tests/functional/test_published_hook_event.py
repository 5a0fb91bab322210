"""AWS's published ``ECS Hook State Change`` event (hookType PAUSE, no targetType, no
timeoutAction) is answered by the gates through the real handler, and ``plan --event`` says the
same; every optional field of it may be absent (real DynamoDB refuses a placeholder without a
value, moto too)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ecspilot.interfaces.cli_plan import plan_event
from ecspilot_dev.local import CallRecorder, invoke, load_event
from tests.faults import Faults
from tests.hook_world import HOOK, TRACK, World, world_of

OPTIONAL = ("eventType", "hookType", "expiresAt", "lifecycleStage", "clusterArn", "serviceArn", "updatedAt")


@pytest.fixture
def world(moto: None, faults: Faults, recorder: CallRecorder) -> Iterator[World]:
    with world_of(faults, recorder) as w:
        yield w


def _published(drop: tuple[str, ...] = (), **top: Any) -> dict[str, Any]:
    event = load_event("ecs_hook_awaiting_action")
    event["detail"] = {k: v for k, v in event["detail"].items() if k not in drop}
    event.update(top)
    return event


def test_the_published_sample_carries_aws_fields_only() -> None:
    detail = load_event("ecs_hook_awaiting_action")["detail"]
    assert detail["hookType"] == "PAUSE"
    assert "targetType" not in detail
    assert "timeoutAction" not in detail


@pytest.mark.parametrize(
    "drop", [(), *[(f,) for f in OPTIONAL], OPTIONAL], ids=lambda d: "-".join(d) or "all"
)
def test_the_published_hook_event_is_answered_by_the_gates_and_plan_agrees(
    world: World, drop: tuple[str, ...]
) -> None:
    # GIVEN a service whose alarm gate passes (quiet for 0 minutes)
    rt = world.use({"alarms": {"names": ["web-5xx"], "quiet_minutes": 0}})
    event = _published(drop)
    # WHEN plan --event previews it, then the real handler runs it
    data, changed = plan_event(rt, event, "json")
    world.expect_answer("CONTINUE")
    out = invoke(TRACK, event)
    # THEN both say CONTINUE: the preview "would-answer", the handler answered (the Stubber saw it)
    assert data["moves"][0]["to"] == "CONTINUE"
    assert data["moves"][0]["change"] == "would-answer"
    assert changed is True
    assert out["action"] == "CONTINUE"
    item = world.hook_item()
    assert item["status"] == "CONTINUE"
    assert None not in item.values()
    assert "timeout_action" not in item


def test_the_published_pause_page_sample_without_resources_is_answered(world: World) -> None:
    # the pause-hooks page's sample has no ``resources``: the detail's ARN is enough
    world.use({"alarms": {"names": ["web-5xx"], "quiet_minutes": 0}})
    world.expect_answer("CONTINUE")
    assert invoke(TRACK, _published(resources=[]))["action"] == "CONTINUE"


def test_a_lambda_hook_event_is_not_answered_by_ecspilot(world: World) -> None:
    rt = world.use({"alarms": {"names": ["web-5xx"], "quiet_minutes": 0}})
    event = load_event("ecs_hook_awaiting_action", {"hookType": "AWS_LAMBDA"})
    assert "not answered by ecspilot" in invoke(TRACK, event)["ignored"]
    data, changed = plan_event(rt, event, "json")
    assert "not answered by ecspilot" in data["ignored"]
    assert changed is False
    assert world.hook_item(HOOK) == {}
