"""template.yaml's guarantees that no linter checks: rules only take events from the stack's own
account and region, writes to services and daemons are scoped by cluster, every DLQ has an alarm."""

from __future__ import annotations

from typing import Any

import pytest

from tests.template import event_patterns, function_grants, function_ids, load_template, resolve

OWN_ORIGIN = {"account": [{"Ref": "AWS::AccountId"}], "region": [{"Ref": "AWS::Region"}]}
RULES = [(fn, name) for fn, lid in sorted(function_ids().items()) for name in sorted(event_patterns(lid))]


def resources() -> dict[str, Any]:
    return dict(load_template()["Resources"])


@pytest.mark.parametrize(("function", "rule"), RULES, ids=[f"{f}-{r}" for f, r in RULES])
def test_every_event_rule_takes_events_from_the_stacks_own_account_and_region_only(
    function: str, rule: str
) -> None:
    # (the tracker's rules also take the MemberAccountIds' forwarded events: by default there are
    # none, tests/unit/test_member_template.py checks them with members)
    pattern = resolve(event_patterns(function_ids()[function])[rule], "111122223333", "eu-south-1")
    assert {k: pattern.get(k) for k in OWN_ORIGIN} == {"account": ["111122223333"], "region": ["eu-south-1"]}


def test_the_functions_know_their_own_account_for_the_origin_check_in_code() -> None:
    env = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert env["ECSPILOT_ACCOUNT_ID"] == {"Ref": "AWS::AccountId"}


def test_every_dead_letter_queue_has_an_alarm() -> None:
    res = resources()
    queues = {lid for lid, r in res.items() if r["Type"] == "AWS::SQS::Queue" and "DeadLetter" in lid}
    alarmed = {
        d["Value"]["Fn::GetAtt"][0]
        for r in res.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        for d in r["Properties"].get("Dimensions", [])
        if d["Name"] == "QueueName"
    }
    assert queues == {
        "EventsDeadLetterQueue",
        "SchedulerDeadLetterQueue",
        "JobsDeadLetterQueue",
        "DeployContinuationDeadLetterQueue",
    }
    assert queues <= alarmed


SCOPED = {
    "ecs:UpdateService": "service/${ServiceClusterNamePattern}/*",
    "ecs:CreateService": "service/${ServiceClusterNamePattern}/*",
    "ecs:CreateDaemon": "daemon/${ServiceClusterNamePattern}/*",
    "ecs:UpdateDaemon": "daemon/${ServiceClusterNamePattern}/*",
}


@pytest.mark.parametrize("function", sorted(function_ids()))
def test_writes_to_services_and_daemons_are_scoped_by_cluster(function: str) -> None:
    for grant in function_grants(function_ids()[function]):
        if grant.key in SCOPED:
            assert str(grant.resource["Fn::Sub"]).endswith(SCOPED[grant.key]), (function, grant)
        if grant.key == "ecs:StopTask":
            statement = next(
                s
                for p in resources()[function_ids()[function]]["Properties"]["Policies"]
                for s in p.get("Statement", [])
                if s.get("Sid") == grant.sid
            )
            cluster = statement["Condition"]["ArnLike"]["ecs:cluster"]["Fn::Sub"]
            assert cluster.endswith(":cluster/${JobClusterNamePattern}")


@pytest.mark.parametrize("function", sorted(function_ids()))
def test_a_function_allowed_to_publish_knows_the_topic(function: str) -> None:
    # a function granted sns:Publish (a notification it sends) must be told the topic: without
    # ECSPILOT_NOTIFY_TOPIC_ARN it silently sends nothing (the IAM test cannot see this: it builds
    # the runtime with the topic itself)
    logical_id = function_ids()[function]
    publishes = any(g.key == "sns:Publish" for g in function_grants(logical_id))
    env = load_template()["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})
    assert ("ECSPILOT_NOTIFY_TOPIC_ARN" in env) == publishes, (function, publishes)
