"""``ecspilot.records.dataclass`` makes what ``dataclasses.dataclass`` makes, without compiling.

Each case defines the same class twice, once with each decorator, and runs the same operations on
both: construction (positional, keyword, defaults, factories, errors), repr, equality, hashing,
frozen assignment, ``fields``/``replace``/``asdict``, pickling, copying and ``__match_args__``.
Outcomes (values or the exception's type and message) must be equal.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from ecspilot.records import _dataclass

Decorator = Callable[..., Any]


def plain_frozen(dc: Decorator) -> Any:
    @dc(frozen=True)
    class Point:
        x: int
        y: int = 0
        tags: list[str] = dataclasses.field(default_factory=list, hash=False)
        kind: ClassVar[str] = "point"
        note: str = dataclasses.field(default="", compare=False, repr=False)

    return Point


def mutable(dc: Decorator) -> Any:
    @dc
    class Box:
        items: dict[str, int] = dataclasses.field(default_factory=dict)
        label: str = "box"
        hidden: list[int] = dataclasses.field(default_factory=list, init=False)

    return Box


def inherited(dc: Decorator) -> Any:
    @dc(frozen=True)
    class Base:
        a: int
        b: str = "b"

    @dc(frozen=True)
    class Child(Base):
        c: float = 1.0
        b: str = "child"  # an override keeps its place

    return Child


def post_init(dc: Decorator) -> Any:
    @dc(frozen=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            if self.value < 0:
                raise ValueError(f"{self.value} < 0")
            object.__setattr__(self, "double", self.value * 2)

    return Checked


def own_methods(dc: Decorator) -> Any:
    @dc(frozen=True)
    class Named:
        name: str

        def __repr__(self) -> str:
            return f"<{self.name}>"

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Named) and other.name.lower() == self.name.lower()

        def __hash__(self) -> int:
            return hash(self.name.lower())

    return Named


def not_eq(dc: Decorator) -> Any:
    @dc(eq=False)
    class Handle:
        ref: str

    return Handle


CASES = [plain_frozen, mutable, inherited, post_init, own_methods, not_eq]
CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((), {}),
    ((1,), {}),
    ((1, 2), {}),
    ((1,), {"y": 3}),
    ((1,), {"x": 2}),
    ((), {"x": 1, "nope": 2}),
    ((1, 2, ["t"], "n", 5, 6), {}),
    ((), {"a": 1}),
    ((1, "b", 2.0), {}),
    ((-1,), {}),
    ((3,), {}),
    (("Web",), {}),
    ((), {"items": {"a": 1}}),
    ((), {"ref": "r"}),
    ((), {"value": 4}),
]


def outcome(action: Callable[[], Any]) -> Any:
    try:
        return ("ok", action())
    except Exception as exc:
        # the type; a TypeError's wording of argument counts is Python's own, not compared
        return ("raised", type(exc).__name__, "" if isinstance(exc, TypeError) else str(exc))


def behaviour(cls: Any) -> list[Any]:
    seen: list[Any] = [
        [(f.name, f.default, f.init, f.repr, f.compare, f.hash) for f in dataclasses.fields(cls)],
        getattr(cls, "__match_args__", None),
        cls.__hash__ is None,
        dataclasses.is_dataclass(cls),
    ]
    for args, kwargs in CALLS:
        made = outcome(lambda: cls(*args, **kwargs))  # noqa: B023 - called at once
        seen.append(made[0] if made[0] == "ok" else made)
        if made[0] != "ok":
            continue
        obj = made[1]
        twin = cls(*args, **kwargs)
        seen += [
            outcome(lambda: repr(obj)),  # noqa: B023
            outcome(lambda: obj == twin),  # noqa: B023
            outcome(lambda: obj != twin),  # noqa: B023
            outcome(lambda: hash(obj) == hash(twin)),  # noqa: B023
            outcome(lambda: setattr(obj, "x", 9)),  # noqa: B023
            outcome(lambda: delattr(obj, dataclasses.fields(obj)[0].name)),  # noqa: B023
            outcome(lambda: dataclasses.asdict(obj)),  # noqa: B023
            outcome(lambda: repr(dataclasses.replace(obj))),  # noqa: B023
            outcome(lambda: copy.copy(obj) == obj),  # noqa: B023
            outcome(lambda: copy.deepcopy(obj) == obj),  # noqa: B023
            sorted(vars(obj)),
        ]
    return seen


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_a_record_behaves_as_a_dataclass(case: Callable[[Decorator], Any]) -> None:
    assert behaviour(case(_dataclass)) == behaviour(case(dataclasses.dataclass))


def test_a_mutable_default_is_refused_as_by_dataclasses() -> None:
    def define(dc: Decorator) -> Any:
        @dc
        class Bad:
            items: list[int] = []

        return Bad

    with pytest.raises(ValueError, match="mutable default"):
        define(_dataclass)
    with pytest.raises(ValueError, match="mutable default"):
        define(dataclasses.dataclass)


def test_what_it_does_not_know_is_dataclasses_own() -> None:
    @_dataclass(order=True)
    class Ordered:
        n: int

    assert Ordered(1) < Ordered(2)


def test_ecspilots_records_are_made_without_compiling() -> None:
    """The records on a handler's path are this decorator's (the cold start it saves)."""
    from ecspilot.aws.history import DeploymentRecord  # noqa: PLC0415
    from ecspilot.domain.plan import Action  # noqa: PLC0415

    for cls in (Action, DeploymentRecord):
        assert dataclasses.is_dataclass(cls)
        assert cls.__init__.__module__ == "ecspilot.records"
