"""Models without pydantic on a Lambda's path: the config's and the events' classes, validated by
pydantic only where something has to be validated (issue 29, docs/ARCHITECTURE.md "Cold start").

The config and event modules are written as pydantic models (``Field``, ``field_validator``,
``model_validator``, ``model_config``) and type-checked as such (they import pydantic's names under
``TYPE_CHECKING``). At run time they import this module's stand-ins instead, so each class is a plain
Python class: defining it costs what a plain class costs, and so does loading the config's compact
form (``domain/config/compact.py``), which holds only plain instances. Nothing imports pydantic for
that.

Validation (``Model(**data)``, ``Model.model_validate(data)``) is pydantic's, always: the first time
a class validates, its *twin* is made, a real pydantic model built from the plain class's own
annotations, defaults, ``Field`` constraints, validators, methods and properties, with every model
named in an annotation replaced by its twin; the twin validates and the result is copied into plain
instances. The errors are pydantic's (:func:`validation_errors` reads them without importing it).
So the rules are written once and pydantic enforces them; a Lambda that only reads its compact config
never builds a twin, and an event's validation (:func:`strict_validate`) builds one only
for an event its strict reading cannot accept as is.

What the plain instances keep of pydantic's model API is what ecspilot uses: attribute access,
``model_copy``, ``model_dump``, ``model_fields_set``, ``model_validate``, ``model_fields`` and
``model_json_schema`` (the last two through the twin), equality, hashing, ``repr``, pickling; they are
frozen, like every ecspilot model.
"""

from __future__ import annotations

import copy
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ecspilot.domain.model_fields import (
    MISSING,
    ConfigDict,
    Field,
    FieldSpec,
    ValidationInfo,
    Validator,
    field_validator,
    model_validator,
)
from ecspilot.domain.model_strict import strict_validate

__all__ = [
    "BaseModel",
    "ConfigDict",
    "Field",
    "PlainModel",
    "ValidationInfo",
    "field_validator",
    "from_twin",
    "model_validator",
    "strict_validate",
    "to_twin",
    "twin",
    "validation_errors",
]

_REGISTRY: list[type[PlainModel]] = []  # every plain model class, in definition order
_TWIN_LOCK = threading.RLock()


class _PlainMeta(type):
    """Lets a twin's instance pass ``isinstance(x, PlainClass)``: validators and methods copied
    into a twin test their values against the names they see, the plain classes."""

    def __instancecheck__(cls, instance: Any) -> bool:
        if type.__instancecheck__(cls, instance):
            return True
        plain = getattr(type(instance), "__plain__", None)
        return isinstance(plain, type) and issubclass(plain, cls)


class _FromTwin:
    """A class attribute read from the twin (``Model.model_fields``, ``Model.model_json_schema``)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type[PlainModel]) -> Any:
        return getattr(twin(owner), self.name)


class PlainModel(metaclass=_PlainMeta):
    """The run-time base of every ecspilot model (see the module's docstring)."""

    model_config: dict[str, Any] = {}
    __field_specs__: dict[str, Any] = {}  # name -> FieldSpec, a plain default or MISSING (inherited too)
    __own_fields__: tuple[str, ...] = ()
    __validators__: dict[str, Validator] = {}
    model_fields = _FromTwin()
    model_json_schema = _FromTwin()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        annotations = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 - the class body's own
        specs = dict(cls.__field_specs__)
        own = []
        for name, annotation in annotations.items():
            if name.startswith("_") or name == "model_config" or str(annotation).startswith("ClassVar"):
                continue
            specs[name] = cls.__dict__.get(name, MISSING)
            own.append(name)
            if name in cls.__dict__:
                delattr(cls, name)  # an instance always has its own value
        validators = {}
        for name, value in list(cls.__dict__.items()):
            if isinstance(value, Validator):
                validators[name] = value
                setattr(cls, name, value.func)  # still callable as written
        cls.__field_specs__ = specs
        cls.__own_fields__ = tuple(own)
        cls.__validators__ = validators
        _REGISTRY.append(cls)

    def __init__(self, **data: Any) -> None:
        validated = type(self).model_validate(data)
        object.__setattr__(self, "__dict__", validated.__dict__)

    @classmethod
    def model_validate(cls, data: Any) -> Any:
        """Validate ``data``: a plain instance, or pydantic's ValidationError. Data the strict reading
        (:func:`strict_validate`) accepts as is needs no pydantic; anything else is the twin's."""
        if type(data) is cls:
            return data  # pydantic's default: an instance is not validated again
        valid = strict_validate(cls, data)
        if valid is not None:
            return valid
        return from_twin(twin(cls).model_validate(to_twin(data)))

    @classmethod
    def construct_valid(cls, values: dict[str, Any], fields_set: set[str] | frozenset[str]) -> Any:
        """A plain instance of values already validated (the compact form, the events' strict path)."""
        obj = object.__new__(cls)
        state = obj.__dict__
        state.update(values)
        state["__fields_set__"] = frozenset(fields_set)
        return obj

    @property
    def model_fields_set(self) -> set[str]:
        return set(self.__dict__.get("__fields_set__", ()))

    def _field_items(self) -> Iterator[tuple[str, Any]]:
        state = self.__dict__
        for name in type(self).__field_specs__:
            yield name, state[name]

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Any:
        """A copy, with ``update``'s values (not validated, as pydantic's model_copy)."""
        new = copy.deepcopy(self) if deep else copy.copy(self)
        if update:
            state = new.__dict__
            state.update(update)
            state["__fields_set__"] = frozenset(state.get("__fields_set__", ())) | frozenset(update)
        return new

    def model_dump(self, *, mode: str = "python", exclude_none: bool = False, **kwargs: Any) -> Any:
        """The fields as a dict, nested models too; ``mode="json"`` and other options go to the twin."""
        if mode == "python" and not kwargs:
            return _dump(self, exclude_none)
        return to_twin(self).model_dump(mode=mode, exclude_none=exclude_none, **kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"{type(self).__name__} is frozen: {name} cannot be assigned")

    def __delattr__(self, name: str) -> None:
        raise TypeError(f"{type(self).__name__} is frozen: {name} cannot be deleted")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return dict(self._field_items()) == dict(other._field_items())

    def __hash__(self) -> int:
        return hash((type(self), tuple(value for _, value in self._field_items())))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self._field_items())
        return f"{type(self).__name__}({fields})"


BaseModel = PlainModel  # the name the modules use


def _dump(value: Any, exclude_none: bool) -> Any:
    if _is_plain(value):
        return {
            name: _dump(item, exclude_none)
            for name, item in value._field_items()
            if not (exclude_none and item is None)
        }
    return _each(value, lambda item: _dump(item, exclude_none))


# --- the twins: pydantic models made from the plain classes, on first use -------------------------


class _TwinNames(Mapping[str, Any]):
    """An annotation's names as the twin must see them: a plain model's name means its twin."""

    def __init__(self, module_globals: dict[str, Any]) -> None:
        self.module_globals = module_globals

    def __getitem__(self, name: str) -> Any:
        if name not in self.module_globals:
            import pydantic  # noqa: PLC0415 - pydantic's own types (StrictBool), named under TYPE_CHECKING

            if hasattr(pydantic, name) and name[:1].isupper():
                return getattr(pydantic, name)
            raise KeyError(name)  # eval looks in the builtins then
        value = self.module_globals[name]
        if isinstance(value, type) and issubclass(value, PlainModel) and value is not PlainModel:
            return twin(value)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.module_globals)

    def __len__(self) -> int:
        return len(self.module_globals)


_NOT_COPIED = {"__dict__", "__weakref__", "__annotations__", "__module__", "__qualname__", "__doc__"}
_NOT_COPIED |= {"__field_specs__", "__own_fields__", "__validators__", "__twin__", "__static_attributes__"}
_NOT_COPIED |= {"__firstlineno__", "model_config"}
_DUNDERS_COPIED = {
    "__str__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__bool__",
    "__len__",
    "__iter__",
    "__contains__",
}


def twin(cls: type[PlainModel]) -> Any:
    """The pydantic model that validates for the plain class ``cls`` (made once, on first use)."""
    made = cls.__dict__.get("__twin__")
    if made is not None:
        return made
    with _TWIN_LOCK:
        made = cls.__dict__.get("__twin__")
        if made is not None:
            return made
        made = _make_twin(cls)
        type.__setattr__(cls, "__twin__", made)
        return made


def _make_twin(cls: type[PlainModel]) -> Any:
    import pydantic  # noqa: PLC0415 - only where something is validated

    parent = cls.__mro__[1]
    base: Any = pydantic.BaseModel if parent is PlainModel else twin(parent)
    module_globals = vars(sys.modules[cls.__module__])
    names = _TwinNames(module_globals)
    annotations = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 - the class body's own
    namespace: dict[str, Any] = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        "__annotations__": {},
        "model_config": pydantic.ConfigDict(**{**cls.model_config, "defer_build": True}),  # type: ignore[typeddict-item]
    }
    for name in cls.__own_fields__:
        annotation = annotations[name]
        namespace["__annotations__"][name] = (
            eval(annotation, module_globals, names) if isinstance(annotation, str) else annotation
        )
        spec = cls.__field_specs__[name]
        if isinstance(spec, FieldSpec):
            given = {} if spec.default is MISSING else {"default": spec.default}
            namespace[name] = pydantic.Field(**given, **spec.kwargs)
        elif spec is not MISSING:
            namespace[name] = spec
    for name, value in cls.__dict__.items():
        if name in _NOT_COPIED or name in namespace or name in cls.__validators__:
            continue
        if name.startswith("__") and name.endswith("__") and name not in _DUNDERS_COPIED:
            continue
        namespace[name] = value
    for name, validator in cls.__validators__.items():
        if validator.kind == "field":
            namespace[name] = pydantic.field_validator(*validator.fields, mode=validator.mode)(validator.func)  # type: ignore[call-overload]
        else:
            namespace[name] = pydantic.model_validator(mode=validator.mode)(validator.func)  # type: ignore[call-overload]
    made = type(base)(cls.__name__, (base,), namespace)
    type.__setattr__(made, "__plain__", cls)
    return made


def from_twin(value: Any) -> Any:
    """The plain copy of what a twin validated (nested models, lists, dicts and tuples too)."""
    plain = getattr(type(value), "__plain__", None)
    if plain is not None:
        values = {name: from_twin(getattr(value, name)) for name in type(value).model_fields}
        return plain.construct_valid(values, value.model_fields_set)
    return _each(value, from_twin)


def to_twin(value: Any) -> Any:
    """The twin copy of a plain instance, without validating (for pydantic's dump options, and a
    plain instance given to a twin to validate: pydantic takes its own models as they are)."""
    if _is_plain(value):
        made = twin(type(value))
        values = {name: to_twin(item) for name, item in value._field_items()}
        return made.model_construct(_fields_set=value.model_fields_set, **values)
    return _each(value, to_twin)


def _each(value: Any, convert: Callable[[Any], Any]) -> Any:
    """``value`` with ``convert`` applied to each item of a list, dict or tuple (else as it is)."""
    if isinstance(value, list):
        return [convert(item) for item in value]
    if isinstance(value, dict):
        return {key: convert(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(convert(item) for item in value)
    return value


def _is_plain(value: Any) -> bool:
    """A plain instance (``isinstance`` would also say so of a twin's, see ``_PlainMeta``)."""
    return type.__instancecheck__(PlainModel, value)


def validation_errors(exc: BaseException) -> list[dict[str, Any]] | None:
    """pydantic's error list when ``exc`` is its ValidationError, else None (pydantic not imported)."""
    core = sys.modules.get("pydantic_core")
    if core is None or not isinstance(exc, core.ValidationError):
        return None
    errors: list[dict[str, Any]] = [dict(e) for e in exc.errors()]
    return errors
