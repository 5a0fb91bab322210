"""template.yaml's chat pieces: the answer path exists only with ChatActions, only the chat
channel roles may invoke it, and the channel the stack creates may do nothing else."""

from __future__ import annotations

from typing import Any

from tests.template import load_template


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in load_template()["Resources"].items() if r["Type"] == kind}


def test_chat_actions_default_to_off_and_gate_the_answer_path_and_its_buttons() -> None:
    template = load_template()
    assert template["Parameters"]["ChatActions"]["Default"] == "false"
    assert template["Conditions"]["ChatActionsOn"] == {"Fn::Equals": [{"Ref": "ChatActions"}, "true"]}
    assert template["Resources"]["ChatAnswerFunction"]["Condition"] == "ChatActionsOn"
    actions = resources("AWS::Chatbot::CustomAction")
    assert len(actions) == 8  # hook, release and version Approve/Reject, Rollback, Unfreeze
    assert {r["Condition"] for r in actions.values()} == {"ChatActionsOn"}
    texts = sorted({a["ButtonText"] for r in actions.values() for a in r["Properties"]["Attachments"]})
    assert texts == ["Approve", "Reject", "Rollback", "Unfreeze"]


def test_only_the_chat_channel_roles_may_invoke_the_answer_path() -> None:
    permissions = resources("AWS::Lambda::Permission")
    chat = {
        k: r
        for k, r in permissions.items()
        if r["Properties"]["FunctionName"] == {"Ref": "ChatAnswerFunction"}
    }
    assert len(chat) == 6  # five ChatChannelRoleArns slots and the stack's own channel role
    for resource in chat.values():
        props = resource["Properties"]
        assert props["Action"] == "lambda:InvokeFunction"
        principal = str(props["Principal"])
        assert "ChatChannelRoleArns" in principal or "ChatChannelRole" in principal
        assert "SourceArn" not in props  # a role, not a service: nothing else names it


def test_the_channel_the_stack_creates_may_only_invoke_the_answer_path() -> None:
    policy = load_template()["Resources"]["ChatGuardrailPolicy"]["Properties"]["PolicyDocument"]
    [statement] = policy["Statement"]
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Resource"]["Fn::If"][1] == {"Fn::GetAtt": ["ChatAnswerFunction", "Arn"]}
    for kind in (
        "AWS::Chatbot::SlackChannelConfiguration",
        "AWS::Chatbot::MicrosoftTeamsChannelConfiguration",
    ):
        [channel] = resources(kind).values()
        props = channel["Properties"]
        assert props["GuardrailPolicies"] == [{"Ref": "ChatGuardrailPolicy"}]
        assert props["SnsTopicArns"] == [{"Ref": "NotifyTopic"}]
