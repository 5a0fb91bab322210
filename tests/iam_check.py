"""Least privilege on every call (issue 24): each AWS request a function's handler makes, in any
functional or end-to-end test, is checked against that function's role in the *transformed*
template.

- **The roles**: ``template.yaml`` is transformed once per session by AWS's SAM translator (the
  SAM CLI's, in ``.venv-sam``: its pins differ from ours), cached in the temp directory by the
  template's hash (the xdist workers share it). A function's role is whatever its transformed
  ``AWS::Lambda::Function`` names (``Role: !GetAtt <role>.Arn``): SAM's generated role with its
  policy templates expanded, or a role the template defines; AWS managed policies are expanded
  from :data:`MANAGED` (an unknown one fails the check: add its statements). Both branches of an
  ``!If`` count (a grant under a condition is still a grant). Functions are found by their
  ``CodeUri`` (``functions/<name>``), so a function added to the template is covered as it is.
- **The calls**: every ``BaseClient._make_api_call`` made in a handler's context is that
  function's (``ecspilot_dev.local`` sets the function in a context variable around the handler;
  while a test runs, ``ThreadPoolExecutor.submit`` copies the submitter's context, so the
  fan-out's calls are the handler's too; a thread the test starts itself is nobody's); calls made with an assumed
  role's credentials (``ASIA...``: a member account's deployer role, checked by
  ``tests/functional/test_member_iam.py``) and calls made outside a handler (the test's own setup,
  the CLI) are not.
- **The check**: the IAM actions the call needs (``tests.functional.test_iam.needed``: the
  operation's action, plus the implied ones: ``ecs:TagResource`` conditioned on the creating
  action, ``iam:PassRole`` to ECS tasks or Scheduler, KMS for the encrypted topic, one action per
  kind of item of a ``TransactWriteItems``) must each be allowed by a statement; where the
  request names its resource (a table, an index, a queue, a topic, a repository, a service, a
  task definition, a schedule, a role to assume, a function), that ARN must match one of the
  granting statement's resources. A resource the template creates (``!GetAtt StateTable.Arn``)
  stands for any resource of its type in the stack's account and region; parameters take their
  defaults. Other condition keys are not evaluated (``tests/functional/test_iam.py`` and the
  policy checks cover their shape).

A test that made an ungranted call fails at teardown, listing the function, the call and what
is missing.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import botocore.client
import pytest

from ecspilot_dev.local import REPO_ROOT, running_functions
from tests.template import TEMPLATE, _as_list, _branches, _key, function_ids, resolve

ACCOUNT, REGION = "123456789012", "us-east-1"
#: the stack's parameters as the tests' world is deployed (others: their defaults): the member
#: accounts' roles of tests/promotion_world.py
PARAMETERS = {
    "PromotionRoleArns": "arn:aws:iam::222222222222:role/ecspilot-deployer,"
    "arn:aws:iam::333333333333:role/ecspilot-deployer",
}

#: AWS managed policies SAM attaches, as statements (their documented contents)
MANAGED: dict[str, list[dict[str, Any]]] = {
    "AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
    "AWSLambdaSQSQueueExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            "Resource": "*",
        },
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        },
    ],
}

#: botocore service names whose IAM prefix differs
IAM_PREFIX = {"elbv2": "elasticloadbalancing", "resourcegroupstaggingapi": "tag"}

#: what a resource the template creates stands for in a policy (any of its type in the stack)
TYPE_ARNS = {
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:{r}:{a}:table/*",
    "AWS::SQS::Queue": "arn:aws:sqs:{r}:{a}:*",
    "AWS::SNS::Topic": "arn:aws:sns:{r}:{a}:*",
    "AWS::KMS::Key": "arn:aws:kms:{r}:{a}:key/*",
    "AWS::Lambda::Function": "arn:aws:lambda:{r}:{a}:function:*",
    "AWS::IAM::Role": "arn:aws:iam::{a}:role/*",
    "AWS::Scheduler::ScheduleGroup": "arn:aws:scheduler:{r}:{a}:schedule-group/*",
    "AWS::Events::EventBus": "arn:aws:events:{r}:{a}:event-bus/*",
    "AWS::Logs::LogGroup": "arn:aws:logs:{r}:{a}:log-group:*",
}
NAME_REFS = {"AWS::Scheduler::ScheduleGroup": "*", "AWS::SQS::Queue": "*"}  # Ref gives a name or URL

_TRANSFORM = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse
class Loader:
    def load(self):
        return {}
t = yaml_parse(open(sys.argv[1]).read())
for r in t["Resources"].values():
    p = r.get("Properties", {})
    for k in ("CodeUri", "ContentUri"):
        if isinstance(p.get(k), str):
            p[k] = "s3://ecspilot-artifacts/" + p[k].strip("/").replace("/", "-")
out = transform(t, {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}, Loader())
json.dump(out, sys.stdout, default=str)
"""


@cache
def transformed() -> dict[str, Any]:
    """template.yaml through SAM's translator (cached by the template's hash)."""
    text = TEMPLATE.read_bytes()
    digest = hashlib.sha256(text + _TRANSFORM.encode()).hexdigest()[:16]
    cached = os.path.join(tempfile.gettempdir(), f"ecspilot-transformed-{digest}.json")
    if os.path.exists(cached):
        with open(cached, encoding="utf-8") as f:
            return dict(json.load(f))
    python = REPO_ROOT / ".venv-sam" / "bin" / "python"
    if not python.exists():
        raise pytest.UsageError("the IAM check needs the SAM CLI's translator: run `make template` once")
    env = {**os.environ, "AWS_DEFAULT_REGION": REGION}
    out = subprocess.run(
        [str(python), "-c", _TRANSFORM, str(TEMPLATE)], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode != 0:
        raise pytest.UsageError(f"SAM's translator failed on template.yaml:\n{out.stderr[-3000:]}")
    partial = f"{cached}.{os.getpid()}"
    with open(partial, "w", encoding="utf-8") as f:
        f.write(out.stdout)
    os.replace(partial, cached)
    return dict(json.loads(out.stdout))


@dataclass(frozen=True)
class Allowed:
    key: str  # as tests/template.py keys grants: ``ecs:TagResource[CreateAction=RunTask]``
    resources: tuple[str, ...]
    sid: str


def _stack_refs(value: Any, resources: Mapping[str, Any]) -> Any:
    """``value`` with the stack's own resources replaced by what they stand for (TYPE_ARNS)."""
    if isinstance(value, list):
        return [_stack_refs(v, resources) for v in value]
    if not isinstance(value, dict):
        return value
    if "Fn::GetAtt" in value:
        name = value["Fn::GetAtt"][0]
        kind = resources.get(name, {}).get("Type", "")
        return TYPE_ARNS.get(kind, "*").format(r=REGION, a=ACCOUNT)
    if "Ref" in value and value["Ref"] in resources:
        kind = resources[value["Ref"]]["Type"]
        return NAME_REFS.get(kind) or TYPE_ARNS.get(kind, "*").format(r=REGION, a=ACCOUNT)
    if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        text = value["Fn::Sub"]
        for name, res in resources.items():
            stands = TYPE_ARNS.get(res["Type"], "*").format(r=REGION, a=ACCOUNT)
            text = text.replace("${" + name + ".Arn}", stands).replace(
                "${" + name + "}", NAME_REFS.get(res["Type"], "*")
            )
        return {"Fn::Sub": text}
    return {k: _stack_refs(v, resources) for k, v in value.items()}


def _flatten(value: Any) -> list[str]:
    out: list[str] = []
    for v in _as_list(value):
        if isinstance(v, list):
            out += _flatten(v)
        elif v not in ("", None):
            out.append(str(v))
    return out


@cache
def roles() -> dict[str, tuple[Allowed, ...]]:
    """``functions/<name>`` -> what its role allows, from the transformed template."""
    template = transformed()
    resources = template["Resources"]
    out: dict[str, tuple[Allowed, ...]] = {}
    for name, logical_id in function_ids().items():
        role = resources[logical_id]["Properties"]["Role"]
        role_id = role["Fn::GetAtt"][0] if isinstance(role, dict) and "Fn::GetAtt" in role else None
        if role_id is None:
            raise pytest.UsageError(f"{logical_id}'s role is not a role of the template: cannot check it")
        props = resources[role_id]["Properties"]
        statements: list[dict[str, Any]] = []
        for policy in props.get("Policies", []):
            for document in _branches(policy):
                for doc in _branches(document.get("PolicyDocument", {})):
                    for st in _as_list(doc.get("Statement", [])):
                        statements += _branches(st)
        for arn in props.get("ManagedPolicyArns", []):
            managed = str(arn).rsplit("/", 1)[-1]
            if managed not in MANAGED:
                raise pytest.UsageError(f"{role_id}: managed policy {arn} is not known to tests/iam_check.py")
            statements += MANAGED[managed]
        allowed = []
        for st in statements:
            if st.get("Effect") != "Allow":
                continue
            patterns: list[str] = []
            for r in _branches(st.get("Resource", "*")):
                for one in _as_list(r):
                    for branch in _branches(one):
                        patterns += _flatten(
                            resolve(_stack_refs(branch, resources), ACCOUNT, REGION, PARAMETERS)
                        )
            for action in _as_list(st.get("Action", [])):
                allowed.append(Allowed(_key(action, st), tuple(patterns), str(st.get("Sid", ""))))
        out[name] = tuple(allowed)
    return out


# --- what a request names --------------------------------------------------------------------


def _queue_arn(url: str, region: str) -> str:
    parts = urlsplit(url).path.strip("/").split("/")
    return f"arn:aws:sqs:{region}:{parts[0]}:{parts[-1]}" if len(parts) >= 2 else ""


def _ecs(kind: str, cluster: str, name: str, region: str) -> str:
    if name.startswith("arn:"):
        return name
    if kind == "service":
        c = (cluster or "default").rsplit("/", 1)[-1]
        return f"arn:aws:ecs:{region}:{ACCOUNT}:service/{c}/{name}"
    return f"arn:aws:ecs:{region}:{ACCOUNT}:task-definition/{name if ':' in name else name + ':*'}"


def request_arns(service: str, operation: str, params: Mapping[str, Any], region: str) -> list[str]:
    """The resources a request names (empty: the check is on its action only)."""
    p = params
    if service == "dynamodb":
        tables = [p["TableName"]] if "TableName" in p else list(p.get("RequestItems", {}))
        tables += [next(iter(i.values())).get("TableName", "") for i in p.get("TransactItems", [])]
        suffix = f"/index/{p['IndexName']}" if p.get("IndexName") else ""
        return [f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{t}{suffix}" for t in tables if t]
    if service == "sqs" and p.get("QueueUrl"):
        return [_queue_arn(str(p["QueueUrl"]), region)]
    if service == "sns" and p.get("TopicArn"):
        return [str(p["TopicArn"])]
    if service == "ecr" and p.get("repositoryName"):
        return [f"arn:aws:ecr:{region}:{p.get('registryId', ACCOUNT)}:repository/{p['repositoryName']}"]
    if service == "sts" and operation == "AssumeRole":
        return [str(p.get("RoleArn", ""))]
    if service == "ecs" and operation in ("UpdateService", "DescribeServices"):
        names = [p["service"]] if "service" in p else list(p.get("services", []))
        return [_ecs("service", str(p.get("cluster", "")), str(n), region) for n in names]
    if service == "ecs" and operation == "RunTask":
        return [_ecs("task-definition", "", str(p.get("taskDefinition", "")), region)]
    if service == "scheduler" and p.get("Name") and operation.endswith("Schedule"):
        return [f"arn:aws:scheduler:{region}:{ACCOUNT}:schedule/{p.get('GroupName', 'default')}/{p['Name']}"]
    if service == "lambda" and p.get("FunctionName"):
        name = str(p["FunctionName"])
        return [name if name.startswith("arn:") else f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"]
    return []


def _matches(value: str, pattern: str) -> bool:
    """IAM's wildcards (``*``, ``?``), case-insensitive for actions; brackets are literal."""
    return fnmatchcase(value.lower(), pattern.lower().replace("[", "[[]"))


def _why_not(allowed: tuple[Allowed, ...], action: str, base: str, arns: list[str]) -> str | None:
    """None when ``allowed`` grants ``action`` (on ``arns``, for the request's own action)."""
    granting = [a for a in allowed if _matches(action, a.key)]
    if not granting:
        return f"{action} (no statement allows it)"
    if action.split("@", 1)[0] != base:
        return None  # an implied action (tags, roles passed, KMS): not on the request's resource
    bad = [
        arn
        for arn in arns
        if not any(fnmatchcase(arn, p.replace("[", "[[]")) for a in granting for p in a.resources)
    ]
    if not bad:
        return None
    return f"{action} on {', '.join(bad)} (allowed on {', '.join(sorted({r for a in granting for r in a.resources}))})"


def ungranted(
    functions: frozenset[str], service: str, operation: str, params: Mapping[str, Any], region: str
) -> list[str]:
    """What none of ``functions``' roles allows of this call (empty: it is granted)."""
    from tests.functional.test_iam import needed  # noqa: PLC0415 - the one mapping of calls to actions

    prefix = IAM_PREFIX.get(service, service)
    known = roles()
    arns = request_arns(service, operation, params, region)
    missing = []
    for action in sorted(needed(prefix, operation, params)):
        reasons = [
            _why_not(known.get(f, ()), action, f"{prefix}:{operation}", arns) for f in sorted(functions)
        ]
        if all(r is not None for r in reasons):
            missing.append(str(reasons[0]))
    return missing


@dataclass
class Calls:
    """The calls the handlers made during one test."""

    seen: list[tuple[frozenset[str], str, str, dict[str, Any], str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _assumed(client: Any) -> bool:
    creds = getattr(getattr(client, "_request_signer", None), "_credentials", None)
    key = getattr(creds, "access_key", "") or ""
    return str(key).startswith("ASIA")


@pytest.fixture(autouse=True)
def iam_check(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The check, for every functional and e2e test (see the module docstring)."""
    path = str(request.node.path)
    if not any(f"{os.sep}tests{os.sep}{kind}{os.sep}" in path for kind in ("functional", "e2e")):
        yield
        return
    calls = Calls()
    original = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009 - private to botocore

    def recorded(client: Any, operation: str, params: Any) -> Any:
        functions = running_functions()
        if functions and not _assumed(client):
            entry = (
                functions,
                client.meta.service_model.service_name,
                operation,
                dict(params),
                client.meta.region_name,
            )
            with calls.lock:
                calls.seen.append(entry)
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recorded)
    submit = ThreadPoolExecutor.submit

    def in_context(pool: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        # the fan-out's work runs in the submitting handler's context: its calls are its function's
        return submit(pool, contextvars.copy_context().run, fn, *args, **kwargs)

    monkeypatch.setattr(ThreadPoolExecutor, "submit", in_context)
    yield
    problems = sorted(
        {
            f"{'/'.join(sorted(fns))}: {svc}:{op} needs {m}"
            for fns, svc, op, params, region in calls.seen
            for m in ungranted(fns, svc, op, params, region or REGION)
        }
    )
    if problems:
        pytest.fail("ungranted AWS calls (tests/iam_check.py):\n  " + "\n  ".join(problems), pytrace=False)
