"""Task placement: presets, validation of custom placement, and instance checks.

Placement stays in ECS's own shapes (``{"type": "spread", "field": ...}``,
``{"type": "memberOf", "expression": ...}``) so what the config says is what
RunTask / CreateService receive. ECS applies constraints first (binding), then
strategies in order (best effort); FARGATE takes neither and DAEMON services
take constraints only. ``memberOf`` expressions are parsed here, at validation
time, so a typo fails ``ecspilot validate`` rather than a job at 3 a.m.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ecspilot.errors import PlacementError, QueryLanguageError
from ecspilot.records import dataclass

if TYPE_CHECKING:
    from ecspilot.domain import cql

MAX_STRATEGIES = 5  # per task or service
MAX_CONSTRAINTS = 10  # per task, task definition constraints included
BINPACK_FIELDS = ("cpu", "memory")
SPREAD_FIELDS = ("instanceId", "host")  # or attribute:NAME
STRATEGY_TYPES = ("spread", "binpack", "random")
CONSTRAINT_TYPES = ("memberOf", "distinctInstance")

_AZ_SPREAD = {"type": "spread", "field": "attribute:ecs.availability-zone"}
# The ECS console's placement templates.
PRESETS: Mapping[str, tuple[tuple[dict[str, str], ...], tuple[dict[str, str], ...]]] = {
    "az-balanced-spread": ((_AZ_SPREAD, {"type": "spread", "field": "instanceId"}), ()),
    "az-balanced-binpack": ((_AZ_SPREAD, {"type": "binpack", "field": "memory"}), ()),
    "binpack": (({"type": "binpack", "field": "memory"},), ()),
    "one-task-per-host": ((), ({"type": "distinctInstance"},)),
}


@dataclass(frozen=True)
class Placement:
    """Resolved placement: strategies and constraints in ECS's camelCase shapes."""

    strategy: tuple[dict[str, Any], ...] = ()
    constraints: tuple[dict[str, Any], ...] = ()

    def as_kwargs(self) -> dict[str, list[dict[str, Any]]]:
        """Keyword arguments for RunTask / CreateService; empty parts are left out."""
        kwargs: dict[str, list[dict[str, Any]]] = {}
        if self.strategy:
            kwargs["placementStrategy"] = [dict(item) for item in self.strategy]
        if self.constraints:
            kwargs["placementConstraints"] = [dict(item) for item in self.constraints]
        return kwargs


@dataclass(frozen=True)
class InstanceCheck:
    """Whether one container instance satisfies a job's placement constraints.

    ``reasons`` says why not; ``notes`` mentions constraints that can only be
    decided when ECS places a task (``distinctInstance``).
    """

    instance_arn: str
    ec2_instance_id: str | None
    matched: bool
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def _items(value: object, where: str) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise PlacementError(f"{where} must be a list, not {type(value).__name__}")
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise PlacementError(f"{where}[{index}] must be a mapping, not {type(item).__name__}")
    return list(value)


def _only_keys(item: Mapping[str, Any], allowed: Collection[str], where: str) -> None:
    unknown = sorted(set(item) - set(allowed))
    if unknown:
        raise PlacementError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")


def _strategy(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    from ecspilot.domain import cql  # noqa: PLC0415 - the parser loads only where expressions are

    _only_keys(item, ("type", "field"), where)
    kind, field = item.get("type"), item.get("field")
    if kind not in STRATEGY_TYPES:
        raise PlacementError(f"{where}: type must be one of {', '.join(STRATEGY_TYPES)}, not {kind!r}")
    if kind == "random":
        if field is not None:
            raise PlacementError(f"{where}: a random strategy takes no field")
        return {"type": kind}
    if kind == "binpack" and field not in BINPACK_FIELDS:
        raise PlacementError(f"{where}: binpack field must be cpu or memory, not {field!r}")
    if kind == "spread" and field not in SPREAD_FIELDS:
        if not isinstance(field, str) or not field.startswith(cql.ATTRIBUTE_PREFIX):
            raise PlacementError(
                f"{where}: spread field must be instanceId, host or attribute:NAME, not {field!r}"
            )
        if problem := cql.subject_problem(field):
            raise PlacementError(f"{where}: spread field {field!r}: {problem}")
    return {"type": kind, "field": field}


def _member_of(expression: object, where: str) -> cql.Expr:
    from ecspilot.domain import cql  # noqa: PLC0415 - the parser loads only where expressions are

    if not isinstance(expression, str) or not expression.strip():
        raise PlacementError(f"{where}: memberOf needs an expression (cluster query language)")
    try:
        return cql.parse(expression)
    except QueryLanguageError as exc:
        raise PlacementError(
            f"{where}: invalid memberOf expression: {exc.message} at column {exc.column}: {expression}"
        ) from exc


def _constraint(item: Mapping[str, Any], where: str) -> tuple[dict[str, Any], cql.Expr | None]:
    """The constraint in ECS's shape, and its parsed expression (None for distinctInstance)."""
    _only_keys(item, ("type", "expression"), where)
    kind = item.get("type")
    if kind == "distinctInstance":
        if item.get("expression") is not None:
            raise PlacementError(f"{where}: distinctInstance takes no expression")
        return {"type": kind}, None
    if kind == "memberOf":
        expr = _member_of(item.get("expression"), where)
        return {"type": kind, "expression": item["expression"]}, expr
    raise PlacementError(f"{where}: type must be one of {', '.join(CONSTRAINT_TYPES)}, not {kind!r}")


def _custom(spec: Mapping[str, Any]) -> Placement:
    _only_keys(spec, ("strategy", "constraints"), "placement")
    strategies = _items(spec.get("strategy"), "strategy")
    constraints = _items(spec.get("constraints"), "constraints")
    if len(strategies) > MAX_STRATEGIES:
        raise PlacementError(f"at most {MAX_STRATEGIES} strategies, got {len(strategies)}")
    if len(constraints) > MAX_CONSTRAINTS:
        raise PlacementError(f"at most {MAX_CONSTRAINTS} constraints, got {len(constraints)}")
    return Placement(
        strategy=tuple(_strategy(item, f"strategy[{i}]") for i, item in enumerate(strategies)),
        constraints=tuple(_constraint(item, f"constraints[{i}]")[0] for i, item in enumerate(constraints)),
    )


def resolve_placement(
    placement: str | Mapping[str, Any] | None, *, fargate: bool = False, daemon: bool = False
) -> Placement:
    """Turn a preset name or a custom ``{strategy, constraints}`` mapping into a :class:`Placement`.

    Raises :class:`PlacementError` for an unknown preset, an invalid strategy or
    constraint (a bad ``memberOf`` expression names its column), more than 5
    strategies or 10 constraints, any placement on FARGATE, or a strategy on a
    DAEMON service (which takes constraints only).
    """
    if placement is None:
        return Placement()
    if isinstance(placement, str):
        if placement not in PRESETS:
            raise PlacementError(
                f"unknown placement preset {placement!r}; valid presets: {', '.join(PRESETS)}"
            )
        strategy, constraints = PRESETS[placement]
        # Fresh dicts: callers may hand them to boto3 or edit them without touching the presets.
        resolved = Placement(tuple(map(dict, strategy)), tuple(map(dict, constraints)))
    elif isinstance(placement, Mapping):
        resolved = _custom(placement)
    else:
        raise PlacementError(f"placement must be a preset name or a mapping, not {type(placement).__name__}")
    if fargate and (resolved.strategy or resolved.constraints):
        raise PlacementError("placement is not supported on FARGATE")
    if daemon and resolved.strategy:
        raise PlacementError(
            "DAEMON services take placement constraints only, not strategies "
            f"({', '.join(s['type'] for s in resolved.strategy)})"
        )
    return resolved


def constraints_from_strings(exprs: Sequence[str]) -> tuple[dict[str, Any], ...]:
    """``memberOf`` constraints from expressions (the daemons' ``placement_constraints``), validated."""
    if isinstance(exprs, str):
        raise PlacementError("placement_constraints must be a list of expressions, not one string")
    if len(exprs) > MAX_CONSTRAINTS:
        raise PlacementError(f"at most {MAX_CONSTRAINTS} placement constraints, got {len(exprs)}")
    for index, expression in enumerate(exprs):
        _member_of(expression, f"placement_constraints[{index}]")
    return tuple({"type": "memberOf", "expression": expression} for expression in exprs)


def check_instances(
    constraints: Sequence[Mapping[str, Any]],
    instances: Sequence[Mapping[str, Any]],
    task_groups_by_instance: Mapping[str, Collection[str]] | None = None,
) -> list[InstanceCheck]:
    """Check each container instance (``describe_container_instances`` items) against constraints.

    Every ``memberOf`` expression is evaluated with :func:`cql.evaluate`.
    ``task_groups_by_instance`` maps a container instance ARN (or EC2 instance id)
    to the groups of the tasks running there, for ``task:group`` expressions.
    ``distinctInstance`` depends on the tasks being placed, so it only adds a note.
    """
    from ecspilot.domain import cql  # noqa: PLC0415 - the parser loads only where expressions are

    groups = task_groups_by_instance or {}
    checked = [_constraint(item, f"constraints[{i}]") for i, item in enumerate(constraints)]
    member_of = [(shape["expression"], expr) for shape, expr in checked if expr is not None]
    distinct = any(expr is None for _, expr in checked)
    results: list[InstanceCheck] = []
    for instance in instances:
        arn = str(instance.get("containerInstanceArn", ""))
        ec2_id = instance.get("ec2InstanceId")
        task_groups = groups.get(arn, groups.get(ec2_id or "", ()))
        facts = cql.InstanceFacts.from_container_instance(instance, task_groups)
        reasons = [
            f"memberOf {text}: {reason}"
            for text, expr in member_of
            for reason in cql.evaluate(expr, facts).reasons
        ]
        notes: list[str] = []
        if distinct:
            running = facts.running_tasks_count
            notes.append(
                "distinctInstance: satisfied, no task runs here"
                if running == 0
                else "distinctInstance: decided when ECS places tasks; an instance already running "
                "a task of the same group is skipped (an empty instance always qualifies)"
            )
        results.append(InstanceCheck(arn, ec2_id, not reasons, tuple(reasons), tuple(notes)))
    return results
