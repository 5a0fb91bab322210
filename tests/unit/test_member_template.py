"""member/template.yaml and the main template's cross-account pieces, as data.

The member account's role may do what a promotion does there and nothing more (the comparison
with the calls a real promotion makes is in tests/functional/test_member_iam.py); its forward rules
take exactly the events the tracker's rules take, from that account only; the main template's bus
policy lets exactly ``MemberAccountIds`` in, and the tracker's rules take their events.
"""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from moto.events.models import EventPattern

from ecspilot_dev.local import REPO_ROOT, load_event
from tests.template import event_patterns, function_ids, load_template, resolve

MEMBER = REPO_ROOT / "member" / "template.yaml"
ECSPILOT, HOME = "123456789012", "us-east-1"
TARGET, TARGET_REGION = "222222222222", "eu-west-1"
MEMBER_PARAMS = {"EcspilotAccountId": ECSPILOT, "EcspilotRegion": HOME}
BUS = f"arn:aws:events:{HOME}:{ECSPILOT}:event-bus/default"


def member(params: dict[str, Any] | None = None) -> dict[str, Any]:
    """member/template.yaml's resources as a stack instance in TARGET/TARGET_REGION would get them
    (conditions applied: a resource whose condition is false is left out)."""
    template = load_template(MEMBER)
    values = {**MEMBER_PARAMS, **(params or {})}
    out = {}
    for logical_id, resource in template["Resources"].items():
        if "Condition" in resource and not resolve(
            {"Condition": resource["Condition"]}, TARGET, TARGET_REGION, values, MEMBER
        ):
            continue
        out[logical_id] = resolve(resource, TARGET, TARGET_REGION, values, MEMBER)
    return out


def statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in resource["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge's matching, as moto implements it (values, prefix, anything-but, ...)."""
    return bool(EventPattern.load(json.dumps(pattern)).matches_event(cast(Any, event)))


def in_target(
    sample: str, account: str = TARGET, region: str = TARGET_REGION, **detail: Any
) -> dict[str, Any]:
    """A sample event from events/ as ECS sends it in ``account``/``region``."""
    event = load_event(sample, detail or None)
    text = json.dumps(event).replace(ECSPILOT, account).replace(f":{HOME}:", f":{region}:")
    return {**json.loads(text), "account": account, "region": region}


# --- the role ecspilot assumes -------------------------------------------------------------------

# what the deploy core calls in a target account (aws.ecs_reads, aws.revisions, deploy.commit),
# with the implied grants: the clone's tags at registration, its roles passed to ECS tasks
DEPLOY_CORE = {
    "ecs:DescribeServices",
    "ecs:UpdateService",
    "ecs:DescribeTaskDefinition",
    "ecs:RegisterTaskDefinition",
    "ecs:TagResource",
    "iam:PassRole",
}


def test_the_deployer_role_may_do_what_the_deploy_core_does_there_and_nothing_else() -> None:
    role = member()["DeployerRole"]
    actions = {a for s in statements(role) for a in as_list(s["Action"])}
    assert actions == DEPLOY_CORE
    assert all(s["Effect"] == "Allow" for s in statements(role))
    # no wildcard action, no delete, no desired-count-only permission of any kind
    assert not [a for a in actions if "*" in a or ":Delete" in a]


def test_the_deployer_role_is_named_as_the_config_expects() -> None:
    assert member()["DeployerRole"]["Properties"]["RoleName"] == "ecspilot-deployer"


@pytest.mark.parametrize("pattern", ["*", "prod", "prod-*"])
def test_services_are_read_and_updated_on_the_configured_clusters_only(pattern: str) -> None:
    role = member({"ServiceClusterNamePattern": pattern})["DeployerRole"]
    for statement in statements(role):
        if {"ecs:UpdateService", "ecs:DescribeServices"} & set(as_list(statement["Action"])):
            assert statement["Resource"] == f"arn:aws:ecs:{TARGET_REGION}:{TARGET}:service/{pattern}/*"


def test_pass_role_is_limited_to_ecs_task_roles_handed_to_ecs_tasks() -> None:
    [statement] = [s for s in statements(member()["DeployerRole"]) if "iam:PassRole" in as_list(s["Action"])]
    assert statement["Resource"] == f"arn:aws:iam::{TARGET}:role/ecs-*"
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}


def test_tags_are_allowed_only_when_registering_a_task_definition() -> None:
    [statement] = [
        s for s in statements(member()["DeployerRole"]) if "ecs:TagResource" in as_list(s["Action"])
    ]
    assert statement["Resource"] == f"arn:aws:ecs:{TARGET_REGION}:{TARGET}:task-definition/*"
    assert statement["Condition"] == {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}}


def trust(params: dict[str, Any] | None = None) -> dict[str, Any]:
    [statement] = member(params)["DeployerRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    return dict(statement)


def test_only_ecspilots_function_roles_may_assume_the_deployer_role() -> None:
    statement = trust()
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{ECSPILOT}:root"}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {
        "ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ECSPILOT}:role/ecspilot-*"}
    }


def test_operators_running_the_cli_may_be_trusted_by_role_arn_and_no_one_else() -> None:
    sso = f"arn:aws:iam::{ECSPILOT}:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_Deployer_*"
    for params in ({"OperatorRoleArns": sso}, {"OperatorRoleArns": sso, "ExternalId": "s3cr3t"}):
        statement = trust(params)
        assert statement["Condition"]["ArnLike"] == {
            "aws:PrincipalArn": [f"arn:aws:iam::{ECSPILOT}:role/ecspilot-*", sso]
        }
        assert statement["Principal"] == {"AWS": f"arn:aws:iam::{ECSPILOT}:root"}


def test_an_external_id_when_given_is_required_as_well() -> None:
    statement = trust({"ExternalId": "s3cr3t"})
    assert statement["Condition"]["StringEquals"] == {"sts:ExternalId": "s3cr3t"}
    assert statement["Condition"]["ArnLike"] == {
        "aws:PrincipalArn": f"arn:aws:iam::{ECSPILOT}:role/ecspilot-*"
    }


def test_alarms_are_readable_only_when_a_source_stage_lives_in_the_account() -> None:
    assert "SourceStageAlarmsPolicy" not in member()
    policy = member({"SourceStageAlarms": "enabled"})["SourceStageAlarmsPolicy"]
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["cloudwatch:DescribeAlarms", "cloudwatch:DescribeAlarmHistory"]
    assert statement["Resource"] == f"arn:aws:cloudwatch:*:{TARGET}:alarm:*"


def test_a_second_region_of_the_same_account_creates_no_second_role() -> None:
    # IAM is global: a StackSet instance per region would collide on the role's name
    resources = member({"CreateDeployerRole": "false", "SourceStageAlarms": "enabled"})
    assert "DeployerRole" not in resources
    assert "SourceStageAlarmsPolicy" not in resources
    assert {"ForwardDeploymentStateChange", "ForwardTaskStopped", "ForwardEventsRole"} <= set(resources)


# --- forwarding the member account's ECS events ----------------------------------------------------

FORWARDS = {
    "ForwardDeploymentStateChange": "DeploymentStateChange",
    "ForwardTaskStopped": "JobTaskStopped",
    "ForwardServiceTaskStopped": "ServiceTaskStopped",
}


@pytest.mark.parametrize(("forward", "tracker_rule"), FORWARDS.items())
def test_each_forward_rule_takes_what_the_trackers_rule_takes_from_the_member_account_only(
    forward: str, tracker_rule: str
) -> None:
    # GIVEN the forward rule as a stack instance in the target account gets it
    pattern = member()[forward]["Properties"]["EventPattern"]
    # AND the tracker's rule as ecspilot's stack gets it, with the target account as a member
    tracker = resolve(
        event_patterns(function_ids()["track_deployments"])[tracker_rule],
        ECSPILOT,
        HOME,
        {"MemberAccountIds": TARGET, "MemberRegions": TARGET_REGION},
    )
    # THEN they take the same events; the forward rule only its own account's and region's
    assert {k: v for k, v in pattern.items() if k not in ("account", "region")} == {
        k: v for k, v in tracker.items() if k not in ("account", "region")
    }
    assert (pattern["account"], pattern["region"]) == ([TARGET], [TARGET_REGION])


@pytest.mark.parametrize("forward", FORWARDS)
def test_events_are_forwarded_to_ecspilots_bus_with_a_role_that_may_put_there_only(forward: str) -> None:
    resources = member()
    [target] = resources[forward]["Properties"]["Targets"]
    assert target["Arn"] == BUS
    assert target["RoleArn"] == {"Fn::GetAtt": ["ForwardEventsRole", "Arn"]}
    [statement] = statements(resources["ForwardEventsRole"])
    assert (statement["Action"], statement["Resource"]) == ("events:PutEvents", BUS)
    [assume] = resources["ForwardEventsRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert assume["Principal"] == {"Service": "events.amazonaws.com"}
    assert assume["Condition"] == {"StringEquals": {"aws:SourceAccount": TARGET}}


def test_a_bus_of_ecspilots_own_can_be_named() -> None:
    arn = f"arn:aws:events:{HOME}:{ECSPILOT}:event-bus/ecspilot"
    resources = member({"EcspilotEventBusArn": arn})
    assert resources["ForwardDeploymentStateChange"]["Properties"]["Targets"][0]["Arn"] == arn
    assert statements(resources["ForwardEventsRole"])[0]["Resource"] == arn


def deployment_pattern() -> dict[str, Any]:
    return dict(member()["ForwardDeploymentStateChange"]["Properties"]["EventPattern"])


def task_pattern() -> dict[str, Any]:
    return dict(member()["ForwardTaskStopped"]["Properties"]["EventPattern"])


@pytest.mark.parametrize(
    "sample",
    [
        "ecs_deployment_completed",
        "ecs_deployment_failed",
        "ecs_deployment_in_progress",
        "ecs_deployment_rolled_back",
    ],
)
def test_the_deployment_rule_forwards_awss_sample_deployment_events_of_its_account(sample: str) -> None:
    assert matches(deployment_pattern(), in_target(sample))
    # not the same event from another account or region (nor ecspilot's own)
    assert not matches(deployment_pattern(), in_target(sample, account="333333333333"))
    assert not matches(deployment_pattern(), in_target(sample, region="us-west-2"))
    assert not matches(deployment_pattern(), load_event(sample))


@pytest.mark.parametrize("sample", ["ecs_task_stopped", "ecs_task_stopped_failed"])
def test_the_task_rule_forwards_stopped_tasks_ecspilot_started(sample: str) -> None:
    assert matches(task_pattern(), in_target(sample, startedBy="ecspilot-job:nightly-report"))
    assert not matches(task_pattern(), in_target(sample, startedBy="ecs-svc/1234567890"))
    assert not matches(task_pattern(), in_target(sample, startedBy="ecspilot-job:x", lastStatus="RUNNING"))
    assert not matches(task_pattern(), in_target(sample, account="333333333333", startedBy="ecspilot-x"))


@pytest.mark.parametrize("sample", ["ecr_push", "cloudtrail_create_cluster", "ecs_task_stopped"])
def test_other_events_are_not_forwarded(sample: str) -> None:
    event = in_target(sample)
    if sample == "ecs_task_stopped":
        event["detail"].pop("startedBy", None)  # a task nobody tagged as ecspilot's
    assert not matches(deployment_pattern(), event)
    assert not matches(task_pattern(), event)


# --- the main template: the bus policy and the tracker's rules ----------------------------------


def main_resource(logical_id: str, params: dict[str, Any]) -> dict[str, Any] | None:
    resource = load_template()["Resources"][logical_id]
    if "Condition" in resource and not resolve({"Condition": resource["Condition"]}, ECSPILOT, HOME, params):
        return None
    return dict(resolve(resource, ECSPILOT, HOME, params))


@pytest.mark.parametrize(
    "members",
    [["222222222222"], ["222222222222", "444444444444", "555555555555"]],
)
def test_the_bus_policy_lets_exactly_the_member_accounts_put_events(members: list[str]) -> None:
    policy = main_resource("EcspilotMemberAccountsBusPolicy", {"MemberAccountIds": ",".join(members)})
    assert policy is not None
    statement = policy["Properties"]["Statement"]
    assert policy["Properties"]["EventBusName"] == "default"
    assert statement == {
        "Effect": "Allow",
        "Principal": {"AWS": members},
        "Action": "events:PutEvents",
        "Resource": BUS,
        # only the sources member/template.yaml forwards: ECS's events (issue 24) and the incident
        # alarms' state changes (issue 25)
        "Condition": {"StringEquals": {"events:source": ["aws.ecs", "aws.cloudwatch"]}},
    }
    forwarded = {
        str(source)
        for r in load_template(MEMBER)["Resources"].values()
        if r["Type"] == "AWS::Events::Rule"
        for source in r["Properties"]["EventPattern"].get("source", [])
    }
    assert forwarded == set(statement["Condition"]["StringEquals"]["events:source"])


def test_without_member_accounts_there_is_no_bus_policy() -> None:
    assert main_resource("EcspilotMemberAccountsBusPolicy", {}) is None


def tracker_origins(params: dict[str, Any]) -> dict[str, tuple[list[str], list[str]]]:
    out = {}
    for function, logical_id in function_ids().items():
        for name, pattern in event_patterns(logical_id).items():
            resolved = resolve(pattern, ECSPILOT, HOME, params)
            out[f"{function}.{name}"] = (resolved["account"], resolved["region"])
    return out


def test_the_trackers_rules_take_the_member_accounts_events_and_no_other_rule_does() -> None:
    # GIVEN two member accounts, one in another region
    origins = tracker_origins(
        {"MemberAccountIds": "222222222222,444444444444", "MemberRegions": TARGET_REGION}
    )
    # THEN the tracker's rules take their forwarded events (as well as the stack's own)
    # (a new tracker rule taking them needs its forward rule in member/template.yaml, and a row in
    # FORWARDS); the pause hooks' rule stays the stack's own (hooks are answered in ecspilot's account)
    tracker = {
        k: v for k, v in origins.items() if k.startswith("track_deployments.") and v != ([ECSPILOT], [HOME])
    }
    assert set(tracker) == {f"track_deployments.{rule}" for rule in FORWARDS.values()}
    assert origins["track_deployments.HookStateChange"] == ([ECSPILOT], [HOME])
    for accounts, regions in tracker.values():
        assert accounts == [ECSPILOT, "222222222222", "444444444444"]
        assert regions == [HOME, TARGET_REGION]
    # AND the incident alarms' rule (issue 25: reconcile's) takes them too (ForwardIncidentAlarms)
    assert origins["reconcile.IncidentAlarms"] == (
        [ECSPILOT, "222222222222", "444444444444"],
        [HOME, TARGET_REGION],
    )
    # AND every other rule (pushes, drift) still takes the stack's own account and region only
    others = {k: v for k, v in origins.items() if k not in tracker and k != "reconcile.IncidentAlarms"}
    assert others
    assert all(origin == ([ECSPILOT], [HOME]) for origin in others.values()), others


def test_a_forwarded_event_matches_the_trackers_rule_only_from_a_member_account() -> None:
    params = {"MemberAccountIds": TARGET, "MemberRegions": TARGET_REGION}
    rule = resolve(
        event_patterns(function_ids()["track_deployments"])["DeploymentStateChange"], ECSPILOT, HOME, params
    )
    assert matches(rule, in_target("ecs_deployment_completed"))
    assert matches(rule, load_event("ecs_deployment_completed"))
    assert not matches(rule, in_target("ecs_deployment_completed", account="333333333333"))
    default = resolve(
        event_patterns(function_ids()["track_deployments"])["DeploymentStateChange"], ECSPILOT, HOME
    )
    assert not matches(default, in_target("ecs_deployment_completed"))


# --- service task stops (issue 16's crash loops) of the member accounts' services ------------------

SERVICE_STOP = "ecs_service_task_failed_elb_health_checks"


def service_task_rule(params: dict[str, Any]) -> dict[str, Any]:
    pattern = event_patterns(function_ids()["track_deployments"])["ServiceTaskStopped"]
    return dict(resolve(pattern, ECSPILOT, HOME, params))


def test_a_member_accounts_service_task_stop_is_forwarded_and_taken_by_the_trackers_rule() -> None:
    # GIVEN ecspilot's stack with the target account as a member, and the target's forward rule
    members = {"MemberAccountIds": TARGET, "MemberRegions": TARGET_REGION}
    rule, forward = service_task_rule(members), member()["ForwardServiceTaskStopped"]["Properties"]
    # WHEN a task of a service stops in the target account (its cluster ARN names that account)
    stop = in_target(SERVICE_STOP)
    assert stop["detail"]["clusterArn"] == f"arn:aws:ecs:{TARGET_REGION}:{TARGET}:cluster/prod"
    # THEN the member forwards it and the tracker's rule takes it, as it takes its own account's
    assert matches(forward["EventPattern"], stop)
    assert matches(rule, stop)
    assert matches(rule, load_event(SERVICE_STOP))
    # AND a third account's (not a member) or a member's other region's is taken by neither
    third = in_target(SERVICE_STOP, account="333333333333")
    assert not matches(rule, third)
    assert not matches(forward["EventPattern"], third)
    assert not matches(rule, in_target(SERVICE_STOP, region="ap-south-1"))
    # AND a job's task (no service: group) is not a service task stop
    assert not matches(rule, in_target(SERVICE_STOP, group="family:report"))


@pytest.mark.parametrize("clusters", ["*", "prod*"])
def test_the_member_rule_keeps_the_service_cluster_pattern(clusters: str) -> None:
    members = {"MemberAccountIds": TARGET, "ServiceClusterNamePattern": clusters}
    forward = member({"ServiceClusterNamePattern": clusters})["ForwardServiceTaskStopped"]["Properties"]
    rule = service_task_rule(members)
    other_cluster = in_target(SERVICE_STOP, region=HOME)
    other_cluster["detail"]["clusterArn"] = f"arn:aws:ecs:{HOME}:{TARGET}:cluster/staging"
    taken = clusters == "*"
    assert matches(rule, other_cluster) is taken
    assert matches(forward["EventPattern"], {**other_cluster, "region": TARGET_REGION}) is taken


def test_without_members_the_service_task_rule_takes_the_stacks_own_clusters_only() -> None:
    rule = service_task_rule({})
    assert (rule["account"], rule["region"]) == ([ECSPILOT], [HOME])
    assert rule["detail"]["clusterArn"] == [{"wildcard": f"arn:aws:ecs:{HOME}:{ECSPILOT}:cluster/*"}]
    assert matches(rule, load_event(SERVICE_STOP))
    assert not matches(rule, in_target(SERVICE_STOP))


def test_the_deployer_role_acts_in_one_region_the_stacks_unless_told() -> None:
    # issue 24: no grant on ECS in every region by default
    for params, region in (({}, TARGET_REGION), ({"ServiceRegion": "ap-south-1"}, "ap-south-1")):
        for statement in statements(member(params)["DeployerRole"]):
            resources = as_list(statement["Resource"])
            for resource in resources:
                if str(resource).startswith("arn:aws:ecs:"):
                    assert str(resource).split(":")[3] == region, (params, statement)
