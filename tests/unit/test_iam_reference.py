"""The Service Authorization Reference as a check (issue 24): every action the templates grant
exists, and each resource a statement names matches one of the action's documented resource
types. ``policy_sentry`` (pinned in pyproject's dev extras) carries the reference offline.

The roles are read from the SAM-transformed template (``tests/iam_check.py``: SAM's generated
roles and the template's own) and from ``member/template.yaml``. Actions newer than
policy_sentry's database are listed in :data:`NEWER` with the page of the reference that
documents them and the resource types it gives; a listed action that the database learns
fails the check until it is removed from the list.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from functools import cache
from typing import Any

import pytest

from ecspilot_dev.local import REPO_ROOT
from tests.iam_check import (
    ACCOUNT,
    PARAMETERS,
    REGION,
    _as_list,
    _branches,
    _flatten,
    _stack_refs,
    transformed,
)
from tests.template import load_template, resolve

policy_sentry = pytest.importorskip("policy_sentry.querying.actions")

MEMBER_TEMPLATE = REPO_ROOT / "member" / "template.yaml"
ECS_PAGE = "https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html"
DAEMON = "arn:${Partition}:ecs:${Region}:${Account}:daemon/${ClusterName}/${DaemonName}"
SERVICE_DEPLOYMENT = "arn:${Partition}:ecs:${Region}:${Account}:service-deployment/${ClusterName}/${ServiceName}/${ServiceDeploymentId}"
#: action -> (the reference page, the resource ARN formats it documents; "*" when none): actions
#: (or resource types of an action) newer than policy_sentry's database
NEWER: dict[str, tuple[str, tuple[str, ...]]] = {
    "ecs:ContinueServiceDeployment": (ECS_PAGE, (SERVICE_DEPLOYMENT,)),
    "ecs:CreateDaemon": (ECS_PAGE, (DAEMON,)),
    "ecs:UpdateDaemon": (ECS_PAGE, (DAEMON,)),
    "ecs:DescribeDaemon": (ECS_PAGE, (DAEMON, "*")),
    "ecs:DescribeDaemonRevisions": (ECS_PAGE, (DAEMON, "*")),
    "ecs:ListDaemons": (ECS_PAGE, ("*",)),
    "ecs:ListDaemonTaskDefinitions": (ECS_PAGE, ("*",)),
    "ecs:DescribeDaemonTaskDefinition": (ECS_PAGE, ("*",)),
    # the daemon resource type, tagged at CreateDaemon
    "ecs:TagResource": (ECS_PAGE, (DAEMON,)),
}


@cache
def documented(action: str) -> list[str]:
    """The resource ARN formats the reference gives ``action`` ("*": no resource-level grant)."""
    service, name = action.split(":", 1)
    data = policy_sentry.get_action_data(service, name)
    rows = data.get(service, []) if isinstance(data, dict) else []
    return [str(r["resource_arn_format"]) for r in rows]


@cache
def service_actions(service: str) -> list[str]:
    from policy_sentry.querying.actions import get_actions_for_service  # noqa: PLC0415

    return [str(a) for a in get_actions_for_service(service)]


def statements() -> list[tuple[str, dict[str, Any]]]:
    """(role, statement) of every Allow statement of both templates, intrinsics resolved."""
    out = []
    main = transformed()
    for _template, resources, path in (
        (main, main["Resources"], None),
        (load_template(MEMBER_TEMPLATE), load_template(MEMBER_TEMPLATE)["Resources"], MEMBER_TEMPLATE),
    ):
        for logical_id, resource in resources.items():
            props = resource.get("Properties", {})
            docs = []
            if resource["Type"] == "AWS::IAM::Role":
                docs = [d.get("PolicyDocument", {}) for p in props.get("Policies", []) for d in _branches(p)]
            elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::RolePolicy", "AWS::IAM::ManagedPolicy"):
                docs = [props.get("PolicyDocument", {})]
            for doc in docs:
                for st in _as_list(doc.get("Statement", [])):
                    for one in _branches(st):
                        if one.get("Effect") != "Allow":
                            continue
                        refs = _stack_refs(one.get("Resource", "*"), resources)
                        kwargs: dict[str, Any] = {"path": path} if path else {}
                        resolved = resolve(refs, ACCOUNT, REGION, PARAMETERS, **kwargs)
                        out.append((logical_id, {**one, "Resource": _flatten(resolved)}))
    return out


def overlap(pattern: str, arn_format: str) -> bool:
    """True when some ARN matches both ``pattern`` (IAM's ``*`` wildcards) and the documented
    ``arn_format``: its partition, region and account are one field each (no ``:``), its other
    ``${Variable}`` parts anything. Two globs intersect."""
    a = pattern
    fields = re.sub(r"\$\{(Partition|Region|Account)\}", "\x00", arn_format)
    b = re.sub(r"\$\{[^}]+\}", "*", fields)

    @cache
    def meet(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            return meet(i + 1, j) or (j < len(b) and meet(i, j + 1))
        if j < len(b) and b[j] in "*\x00":
            return meet(i, j + 1) or (i < len(a) and (b[j] == "*" or a[i] != ":") and meet(i + 1, j))
        return i < len(a) and j < len(b) and a[i] == b[j] and meet(i + 1, j + 1)

    return meet(0, 0)


def problems() -> list[str]:
    found = []
    for role, st in statements():
        for action in _as_list(st.get("Action", [])):
            service, _, name = str(action).partition(":")
            names = [a for a in service_actions(service) if fnmatchcase(a.lower(), str(action).lower())]
            if "*" not in name and not names:
                names = [str(action)]
            for one in names or [str(action)]:
                formats = documented(one) + list(NEWER.get(one, ("", ()))[1])
                if not formats:
                    found.append(
                        f"{role}: {one} is not in the Service Authorization Reference (policy_sentry)"
                    )
                    continue
                typed = [f for f in formats if f != "*"]
                for resource in st["Resource"]:
                    if resource == "*":
                        continue
                    if not typed:
                        found.append(
                            f"{role}: {one} takes no resource-level permission, granted on {resource}"
                        )
                    elif not any(overlap(resource, f) for f in typed):
                        found.append(f"{role}: {one} on {resource} matches none of {typed}")
    return sorted(set(found))


def test_every_granted_action_exists_and_names_a_documented_resource_type() -> None:
    assert problems() == []


@pytest.mark.parametrize(
    ("pattern", "arn_format", "meets"),
    [
        (
            "arn:aws:ecs:us-east-1:1:task-definition/*",
            "arn:${Partition}:ecs:${Region}:${Account}:task-definition/${F}:${R}",
            True,
        ),
        (
            "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/*",
            "arn:${Partition}:logs:${Region}:${Account}:log-group:${G}:log-stream:${S}",
            True,
        ),
        (
            "arn:aws:ecs:us-east-1:1:service/*/*",
            "arn:${Partition}:ecs:${Region}:${Account}:cluster/${C}",
            False,
        ),
        ("arn:aws:sqs:us-east-1:1:q", "arn:${Partition}:sns:${Region}:${Account}:${T}", False),
    ],
)
def test_overlap_of_a_pattern_and_a_resource_type(pattern: str, arn_format: str, meets: bool) -> None:
    assert overlap(pattern, arn_format) is meets


def test_actions_listed_as_newer_are_still_missing_from_the_database() -> None:
    learned = [a for a, (_, formats) in NEWER.items() if set(formats) <= set(documented(a))]
    assert learned == [], f"policy_sentry knows these now: remove them from NEWER: {learned}"
