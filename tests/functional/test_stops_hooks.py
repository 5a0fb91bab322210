"""Pause hooks during a freeze (issue 25): the gates never CONTINUE by themselves; the hook waits
for a person, and ``approve`` still continues it. ECS's deployment APIs are a Stubber's
(tests/functional/test_pause_hooks.py's world)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ecspilot.domain.config import parse_config
from ecspilot.interfaces import runtime
from ecspilot.interfaces.runtime import Runtime
from ecspilot.interfaces.settings import Settings
from ecspilot.reconcile.runbook import reconcile
from ecspilot.tracking.handler import reconcile_deployments
from ecspilot.tracking.hooks import approve_paused
from ecspilot_dev.local import invoke
from ecspilot_dev.sandbox import ACCOUNT, REGION
from ecspilot_dev.service_deployments import expect_hooks
from tests.conftest import TABLE
from tests.functional.test_pause_hooks import DIGEST, HOOK, TRACK, World, hook_event, world
from tests.hook_world import DEPLOYMENT, REVISION
from tests.scans import scanned

__all__ = ["world"]  # the fixture, shared with the pause hooks' tests


def test_gates_that_pass_during_a_freeze_wait_for_a_person_and_approve_still_continues(world: World) -> None:
    # GIVEN a service whose image scan gate passes, inside a config freeze
    now = datetime.now(UTC)
    freeze = {
        "name": "release-freeze",
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
    }
    service = {
        "name": "web-live",
        "cluster": "prod",
        "service": "web",
        "containers": {"app": {"repository": "web", "tags": ["v*"]}},
        "gates": {"image_scan": {"max_severity": "HIGH"}},
    }
    rt = Runtime.build(
        settings=Settings(
            table_name=TABLE, region=REGION, account_id=ACCOUNT, notify_topic_arn=world.topic, max_workers=1
        ),
        config=parse_config({"version": 1, "services": [service], "freezes": [freeze]}),
        clients=world.clients,
    )
    runtime.reset(rt)
    scanned(world.clients.ecr, "web", DIGEST, {"LOW": 1})
    world.expect_images()
    # WHEN the deployment pauses at its hook
    out = invoke(TRACK, hook_event())
    # THEN nothing is answered (no CONTINUE queued in the Stubber): the hook waits for a person
    assert out["action"] == "WAIT"
    assert out["reasons"][-1].startswith("frozen: release-freeze until ")
    assert out["reasons"][-1].endswith(": a person decides")
    assert world.hook_item()["status"] == "WAITING"
    # WHEN someone approves THEN it continues: a person may change it during a freeze
    world.expect_answer("CONTINUE")
    answered = approve_paused(rt.config, rt.clients, rt.history, "web-live")
    assert answered is not None
    assert (answered["action"], answered["hook_id"]) == ("CONTINUE", HOOK)


def test_a_hook_reconcile_finds_in_ecs_during_a_freeze_waits_for_a_person(world: World) -> None:
    # GIVEN a service whose alarm gate passes, inside a config freeze, paused in ECS at its hook
    # while the hook's event never arrived (reconcile finds it: issue 22)
    now = datetime.now(UTC)
    freeze = {
        "name": "release-freeze",
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
    }
    service = {
        "name": "web-live",
        "cluster": "prod",
        "service": "web",
        "containers": {"app": {"repository": "web", "tags": ["v*"]}},
        "gates": {"alarms": {"names": ["web-5xx"], "quiet_minutes": 0}},
    }
    rt = Runtime.build(
        settings=Settings(
            table_name=TABLE, region=REGION, account_id=ACCOUNT, notify_topic_arn=world.topic, max_workers=1
        ),
        config=parse_config({"version": 1, "services": [service], "freezes": [freeze]}),
        clients=world.clients,
    )
    runtime.reset(rt)
    expect_hooks(world.stub, DEPLOYMENT, REVISION, [(HOOK, "AWAITING_ACTION")])
    # WHEN reconcile's deployments part runs
    result = reconcile(rt, parts_to_run=[("deployments", reconcile_deployments)])
    # THEN the gates do not CONTINUE by themselves (no answer queued in the Stubber): it waits
    [action] = result.actions
    assert "waits for a person" in action.detail
    assert "frozen: release-freeze until " in action.detail
    assert world.hook_item()["status"] == "WAITING"
