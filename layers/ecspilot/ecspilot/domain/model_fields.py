"""What a model's class body declares, at run time: ``Field``, the validator decorators and
``ConfigDict`` as pydantic spells them, recorded for :mod:`ecspilot.domain.modeling` (the plain
classes and their pydantic twins) and :mod:`ecspilot.domain.model_strict` (the strict reading)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ConfigDict = dict  # run-time stand-in for pydantic's ConfigDict (a TypedDict: a dict)

MISSING: Any = object()


class ValidationInfo:
    """Run-time stand-in for pydantic's ValidationInfo (only annotations name it here)."""

    data: dict[str, Any]


class FieldSpec:
    """What ``Field(...)`` says of a field: its default and pydantic's keyword arguments."""

    __slots__ = ("default", "kwargs")

    def __init__(self, default: Any, kwargs: dict[str, Any]) -> None:
        self.default = default
        self.kwargs = kwargs

    @property
    def alias(self) -> str | None:
        alias = self.kwargs.get("alias")
        return alias if isinstance(alias, str) else None

    def has_default(self) -> bool:
        return self.default is not MISSING or "default_factory" in self.kwargs

    def make_default(self) -> Any:
        factory = self.kwargs.get("default_factory")
        return factory() if factory is not None else self.default


def Field(default: Any = MISSING, **kwargs: Any) -> Any:  # noqa: N802 - pydantic's name
    """Run-time stand-in for ``pydantic.Field``: records the arguments for the twin."""
    return FieldSpec(default, kwargs)


class Validator:
    """A validator as the class body declared it, for the twin (``kind``: field or model)."""

    __slots__ = ("fields", "func", "kind", "mode")

    def __init__(self, func: Any, kind: str, fields: tuple[str, ...], mode: str) -> None:
        self.func = func
        self.kind = kind
        self.fields = fields
        self.mode = mode


def field_validator(*fields: str, mode: str = "after") -> Callable[[Any], Any]:
    """Run-time stand-in for ``pydantic.field_validator``."""

    def mark(func: Any) -> Any:
        return Validator(func, "field", fields, mode)

    return mark


def model_validator(*, mode: str) -> Callable[[Any], Any]:
    """Run-time stand-in for ``pydantic.model_validator``."""

    def mark(func: Any) -> Any:
        return Validator(func, "model", (), mode)

    return mark
