"""What Amazon Q Developer in chat applications does with a custom notification, locally: which of
template.yaml's ``AWS::Chatbot::CustomAction`` buttons attach to it (their criteria over the
variables they read from it) and the payload each button's command sends to the answer path.

A variable's value is a path into the notification (``event.metadata.additionalContext.hook``);
a criterion is ``HAS_VALUE`` or ``EQUALS`` over a variable; all of an attachment's criteria must
hold. The command is ``lambda invoke --function-name ARN --payload {...}`` with ``$name``
replaced by the variable's value. Used by the round-trip test and the demo.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Button:
    """One button on a notification: its custom action, text and the payload it sends."""

    action: str  # the CustomAction's logical id
    text: str
    command: str
    payload: dict[str, Any]


def _at(card: Mapping[str, Any], path: str) -> str | None:
    node: Any = {"event": card}
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, str) else None


def _holds(criterion: Mapping[str, Any], values: Mapping[str, str | None]) -> bool:
    value = values.get(str(criterion["VariableName"]))
    if criterion["Operator"] == "HAS_VALUE":
        return bool(value)
    return bool(value == criterion.get("Value", ""))


def command_text(definition: Any, function_arn: str) -> str:
    """The command of a CustomAction's ``Definition.CommandText`` (a plain string or ``!Sub``)."""
    text = definition["CommandText"]
    if isinstance(text, Mapping):
        text = text["Fn::Sub"]
    return str(text).replace("${ChatAnswerFunction.Arn}", function_arn)


def payload_of(command: str) -> dict[str, Any]:
    """The ``--payload`` JSON of a ``lambda invoke`` command."""
    words = command.split()
    assert words[:2] == ["lambda", "invoke"], command
    return dict(json.loads(words[words.index("--payload") + 1]))


def buttons(template: Mapping[str, Any], card: Mapping[str, Any], function_arn: str) -> list[Button]:
    """The buttons template.yaml's custom actions put on ``card`` (a custom notification)."""
    out = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Chatbot::CustomAction":
            continue
        props = resource["Properties"]
        for attachment in props.get("Attachments", []):
            if attachment.get("NotificationType") not in (None, "Custom"):
                continue
            values = {name: _at(card, path) for name, path in attachment.get("Variables", {}).items()}
            if not all(_holds(c, values) for c in attachment.get("Criteria", [])):
                continue
            command = command_text(props["Definition"], function_arn)
            for name in sorted(values, key=len, reverse=True):  # $service before $s...
                command = command.replace(f"${name}", values[name] or "")
            out.append(
                Button(logical_id, str(attachment.get("ButtonText", "")), command, payload_of(command))
            )
    return out
