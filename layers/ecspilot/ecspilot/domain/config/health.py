"""Service health settings: when replaced tasks become a crash loop (``crash_loop``).

A service's ``crash_loop`` is ``{replacements: N, minutes: M}`` (a loop is N replacements
within M minutes), ``true`` (the defaults, 5 in 10) or ``false`` (no detection). Omitted means
the defaults: a loop is worth knowing about for every service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import Field, StrictBool
else:
    from ecspilot.domain.modeling import Field

from ecspilot.domain.config.base import Model

DEFAULT_REPLACEMENTS = 5
DEFAULT_MINUTES = 10


class CrashLoopConfig(Model):
    """N replacements within M minutes make a crash loop."""

    replacements: int = Field(default=DEFAULT_REPLACEMENTS, ge=2, le=1000)
    minutes: int = Field(default=DEFAULT_MINUTES, ge=1, le=1440)


if TYPE_CHECKING:  # a model's annotation names the union itself (its twin resolves StrictBool)
    CrashLoopSetting = CrashLoopConfig | StrictBool


def crash_loop_policy(setting: CrashLoopSetting) -> CrashLoopConfig | None:
    """The policy a service's ``crash_loop`` setting means: None when detection is off."""
    if setting is False:
        return None
    if setting is True:
        return CrashLoopConfig()
    return setting
