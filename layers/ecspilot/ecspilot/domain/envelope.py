"""The shapes every event model shares, and parsing with errors that name the field.

Kept apart from the event models themselves (:mod:`ecspilot.domain.events`) so a handler
loads only the models it parses.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ecspilot.domain.modeling import validation_errors

if TYPE_CHECKING:
    from pydantic import BaseModel, ConfigDict, Field
else:
    from ecspilot.domain.modeling import BaseModel, ConfigDict, Field

from ecspilot.errors import EventError

M = TypeVar("M", bound=BaseModel)


class EventModel(BaseModel):
    """Events carry more keys than we read: ignore the rest, keep ours immutable."""

    # defer_build: the validator is built on first use, not at import (a cold start builds only
    # what its first event validates; a config loaded from its compact form never validates)
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)


class EventBridgeEvent(EventModel):
    """The envelope every EventBridge event shares; subclasses add detail-type, source and detail."""

    id: str
    account: str = Field(pattern=r"^[0-9]{12}$")  # ASCII digits: \d is any Unicode digit
    region: str = Field(min_length=1)
    time: datetime


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(event)"


def parse_event(model: type[M], event: Any, kind: str) -> M:
    """Validate ``event`` as ``model``; raise :class:`EventError` naming the first bad field."""
    if not isinstance(event, dict):
        raise EventError(f"malformed {kind} event: expected a JSON object, got {type(event).__name__}")
    try:
        return model.model_validate(event)
    except ValueError as exc:
        errors = validation_errors(exc)
        if not errors:
            raise
        problems = [f"{_field_path(e['loc'])}: {e['msg']}" for e in errors]
        raise EventError(
            f"malformed {kind} event: {'; '.join(problems)}", field=_field_path(errors[0]["loc"])
        ) from exc
