"""What Amazon Q Developer in chat applications does with a custom notification, locally: which of
template.yaml's ``AWS::Chatbot::CustomAction`` buttons attach to it (their criteria over the
variables they read from it) and the payload each button's command sends to the answer path.

A variable's value is a path into the notification (``event.metadata.additionalContext.hook``);
a criterion is ``HAS_VALUE`` or ``EQUALS`` over a variable; all of an attachment's criteria must
hold. The command is ``lambda invoke --function-name ARN --payload {...}`` with ``$name``
replaced by the variable's value. Used by the round-trip test and the demo.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ecspilot_dev.local import REPO_ROOT


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


class _CfnLoader(yaml.SafeLoader):
    """template.yaml with CloudFormation's short tags: ``!Ref X`` -> ``{"Ref": "X"}``, ``!Sub s``
    -> ``{"Fn::Sub": s}``, ``!GetAtt A.B`` -> ``{"Fn::GetAtt": ["A", "B"]}``."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tagged)


def load_template(path: Path = REPO_ROOT / "template.yaml") -> dict[str, Any]:
    """template.yaml as data (the chat's custom actions are read from it)."""
    return dict(yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader))  # a SafeLoader subclass


class ChatInbox:
    """A local https-subscription endpoint: what SNS posts to a chat (the https member) is kept.
    SNS subscribes it with protocol ``https`` (the member the chat gets) at a loopback address."""

    def __init__(self) -> None:
        self.cards: list[dict[str, Any]] = []
        inbox = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                if body.get("Type") == "Notification":
                    inbox.cards.append(json.loads(body["Message"]))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # quiet
                del args

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/chat"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
