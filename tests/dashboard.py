"""The CloudWatch dashboard of template.yaml as data, and the metric names the core emits (read
from its source: every ``count(...)``/``seconds(...)`` call, constants and dict lookups resolved)."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, get_args

from ecspilot.domain.plan import Change
from ecspilot_dev.local import REPO_ROOT
from tests.template import load_template

CORE = REPO_ROOT / "layers" / "ecspilot" / "ecspilot"
NAMESPACE = "ecspilot"
EMITTERS = ("count", "seconds")
# Names built at run time, by their fixed prefix: reconcile counts its actions by change
# (``Reconcile{change}``, ecspilot.reconcile.runbook), change one of ecspilot.domain.plan.Change.
TEMPLATED = {"Reconcile": [f"Reconcile{c.title().replace('-', '')}" for c in get_args(Change)]}
_ARITHMETIC = re.compile(r"(?:[a-z]\w*|[\d.]+|[\s*/+()-])+")
_SEARCH = re.compile(r"SEARCH\('\{(?P<schema>[^}]*)\} MetricName=\"(?P<name>\w+)\"'")


@dataclass(frozen=True)
class DashboardMetric:
    """One metric a dashboard widget shows: namespace, name and the dimension names it asks for."""

    namespace: str
    name: str
    dimensions: frozenset[str]
    dimension_values: tuple[tuple[str, str], ...] = ()


def dashboard_body() -> dict[str, Any]:
    """The dashboard's JSON body, ``${...}`` substitutions replaced by a placeholder."""
    [dashboard] = [
        r for r in load_template()["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    return dict(json.loads(re.sub(r"\$\{[^}]+\}", "SUBSTITUTED", body)))


def dashboard_metrics() -> list[DashboardMetric]:
    """Every metric of every widget: explicit ``[namespace, name, dim, value, ...]`` rows and the
    metrics SEARCH expressions look for (``{namespace,Dim1,Dim2} MetricName="X"``)."""
    found = []
    for widget in dashboard_body()["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], dict):
                expression = row[0].get("expression", "")
                match = _SEARCH.search(expression)
                if match is None and _ARITHMETIC.fullmatch(expression):
                    continue  # arithmetic over other rows' ids: their SEARCHes are checked
                assert match, f"a metric expression that is not a SEARCH: {row[0]}"
                namespace, *dims = match["schema"].split(",")
                found.append(DashboardMetric(namespace, match["name"], frozenset(dims)))
            else:
                namespace, name, *rest = [r for r in row if not isinstance(r, dict)]
                pairs = tuple(zip(rest[::2], rest[1::2], strict=True))
                found.append(DashboardMetric(namespace, name, frozenset(k for k, _ in pairs), pairs))
    return found


def _constants(tree: ast.Module) -> dict[str, list[str]]:
    """Module-level names bound to a string or to a dict of strings: name -> the strings."""
    out: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                out[node.targets[0].id] = [value.value]
            elif isinstance(value, ast.Dict):
                out[node.targets[0].id] = [
                    v.value for v in value.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
                ]
    return out


def _names(node: ast.expr, constants: dict[str, list[str]]) -> list[str]:
    """The metric names an emitter's first argument can take."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _names(node.body, constants) + _names(node.orelse, constants)
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    if isinstance(node, ast.JoinedStr):
        prefix = node.values[0]
        if isinstance(prefix, ast.Constant) and prefix.value in TEMPLATED:
            return TEMPLATED[prefix.value]
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in constants:
        return constants[node.value.id]
    raise AssertionError(f"a metric name the test cannot resolve: {ast.unparse(node)}")


@cache
def emitted_metrics(core: Path = CORE) -> frozenset[str]:
    """Every metric name some code path of the core emits through ``ecspilot.obs.count/seconds``."""
    trees = {p: ast.parse(p.read_text(encoding="utf-8")) for p in core.rglob("*.py")}
    constants: dict[str, list[str]] = {}
    for tree in trees.values():
        constants.update(_constants(tree))
    names: set[str] = set()
    for path, tree in trees.items():
        if path.name == "obs.py":
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in EMITTERS
                and node.args
            ):
                names.update(_names(node.args[0], constants))
    return frozenset(names)
