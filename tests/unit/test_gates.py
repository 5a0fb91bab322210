"""The gates' pure decisions and config, table-tested: severities, a scan against a ceiling, a
hook's answer, the ``gates:`` and ``express:`` keys, the hook event model."""

from __future__ import annotations

from typing import Any

import pytest

from ecspilot.domain.config import parse_config
from ecspilot.domain.config.gates import Gates, ImageScanGate, severity_rank
from ecspilot.domain.envelope import parse_event
from ecspilot.domain.gates import AlarmState, ScanResult, hook_decision, scan_verdict, worst_severity
from ecspilot.domain.hook_events import EcsHookStateChangeEvent
from ecspilot.errors import ConfigError, EventError
from ecspilot_dev.local import load_event

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("severity", "rank"),
    [
        ("INFORMATIONAL", 0),
        ("UNDEFINED", 0),
        ("UNTRIAGED", 0),
        ("LOW", 1),
        ("MEDIUM", 2),
        ("HIGH", 3),
        ("CRITICAL", 4),
        ("SOMETHING-NEW", 4),
    ],
)
def test_severities_rank_lowest_to_highest_unranked_lowest_unknown_highest(severity: str, rank: int) -> None:
    assert severity_rank(severity) == rank


@pytest.mark.parametrize(
    ("ceiling", "status", "counts", "verdict", "reason_has"),
    [
        ("HIGH", "COMPLETE", {"CRITICAL": 1, "HIGH": 3}, "refuse", "1 CRITICAL"),
        ("HIGH", "COMPLETE", {"HIGH": 9, "MEDIUM": 2}, "pass", ""),
        ("HIGH", "COMPLETE", {}, "pass", ""),
        ("HIGH", "COMPLETE", {"CRITICAL": 0}, "pass", ""),
        ("MEDIUM", "COMPLETE", {"HIGH": 1, "CRITICAL": 2}, "refuse", "2 CRITICAL, 1 HIGH"),
        ("INFORMATIONAL", "COMPLETE", {"UNDEFINED": 4, "INFORMATIONAL": 1}, "pass", ""),
        ("INFORMATIONAL", "COMPLETE", {"LOW": 1}, "refuse", "1 LOW"),
        ("CRITICAL", "COMPLETE", {"CRITICAL": 5}, "pass", ""),
        ("HIGH", "IN_PROGRESS", {}, "pending", "being scanned"),
        ("HIGH", "NOT_FOUND", {}, "pending", "not scanned"),
        ("HIGH", "FAILED", {}, "refuse", "scan FAILED"),
        ("HIGH", "UNSUPPORTED_IMAGE", {}, "refuse", "scan UNSUPPORTED_IMAGE"),
    ],
)
def test_a_scan_against_its_ceiling(
    ceiling: str, status: str, counts: dict[str, int], verdict: str, reason_has: str
) -> None:
    got, reason = scan_verdict(ImageScanGate(max_severity=ceiling), ScanResult("web", DIGEST, status, counts))  # type: ignore[arg-type]
    assert got == verdict
    assert reason_has in reason


def test_the_worst_severity_ignores_zero_counts() -> None:
    assert worst_severity({"LOW": 2, "CRITICAL": 0}) == "LOW"
    assert worst_severity({}) is None


GATED = Gates.model_validate({"image_scan": {"max_severity": "HIGH"}, "alarms": {"names": ["a"]}})
APPROVAL = Gates.model_validate({"image_scan": {"max_severity": "HIGH"}, "approval": True})
QUIET = AlarmState(True)
FIRING = AlarmState(False, ("alarm a in ALARM",), ("a",))
MOVED = AlarmState(False, ("alarm a went into ALARM at 2026-11-29T10:00:00Z",))


@pytest.mark.parametrize(
    ("gates", "scans", "alarms", "action"),
    [
        (GATED, [("pass", "")], QUIET, "CONTINUE"),
        (GATED, [("refuse", "critical")], QUIET, "ROLLBACK"),
        (GATED, [("pass", "")], FIRING, "ROLLBACK"),
        (GATED, [("pending", "scan not complete")], FIRING, "ROLLBACK"),  # a firing alarm decides
        (GATED, [("pending", "scan not complete")], QUIET, "WAIT"),
        (GATED, [("pass", "")], MOVED, "WAIT"),
        (APPROVAL, [("pass", "")], None, "WAIT"),
        (APPROVAL, [("refuse", "critical")], None, "ROLLBACK"),  # approval never saves a refused image
        (None, [], None, "WAIT"),
        (Gates(), [], None, "CONTINUE"),
    ],
)
def test_a_hook_is_answered_from_its_gates(
    gates: Gates | None, scans: list[Any], alarms: AlarmState | None, action: str
) -> None:
    assert hook_decision(gates, scans, alarms).action == action


def test_a_waiting_hook_names_every_reason_in_order() -> None:
    decision = hook_decision(APPROVAL, [("pending", "scan not complete")], MOVED)
    assert decision.reasons == (
        "scan not complete",
        "alarm a went into ALARM at 2026-11-29T10:00:00Z",
        "approval required (gates.approval)",
    )


def service(**extra: Any) -> dict[str, Any]:
    return {"name": "web", "cluster": "prod", "containers": {"app": {"repository": "web"}}, **extra}


def test_the_gates_keys_parse() -> None:
    config = parse_config(
        {
            "version": 1,
            "services": [
                service(
                    gates={
                        "alarms": {"names": ["web-5xx"], "quiet_minutes": 15},
                        "image_scan": {"max_severity": "HIGH"},
                        "approval": True,
                    },
                    express=True,
                )
            ],
        }
    )
    svc = config.services[0]
    assert svc.gates is not None
    assert svc.gates.alarms is not None
    assert (svc.gates.alarms.quiet_minutes, svc.gates.approval, svc.express) == (15, True, True)


def test_an_alarm_list_is_short_for_its_names_quiet_for_the_default_time() -> None:
    config = parse_config({"version": 1, "services": [service(gates={"alarms": ["web-5xx", "web-p99"]})]})
    alarms = config.services[0].gates.alarms if config.services[0].gates else None
    assert alarms is not None
    assert (alarms.names, alarms.quiet_minutes) == (["web-5xx", "web-p99"], 10)


@pytest.mark.parametrize(
    ("gates", "path", "message"),
    [
        ({"alarms": {"names": []}}, "services[0].gates.alarms.names", "at least 1"),
        ({"alarms": []}, "services[0].gates.alarms.names", "at least 1"),
        ({"alarms": {"names": ["a", "a"]}}, "services[0].gates.alarms.names", "listed twice"),
        (
            {"alarms": {"names": ["a"], "quiet_minutes": -1}},
            "services[0].gates.alarms.quiet_minutes",
            "greater than or equal to 0",
        ),
        ({"image_scan": {"max_severity": "SEVERE"}}, "services[0].gates.image_scan.max_severity", "CRITICAL"),
        ({"image_scan": {}}, "services[0].gates.image_scan.max_severity", "required"),
        ({"approve": True}, "services[0].gates.approve", "not permitted"),
    ],
)
def test_a_bad_gate_is_reported_with_its_path(gates: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({"version": 1, "services": [service(gates=gates)]})
    [(where, what)] = error.value.problems
    assert where == path
    assert message in what


def test_the_sample_hook_event_parses_with_its_service_from_the_deployment_arn() -> None:
    event = parse_event(
        EcsHookStateChangeEvent, load_event("ecs_hook_awaiting_action"), "ECS Hook State Change"
    )
    assert event.cluster_service == ("prod", "web")
    assert event.detail.hook_id.startswith("ecs-pause-")
    assert event.detail.lifecycle_stage == "POST_TEST_TRAFFIC_SHIFT"
    assert event.detail.hook_type == "PAUSE"


def test_a_hook_event_without_a_deployment_arn_names_the_problem() -> None:
    raw = load_event("ecs_hook_awaiting_action", {"serviceDeploymentArn": ""}, resources=[])
    with pytest.raises(EventError, match="no service deployment ARN"):
        parse_event(EcsHookStateChangeEvent, raw, "ECS Hook State Change")
