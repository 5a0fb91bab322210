"""The alarm gate against moto's CloudWatch (states) and a Stubber (history, which moto lacks)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from ecspilot.aws.alarms import AlarmReadError, alarm_gate

REGION = "us-east-1"


@pytest.fixture
def cloudwatch() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cloudwatch", region_name=REGION)


def _alarm(cw: Any, name: str) -> None:
    cw.put_metric_alarm(
        AlarmName=name,
        MetricName="5xx",
        Namespace="web",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )


def _now() -> datetime:
    return datetime.now(UTC)


def test_quiet_when_every_alarm_was_ok_before_the_window(cloudwatch: Any) -> None:
    _alarm(cloudwatch, "staging-5xx")
    since = _now() + timedelta(seconds=1)
    gate = alarm_gate(cloudwatch, ["staging-5xx"], since, since + timedelta(minutes=30))
    assert gate.quiet
    assert gate.reasons == []
    assert gate.firing == []


def test_an_alarm_in_alarm_now_blocks(cloudwatch: Any) -> None:
    _alarm(cloudwatch, "staging-5xx")
    cloudwatch.set_alarm_state(AlarmName="staging-5xx", StateValue="ALARM", StateReason="5xx")
    gate = alarm_gate(cloudwatch, ["staging-5xx"], _now() + timedelta(minutes=1), _now())
    assert not gate.quiet
    assert gate.firing == ["staging-5xx"]
    assert gate.reasons == ["alarm staging-5xx in ALARM"]


def test_an_alarm_that_fired_and_recovered_in_the_window_blocks_when_its_history_is_unreadable(
    cloudwatch: Any,
) -> None:
    # moto keeps no alarm history (DescribeAlarmHistory is not implemented): the gate cannot rule
    # out an ALARM in the window, so it blocks and says why
    _alarm(cloudwatch, "staging-5xx")
    since = _now() - timedelta(minutes=1)
    cloudwatch.set_alarm_state(AlarmName="staging-5xx", StateValue="ALARM", StateReason="5xx")
    cloudwatch.set_alarm_state(AlarmName="staging-5xx", StateValue="OK", StateReason="fine")
    gate = alarm_gate(cloudwatch, ["staging-5xx"], since, _now())
    assert not gate.quiet
    assert gate.firing == []
    assert gate.reasons[0].startswith("alarm staging-5xx changed state at ")
    assert "(now OK) and its history could not be read" in gate.reasons[0]


def test_a_missing_alarm_blocks(cloudwatch: Any) -> None:
    _alarm(cloudwatch, "staging-5xx")
    gate = alarm_gate(cloudwatch, ["staging-5xx", "staging-typo"], _now() + timedelta(seconds=1), _now())
    assert gate.reasons == ["alarm staging-typo does not exist"]


def test_no_names_makes_no_call() -> None:
    client = boto3.client("cloudwatch", region_name=REGION)
    with Stubber(client) as stub:  # any call would fail: nothing is queued
        assert alarm_gate(client, [], _now(), _now()).quiet
        stub.assert_no_pending_responses()


def test_unreadable_states_raise_a_typed_error() -> None:
    client = boto3.client("cloudwatch", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_client_error("describe_alarms", "Throttling", http_status_code=400)
        with pytest.raises(AlarmReadError, match="DescribeAlarms failed: Throttling"):
            alarm_gate(client, ["a"], _now(), _now())


def _history_item(when: datetime, old: str, new: str) -> dict[str, Any]:
    data = {"version": "1.0", "oldState": {"stateValue": old}, "newState": {"stateValue": new}}
    return {
        "AlarmName": "a",
        "Timestamp": when,
        "HistoryItemType": "StateUpdate",
        "HistorySummary": f"Alarm updated from {old} to {new}",
        "HistoryData": json.dumps(data),
    }


@pytest.mark.parametrize(
    ("items", "quiet"),
    [
        ([("INSUFFICIENT_DATA", "OK")], True),  # a quiet alarm getting data: not an ALARM
        ([("OK", "ALARM"), ("ALARM", "OK")], False),
        ([("ALARM", "OK")], False),  # in ALARM when the bake began
    ],
)
def test_the_history_tells_a_recovery_from_a_quiet_transition(
    items: list[tuple[str, str]], quiet: bool
) -> None:
    since = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    now = since + timedelta(minutes=30)
    client = boto3.client("cloudwatch", region_name=REGION)
    alarm = {
        "AlarmName": "a",
        "StateValue": "OK",
        "StateTransitionedTimestamp": since + timedelta(minutes=10),
        "StateUpdatedTimestamp": since + timedelta(minutes=10),
    }
    with Stubber(client) as stub:
        stub.add_response(
            "describe_alarms",
            {"MetricAlarms": [alarm], "CompositeAlarms": []},
            {"AlarmNames": ["a"], "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]},
        )
        history = [_history_item(since + timedelta(minutes=5 + i), o, n) for i, (o, n) in enumerate(items)]
        stub.add_response(
            "describe_alarm_history",
            {"AlarmHistoryItems": history},
            {"AlarmName": "a", "HistoryItemType": "StateUpdate", "StartDate": since, "EndDate": now},
        )
        gate = alarm_gate(client, ["a"], since, now)
        stub.assert_no_pending_responses()
    assert gate.quiet is quiet
    if len(items) == 2:
        assert gate.reasons == ["alarm a went into ALARM at 2026-11-29T12:05:00Z"]
    elif not quiet:
        assert gate.reasons == ["alarm a was in ALARM at 2026-11-29T12:00:00Z"]
