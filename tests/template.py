"""template.yaml as data: a YAML loader that understands CloudFormation's short tags, and the IAM
actions each function's role is granted, with the conditions that matter (implied grants)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ecspilot_dev.local import REPO_ROOT

TEMPLATE = REPO_ROOT / "template.yaml"
TAGS = ("Ref", "Sub", "GetAtt", "If", "Not", "Equals", "And", "Or", "Condition", "Join", "Select", "Split")


class _Loader(yaml.SafeLoader):
    """``!Ref X`` -> ``{"Ref": "X"}``, ``!GetAtt A.B`` -> ``{"Fn::GetAtt": ["A", "B"]}``, ..."""


def _constructor(tag: str) -> Any:
    key = "Ref" if tag == "Ref" else ("Condition" if tag == "Condition" else f"Fn::{tag}")

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {key: value}

    return construct


for _tag in TAGS:
    _Loader.add_constructor(f"!{_tag}", _constructor(_tag))


@cache
def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return dict(yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader))  # a SafeLoader subclass


def _branches(value: Any) -> list[Any]:
    """Both branches of an ``!If`` (a grant under a condition is still a grant), else the value."""
    if isinstance(value, dict) and "Fn::If" in value:
        _, then, otherwise = value["Fn::If"]
        return [*_branches(then), *_branches(otherwise)]
    if isinstance(value, dict) and value.get("Ref") == "AWS::NoValue":
        return []
    return [value]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Grant:
    """One allowed action, as compared with the calls: ``ecs:TagResource[CreateAction=RunTask]``,
    ``iam:PassRole[ecs-tasks.amazonaws.com]``, ``dynamodb:Query@index``."""

    key: str
    sid: str
    resource: Any


def _key(action: str, statement: dict[str, Any]) -> str:
    condition = statement.get("Condition", {})
    string_equals = condition.get("StringEquals", {})
    if action == "ecs:TagResource" and "ecs:CreateAction" in string_equals:
        return f"{action}[CreateAction={string_equals['ecs:CreateAction']}]"
    if action == "iam:PassRole" and "iam:PassedToService" in string_equals:
        return f"{action}[{string_equals['iam:PassedToService']}]"
    resources = [r for r in _as_list(statement.get("Resource", [])) if isinstance(r, dict) and "Fn::Sub" in r]
    if action.startswith("dynamodb:") and any("/index/" in str(r["Fn::Sub"]) for r in resources):
        return f"{action}@index"
    return action


def _documents(logical_id: str) -> list[dict[str, Any]]:
    """The policy documents the handler's calls use: the SAM ``Policies`` statements, or, for a
    function with its own ``Role``, that role's policies but ``lambda-runtime`` (what Lambda
    itself calls with the role: logs, the event source mapping's queue)."""
    resources = load_template()["Resources"]
    props = resources[logical_id]["Properties"]
    role = props.get("Role")
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        policies = resources[role["Fn::GetAtt"][0]]["Properties"].get("Policies", [])
        return [
            p["PolicyDocument"]
            for policy in policies
            for p in _branches(policy)
            if p.get("PolicyName") != "lambda-runtime"
        ]
    return [d for policy in props.get("Policies", []) for d in _branches(policy)]


def function_grants(logical_id: str) -> list[Grant]:
    """Every action the function's role is allowed, from its SAM ``Policies`` statements (or
    its own role's, :func:`_documents`)."""
    grants = []
    for document in _documents(logical_id):
        for statement in document.get("Statement", []):
            if statement.get("Effect") != "Allow":
                continue
            for action in _as_list(statement["Action"]):
                grants.append(
                    Grant(_key(action, statement), statement.get("Sid", ""), statement.get("Resource"))
                )
    return grants


def function_ids() -> dict[str, str]:
    """``functions/<name>`` -> the logical id of its AWS::Serverless::Function."""
    out = {}
    for logical_id, resource in load_template()["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            out[resource["Properties"]["CodeUri"].strip("/").split("/")[-1]] = logical_id
    return out


def event_patterns(logical_id: str) -> dict[str, dict[str, Any]]:
    """The EventBridge rule patterns of a function's events, by event name."""
    events = load_template()["Resources"][logical_id]["Properties"].get("Events", {})
    return {name: e["Properties"]["Pattern"] for name, e in events.items() if e["Type"] == "EventBridgeRule"}


def resolve_pseudo(value: Any, account: str, region: str) -> Any:
    """``value`` with ``!Ref AWS::AccountId`` / ``!Ref AWS::Region`` replaced by ``account``/``region``
    (to put a rule's pattern into a local EventBridge); the template's parameters at their defaults."""
    return resolve(value, account, region)


def resolve(
    value: Any,
    account: str,
    region: str,
    parameters: dict[str, Any] | None = None,
    path: Path = TEMPLATE,
) -> Any:
    """``value`` with the intrinsic functions a pattern or policy uses evaluated (``Ref`` of pseudo
    parameters and parameters, ``If`` on the template's conditions, ``Join``, ``Split``, ``Sub``,
    ``Equals``, ``Not``, ``And``, ``Or``): parameters from ``parameters``, else their defaults
    (a CommaDelimitedList as a list). Anything else (``GetAtt``, a resource's ``Ref``) stays as is."""
    template = load_template(path)
    declared = template.get("Parameters", {})
    given = parameters or {}

    def param(name: str) -> Any:
        pseudo = {"AWS::AccountId": account, "AWS::Region": region, "AWS::Partition": "aws"}
        if name in pseudo:
            return pseudo[name]
        if name == "AWS::StackName":
            return given.get(name, "ecspilot")
        if name not in declared:
            return {"Ref": name}
        raw = given.get(name, declared[name].get("Default", ""))
        if declared[name]["Type"] == "CommaDelimitedList" and isinstance(raw, str):
            return raw.split(",")
        return raw

    def condition(name: str) -> bool:
        return bool(ev(template["Conditions"][name]))

    def sub(text: str, names: dict[str, Any]) -> str:
        import re  # noqa: PLC0415

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            return str(names[name] if name in names else param(name))

        return re.sub(r"\$\{([\w:]+)\}", one, text)

    def ev(node: Any) -> Any:
        if isinstance(node, list):
            return [ev(v) for v in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            [(key, arg)] = node.items()
            if key == "Ref":
                return param(arg)
            if key == "Condition":
                return condition(arg)
            if key == "Fn::If":
                name, then, otherwise = arg
                return ev(then) if condition(name) else ev(otherwise)
            if key == "Fn::Join":
                return str(arg[0]).join(str(v) for v in ev(arg[1]))
            if key == "Fn::Split":
                return str(ev(arg[1])).split(arg[0])
            if key == "Fn::Sub":
                text, names = (arg, {}) if isinstance(arg, str) else (arg[0], ev(arg[1]))
                return sub(text, names)
            if key == "Fn::Equals":
                left, right = ev(arg)
                return left == right
            if key == "Fn::Not":
                return not ev(arg[0])
            if key == "Fn::And":
                return all(ev(arg))
            if key == "Fn::Or":
                return any(ev(arg))
        return {k: ev(v) for k, v in node.items()}

    return ev(value)
