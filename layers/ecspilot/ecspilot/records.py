"""``@dataclass`` for ecspilot's records, at the cost of a plain class (issue 29: cold start).

Python 3.12's ``dataclasses.dataclass`` writes each record's ``__init__``, ``__repr__``, ``__eq__``,
``__hash__`` and (frozen) ``__setattr__``/``__delattr__`` as source text and compiles it: about
0.7 ms a class, 10-20 ms of a handler's cold start (``bench/coldstart.py``). This decorator makes
the same records without compiling anything: the methods are shared closures over the class's
fields. What it makes *is* a dataclass to the standard library: ``__dataclass_fields__`` holds
``dataclasses.Field`` objects, so ``dataclasses.fields``, ``replace``, ``asdict``, ``is_dataclass``,
``copy`` and ``pickle`` behave as with ``dataclasses.dataclass``.

It knows what ecspilot's records use: ``frozen``, ``eq``, ``repr``, ``init``; ``field()`` with
``default``, ``default_factory``, ``init``, ``repr``, ``compare``, ``hash``; inheritance,
``ClassVar``, ``__post_init__`` and methods a class writes itself (kept, as ``dataclass`` keeps
them). Anything else (``order``, ``slots``, ``kw_only``, ``InitVar``...) is handed to
``dataclasses.dataclass`` itself. ``tests/unit/test_records.py`` compares both on every feature.

Type checkers see ``dataclasses.dataclass`` (the ``TYPE_CHECKING`` import below).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import MISSING, Field, FrozenInstanceError
from typing import TYPE_CHECKING, Any

__all__ = ["dataclass"]

_FIELD = dataclasses._FIELD  # type: ignore[attr-defined]
_KNOWN = {"frozen", "eq", "repr", "init", "order"}


def _is_classvar(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar", "t.ClassVar"))


def _fields_of(cls: type) -> dict[str, Field[Any]]:
    """The record's fields, inherited first, in the order ``dataclasses`` gives them; the class
    attributes as ``dataclasses`` leaves them (a default stays, a factory's field goes)."""
    fields: dict[str, Field[Any]] = {}
    for base in reversed(cls.__mro__[1:]):
        inherited = base.__dict__.get("__dataclass_fields__")
        if inherited:
            fields.update({n: f for n, f in inherited.items() if f._field_type is _FIELD})
    annotations = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 - the class body's own
    for name, annotation in annotations.items():
        if _is_classvar(annotation):
            continue
        value = cls.__dict__.get(name, MISSING)
        made: Field[Any] = value if isinstance(value, Field) else dataclasses.field(default=value)
        made.name = name
        made.type = annotation
        made._field_type = _FIELD  # type: ignore[attr-defined]
        made.kw_only = False
        if isinstance(value, Field):
            if made.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, made.default)
        default = made.default
        if default is not MISSING and type(default).__hash__ is None:
            raise ValueError(
                f"mutable default {type(default)} for field {name} is not allowed: use default_factory"
            )
        fields[name] = made
    return fields


def _make(cls: type, frozen: bool, eq: bool, make_repr: bool, make_init: bool) -> type:
    fields = _fields_of(cls)
    init_plan = tuple((f.name, f.default, f.default_factory) for f in fields.values() if f.init)
    seen_default = False
    for name, default, factory in init_plan:
        if default is MISSING and factory is MISSING:
            if seen_default:
                raise TypeError(f"non-default argument {name!r} follows default argument")
        else:
            seen_default = True
    not_init = tuple((f.name, f.default_factory) for f in fields.values() if not f.init)

    def _set(name: str, value: Any) -> None:
        if name not in cls.__dict__:
            if callable(value):
                value.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(cls, name, value)

    if make_init:
        _set("__init__", _init(init_plan, not_init, frozen, hasattr(cls, "__post_init__")))
    if make_repr:
        _set("__repr__", _repr(tuple(f.name for f in fields.values() if f.repr)))
    if eq:
        _set("__eq__", _eq(tuple(f.name for f in fields.values() if f.compare)))
        class_hash = cls.__dict__.get("__hash__", MISSING)
        explicit_hash = not (class_hash is MISSING or (class_hash is None and "__eq__" in cls.__dict__))
        if not explicit_hash:
            hashed = tuple(f.name for f in fields.values() if (f.compare if f.hash is None else f.hash))
            cls.__hash__ = _hash(hashed) if frozen else None  # type: ignore[assignment]
    if frozen:
        _freeze(cls, frozenset(fields))
    _set("__match_args__", tuple(name for name, _, _ in init_plan))
    cls.__dataclass_fields__ = fields  # type: ignore[attr-defined]
    cls.__dataclass_params__ = getattr(dataclasses, "_DataclassParams")(  # type: ignore[attr-defined]  # noqa: B009 - private
        make_init, make_repr, eq, False, False, frozen, True, False, False, False
    )
    return cls


def _repr(shown: tuple[str, ...]) -> Callable[[Any], str]:
    def __repr__(self: Any) -> str:  # noqa: N807 - the method it is
        shown_fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in shown)
        return f"{self.__class__.__qualname__}({shown_fields})"

    return __repr__


def _eq(compared: tuple[str, ...]) -> Callable[[Any, Any], Any]:
    def __eq__(self: Any, other: Any) -> Any:  # noqa: N807 - the method it is
        if other.__class__ is self.__class__:
            return tuple(getattr(self, n) for n in compared) == tuple(getattr(other, n) for n in compared)
        return NotImplemented

    return __eq__


def _hash(hashed: tuple[str, ...]) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:  # noqa: N807 - the method it is
        return hash(tuple(getattr(self, n) for n in hashed))

    return __hash__


def _freeze(cls: type[Any], names: frozenset[str]) -> None:
    """A frozen record's ``__setattr__`` and ``__delattr__``, as ``dataclasses`` makes them."""
    if "__setattr__" in cls.__dict__ or "__delattr__" in cls.__dict__:
        raise TypeError(f"cannot overwrite attribute __setattr__ or __delattr__ in class {cls.__name__}")

    def __setattr__(self: Any, name: str, value: Any) -> None:  # noqa: N807 - the method it is
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:  # noqa: N807 - the method it is
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    cls.__setattr__ = __setattr__  # type: ignore[assignment]
    cls.__delattr__ = __delattr__  # type: ignore[assignment]


def _init(
    plan: tuple[tuple[str, Any, Any], ...],
    not_init: tuple[tuple[str, Any], ...],
    frozen: bool,
    post_init: bool,
) -> Callable[..., None]:
    """The generated ``__init__``: positional or keyword arguments in field order, defaults and
    factories, fields outside ``__init__`` from their factories, then ``__post_init__``."""
    count = len(plan)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807 - the method it is
        if len(args) > count:
            raise TypeError(
                f"__init__() takes {count + 1} positional arguments but {len(args) + 1} were given"
            )
        store = object.__setattr__ if frozen else setattr
        for i, (name, default, factory) in enumerate(plan):
            if i < len(args):
                if name in kwargs:
                    raise TypeError(f"__init__() got multiple values for argument {name!r}")
                value = args[i]
            elif name in kwargs:
                value = kwargs.pop(name)
            elif default is not MISSING:
                value = default
            elif factory is not MISSING:
                value = factory()
            else:
                raise TypeError(f"__init__() missing 1 required positional argument: {name!r}")
            store(self, name, value)
        if kwargs:
            raise TypeError(f"__init__() got an unexpected keyword argument {next(iter(kwargs))!r}")
        for name, factory in not_init:
            if factory is not MISSING:
                store(self, name, factory())
        if post_init:
            self.__post_init__()

    return __init__


def _supported(cls: type, options: dict[str, Any]) -> bool:
    """True when this decorator makes ``cls`` as ``dataclasses.dataclass`` would (checked before
    anything of the class changes)."""
    if not _KNOWN.issuperset(options) or options.get("order"):
        return False
    annotations = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 - the class body's own
    for name, annotation in annotations.items():
        if "InitVar" in str(annotation) or "KW_ONLY" in str(annotation):
            return False
        value = cls.__dict__.get(name)
        if isinstance(value, Field) and value.kw_only is True:
            return False
    return not any(
        f.kw_only is True
        for base in cls.__mro__[1:]
        for f in base.__dict__.get("__dataclass_fields__", {}).values()
    )


def _dataclass(cls: type | None = None, /, **options: Any) -> Any:
    def wrap(klass: type) -> type:
        if not _supported(klass, options):
            return dataclasses.dataclass(klass, **options)
        return _make(
            klass,
            frozen=bool(options.get("frozen", False)),
            eq=bool(options.get("eq", True)),
            make_repr=bool(options.get("repr", True)),
            make_init=bool(options.get("init", True)),
        )

    return wrap if cls is None else wrap(cls)


if TYPE_CHECKING:
    from dataclasses import dataclass
else:
    dataclass = _dataclass
