"""Events from accounts and regions other than the function's own are ignored, logged and counted:
an ECR push from another account must never roll a service to that account's registry."""

from __future__ import annotations

from typing import Any

import pytest

from ecspilot.errors import SettingsError
from ecspilot.interfaces.origins import TrustedOrigins
from ecspilot.interfaces.runtime import Runtime
from ecspilot.interfaces.settings import Settings
from ecspilot_dev.local import CallRecorder, invoke, load_event
from ecspilot_dev.sandbox import ACCOUNT, REGION, Sandbox
from tests.conftest import MakeRuntime

ELSEWHERE = [("999999999999", REGION), (ACCOUNT, "eu-west-1"), ("999999999999", "eu-west-1")]
ELSEWHERE_IDS = ["other-account", "other-region", "both"]
CONFIG = {
    "version": 1,
    "services": [
        {"name": "web", "cluster": "prod", "containers": {"app": {"repository": "web", "tags": ["v*"]}}}
    ],
}


@pytest.fixture
def world(sandbox: Sandbox) -> Sandbox:
    sandbox.cluster("prod")
    sandbox.repository("web")
    sandbox.service("prod", "web", sandbox.task_definition("web", {"app": sandbox.image("web", "v0")}))
    return sandbox


def running_image(rt: Runtime) -> str:
    [svc] = rt.clients.ecs.describe_services(cluster="prod", services=["web"])["services"]
    td = rt.clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    return str(td["containerDefinitions"][0]["image"])


def untrusted_counted(out: str) -> bool:
    return any('"EventsUntrustedOrigin"' in line and '"_aws"' in line for line in out.splitlines())


@pytest.mark.parametrize(("account", "region"), ELSEWHERE, ids=ELSEWHERE_IDS)
def test_a_push_from_another_account_or_region_rolls_nothing(
    account: str,
    region: str,
    world: Sandbox,
    make_runtime: MakeRuntime,
    recorder: CallRecorder,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN a service following web v* and a push event that names another account/region
    rt = make_runtime(CONFIG)
    before = running_image(rt)
    event = {**world.push("web", "v1"), "account": account, "region": region}
    recorder.reset()
    # WHEN the real handler gets it
    result = invoke("deploy_on_push", event)
    # THEN nothing is called, the service keeps its image, and the event is logged and counted
    assert result == {"ignored": f"event from untrusted origin account {account} region {region}"}
    assert recorder.calls == []
    assert running_image(rt) == before
    assert untrusted_counted(capsys.readouterr().out)
    [logged] = [r for r in caplog.records if r.getMessage() == "event from an untrusted origin ignored"]
    assert (getattr(logged, "event_account", None), getattr(logged, "event_region", None)) == (
        account,
        region,
    )


def test_the_same_push_from_the_functions_own_account_rolls_the_service(
    world: Sandbox, make_runtime: MakeRuntime
) -> None:
    rt = make_runtime(CONFIG)
    invoke("deploy_on_push", world.push("web", "v1"))
    assert running_image(rt).startswith(f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/web@sha256:")


def test_without_a_known_account_no_event_is_trusted(world: Sandbox, make_runtime: MakeRuntime) -> None:
    # GIVEN a function whose own account is unknown (ECSPILOT_ACCOUNT_ID unset): fail closed
    rt = make_runtime(CONFIG, account_id=None)
    result = invoke("deploy_on_push", world.push("web", "v1"))
    assert "no trusted account" in result["ignored"]
    assert running_image(rt).endswith("web:v0")


@pytest.mark.parametrize("sample", ["ecs_deployment_completed", "ecs_task_stopped"])
@pytest.mark.parametrize(("account", "region"), ELSEWHERE, ids=ELSEWHERE_IDS)
def test_ecs_events_from_elsewhere_are_not_tracked(
    sample: str,
    account: str,
    region: str,
    make_runtime: MakeRuntime,
    recorder: CallRecorder,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_runtime(CONFIG)
    result = invoke("track_deployments", load_event(sample, account=account, region=region))
    assert result == {"ignored": f"event from untrusted origin account {account} region {region}"}
    assert recorder.calls == []
    assert untrusted_counted(capsys.readouterr().out)


def test_a_trusted_ecs_event_is_tracked(make_runtime: MakeRuntime, recorder: CallRecorder) -> None:
    make_runtime(CONFIG)
    result: dict[str, Any] = invoke("track_deployments", load_event("ecs_deployment_completed"))
    assert "ignored" not in result or "untrusted" not in str(result["ignored"])
    assert recorder.calls  # it looked the deployment up


# --- the trusted set ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "extra", "event", "trusted"),
    [
        (Settings(account_id=ACCOUNT, region=REGION), [], (ACCOUNT, REGION), True),
        (Settings(account_id=ACCOUNT, region=REGION), [], (ACCOUNT, "us-west-2"), False),
        (Settings(account_id=ACCOUNT, region=REGION), [], ("210987654321", REGION), False),
        (
            Settings(account_id=ACCOUNT, region=REGION),
            [("222222222222", "eu-west-1")],
            ("222222222222", "eu-west-1"),
            True,
        ),
        (
            Settings(account_id=ACCOUNT, region=REGION),
            [("222222222222", "eu-west-1")],
            ("222222222222", REGION),
            False,
        ),
        (Settings(account_id=None, region=REGION), [], (ACCOUNT, REGION), False),
        (Settings(account_id=ACCOUNT, region=None), [], (ACCOUNT, REGION), False),
    ],
    ids=[
        "own",
        "other-region",
        "other-account",
        "added-pair",
        "added-account-other-region",
        "no-account",
        "no-region",
    ],
)
def test_the_trusted_set_is_the_own_account_and_region_plus_added_pairs(
    settings: Settings, extra: list[tuple[str, str]], event: tuple[str, str], trusted: bool
) -> None:
    origins = TrustedOrigins.from_settings(settings, extra)
    assert (origins.why_untrusted(*event) is None) is trusted


@pytest.mark.parametrize("value", ["12345678901", "1234567890123", "12345678901\n", "١٢٣٤٥٦٧٨٩٠١٢", "abc"])
def test_a_malformed_account_setting_fails_fast(value: str) -> None:
    with pytest.raises(SettingsError, match="ECSPILOT_ACCOUNT_ID"):
        Settings.from_env({"ECSPILOT_ACCOUNT_ID": value})


def test_the_account_setting_is_read_from_the_environment() -> None:
    assert Settings.from_env({"ECSPILOT_ACCOUNT_ID": ACCOUNT, "AWS_REGION": REGION}).account_id == ACCOUNT
