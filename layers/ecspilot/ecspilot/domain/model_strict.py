"""The strict reading of a model: what pydantic would accept *as is*, read without pydantic.

:meth:`ecspilot.domain.modeling.PlainModel.model_validate` tries this first. It accepts only data
that needs no conversion: a ``str`` where the field is a string, an ``int`` (not a bool) where it is
an integer, a JSON object for a nested model, an RFC 3339 time with its offset for a ``datetime``, a
``Literal``'s own values, ``X | None``, lists and string-keyed dicts of those; the field's
``Field`` constraints (``min_length``, ``max_length``, ``pattern``, ``ge``, ``le``), aliases, defaults,
``extra``, and the model's own validators (field validators ``after``, model validators ``before``
and ``after``) run as pydantic runs them. Anything else, any failing check or validator, or a model
using what this reading does not know (other unions, other constraints, other types), answers
``None``: then pydantic (the model's twin) validates, and its result or its error is the answer.

So it is never more lenient than pydantic: ``tests/unit/test_strict_models.py`` checks that every
input it accepts, pydantic accepts with the same values and the same fields set, over AWS's
published events, the configs of the repository and thousands of mutations of them.
"""

from __future__ import annotations

import copy
import re
import sys
import types
import typing
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from ecspilot.domain.model_fields import MISSING, FieldSpec

_FAIL: Any = object()
# RFC 3339 with an offset, as AWS writes times; anything else (naive, epoch numbers) is pydantic's
_TIME_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_KNOWN_FIELD_ARGS = {"alias", "default", "default_factory", "min_length", "max_length", "pattern", "ge", "le"}
_KNOWN_CONFIG = {"extra", "frozen", "populate_by_name", "defer_build"}

Check = Callable[[Any], Any]  # a value -> the value pydantic would keep, or _FAIL


class _Info:
    """What a validator's ``info`` argument offers it: the fields validated before its own."""

    __slots__ = ("data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data


class _Field:
    __slots__ = ("check", "default", "keys", "name", "validators")

    def __init__(
        self, name: str, keys: tuple[str, ...], check: Check, default: FieldSpec | None, validators: list[Any]
    ) -> None:
        self.name = name
        self.keys = keys  # the keys the input may name it by, in pydantic's order
        self.check = check
        self.default = default
        self.validators = validators  # (validator's name, takes info)


class _Plan:
    __slots__ = ("after", "before", "extra", "fields", "known")

    def __init__(self, fields: list[_Field], extra: str, before: str | None, after: str | None) -> None:
        self.fields = fields
        self.extra = extra
        self.before = before
        self.after = after
        self.known = frozenset(key for f in fields for key in f.keys)


def strict_validate(cls: type[Any], data: Any) -> Any:
    """A plain instance of ``cls`` when ``data`` is what pydantic would accept as is, else None."""
    result = _validate(cls, data)
    return None if result is _FAIL else result


def _validate(cls: type[Any], data: Any) -> Any:
    cached: tuple[_Plan | None] | None = cls.__dict__.get("__strict__")
    if cached is None:
        cached = (_plan(cls),)
        type.__setattr__(cls, "__strict__", cached)
    plan = cached[0]
    if plan is None or type(data) is not dict:
        return _FAIL
    try:
        if plan.before is not None:
            data = getattr(cls, plan.before)(data)
            if type(data) is not dict:
                return _FAIL
        if plan.extra == "forbid" and not plan.known.issuperset(data):
            return _FAIL
        values: dict[str, Any] = {}
        given = set()
        for field in plan.fields:
            for key in field.keys:
                if key in data:
                    value = field.check(data[key])
                    if value is _FAIL:
                        return _FAIL
                    for name, takes_info in field.validators:
                        validator = getattr(cls, name)
                        value = validator(value, _Info(dict(values))) if takes_info else validator(value)
                    given.add(field.name)
                    break
            else:
                if field.default is None:
                    return _FAIL  # required: pydantic says so
                value = field.default.make_default()
                if isinstance(value, list | dict | set):
                    value = copy.deepcopy(value)
            values[field.name] = value
        instance = cls.construct_valid(values, given)
        if plan.after is not None and getattr(instance, plan.after)() is not instance:
            return _FAIL
    except Exception:
        return _FAIL
    return instance


def _plan(cls: type[Any]) -> _Plan | None:
    """How to read ``cls`` strictly, or None when it uses what this reading does not know."""
    config = cls.model_config
    if not _KNOWN_CONFIG.issuperset(config) or config.get("extra", "ignore") not in ("ignore", "forbid"):
        return None
    by_name = bool(config.get("populate_by_name"))
    annotations: dict[str, Any] = {}
    field_validators: dict[str, list[Any]] = {}
    before = after = None
    klass: Any
    for klass in reversed(cls.__mro__):
        if "__own_fields__" not in klass.__dict__:
            continue  # not a model class (object, the base)
        module_globals = vars(sys.modules[klass.__module__])
        own = klass.__dict__.get("__annotations__", {})  # noqa: RUF063 - the class body's own
        for name in klass.__own_fields__:
            annotations[name] = (own[name], module_globals)
        for name, validator in klass.__validators__.items():
            if validator.kind == "model":
                if validator.mode == "before" and before is None:
                    before = name
                elif validator.mode == "after" and after is None:
                    after = name
                else:
                    return None
                continue
            if validator.mode != "after":
                return None
            func = getattr(validator.func, "__func__", validator.func)
            for field in validator.fields:
                field_validators.setdefault(field, []).append((name, func.__code__.co_argcount == 3))
    fields = []
    for name, spec in cls.__field_specs__.items():
        annotation, module_globals = annotations[name]
        try:
            hint = eval(annotation, module_globals) if isinstance(annotation, str) else annotation
        except Exception:
            return None
        check = _check(hint)
        default: FieldSpec | None = None
        keys: tuple[str, ...] = (name,)
        if isinstance(spec, FieldSpec):
            if not _KNOWN_FIELD_ARGS.issuperset(spec.kwargs):
                return None
            check = _constrained(check, spec.kwargs) if check is not None else None
            default = spec if spec.has_default() else None
            if spec.alias:
                keys = (spec.alias, name) if by_name else (spec.alias,)
        elif spec is not MISSING:
            default = FieldSpec(spec, {})
        if check is None:
            return None
        fields.append(_Field(name, keys, check, default, field_validators.get(name, [])))
    return _Plan(fields, str(config.get("extra", "ignore")), before, after)


def _check(hint: Any) -> Check | None:
    """The check of a type, or None when this reading does not know it."""
    if hint is str or hint is bool or hint is int:
        return lambda v: v if type(v) is hint else _FAIL
    if hint is Any:
        return lambda v: v
    if hint is datetime:
        return _time
    if isinstance(hint, type) and hasattr(hint, "construct_valid"):  # a plain model
        return lambda v: _validate(hint, v) if type(v) is dict else (v if type(v) is hint else _FAIL)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return lambda v: v if any(type(v) is type(a) and v == a for a in args) else _FAIL
    if origin in (typing.Union, types.UnionType):
        others = [a for a in args if a is not type(None)]
        inner = _check(others[0]) if len(others) == 1 and len(args) == 2 else None
        if inner is None:
            return None
        return lambda v: None if v is None else inner(v)
    if origin is list and len(args) == 1:
        return _of(_items, _check(args[0]))
    if origin is dict and len(args) == 2 and args[0] is str:
        return _of(_entries, _check(args[1]))
    return None


def _of(container: Callable[[Any, Check], Any], item: Check | None) -> Check | None:
    """The check of a list or dict of ``item``s (None when the item's type is not known)."""
    if item is None:
        return None
    known = item
    return lambda v: container(v, known)


def _items(value: Any, check: Check) -> Any:
    if type(value) is not list:
        return _FAIL
    out = [check(v) for v in value]
    return _FAIL if any(v is _FAIL for v in out) else out


def _entries(value: Any, check: Check) -> Any:
    if type(value) is not dict or any(type(k) is not str for k in value):
        return _FAIL
    out = {k: check(v) for k, v in value.items()}
    return _FAIL if any(v is _FAIL for v in out.values()) else out


def _time(value: Any) -> Any:
    if type(value) is not str or not _TIME_RE.fullmatch(value):
        return _FAIL
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return _FAIL


def _constrained(check: Check, kwargs: dict[str, Any]) -> Check:
    """``check`` then the field's constraints (on the value when it is not None, as pydantic)."""
    low, high = kwargs.get("min_length"), kwargs.get("max_length")
    ge, le = kwargs.get("ge"), kwargs.get("le")
    pattern = re.compile(kwargs["pattern"]) if "pattern" in kwargs else None

    def constrained(value: Any) -> Any:
        value = check(value)
        if value is _FAIL or value is None:
            return value
        if (low is not None or high is not None) and not isinstance(value, str | list | dict):
            return _FAIL
        if low is not None and len(value) < low:
            return _FAIL
        if high is not None and len(value) > high:
            return _FAIL
        if (ge is not None or le is not None) and (
            type(value) is not int or (ge is not None and value < ge) or (le is not None and value > le)
        ):
            return _FAIL
        if pattern is not None:
            # pydantic's regex engine is not Python's: only plain ASCII text is read here
            if type(value) is not str or not (value.isascii() and value.isprintable()):
                return _FAIL
            if not pattern.search(value):
                return _FAIL
        return value

    return constrained
