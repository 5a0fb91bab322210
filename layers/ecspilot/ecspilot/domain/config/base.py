"""The config's building blocks: the base model, name and tag rules, and image sources."""

from __future__ import annotations

import fnmatch
import re
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
else:
    from ecspilot.domain.modeling import (
        BaseModel,
        ConfigDict,
        Field,
        ValidationInfo,
        field_validator,
        model_validator,
    )

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
# ECR tags are [A-Za-z0-9_.-]; patterns add fnmatch's * ? [ ] !
TAG_GLOB_RE = re.compile(r"^[A-Za-z0-9_.\-*?\[\]!]{1,128}$")
REPOSITORY_RE = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
OVERRIDE_FIELDS = ("command", "environment", "cpu", "memory")


class Model(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable."""

    # defer_build: the validator is built on first use, not at import (a cold start builds only
    # what its first event validates; a config loaded from its compact form never validates)
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ImageSource(Model):
    """Where a container's image comes from: an ECR repository and tag patterns."""

    repository: str
    tags: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    # release policies (issue 27, domain/semver.py, deploy/versions.py): only with ``tags``
    order: Literal["semver", "pushed"] = "pushed"  # which push wins: the highest version or the newest
    allow: Literal["patch", "minor", "major"] = "major"  # a bigger jump waits for `ecspilot approve`
    prerelease: bool = False  # with order: semver, a prerelease is never deployed by itself

    @model_validator(mode="before")
    @classmethod
    def _policy_with_tags(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tags" not in data:
            given = sorted(k for k in ("order", "allow", "prerelease") if k in data)
            if given:
                raise ValueError(f"{', '.join(given)} only with tags (the tag patterns whose versions order)")
        return data

    @field_validator("allow")
    @classmethod
    def _allow_needs_semver(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("order") != "semver":  # given at all (a default is not validated)
            raise ValueError("allow needs order: semver (a jump is measured between versions)")
        return value

    @field_validator("prerelease")
    @classmethod
    def _prerelease_needs_semver(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("order") != "semver":
            raise ValueError("prerelease needs order: semver (only a version has prereleases)")
        return value

    @property
    def semver(self) -> bool:
        """True when the highest version wins, not the newest push."""
        return self.order == "semver"

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        if not REPOSITORY_RE.fullmatch(value) or len(value) > 256:
            raise ValueError(f"{value!r} is not a valid ECR repository name")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not TAG_GLOB_RE.fullmatch(pattern):
                raise ValueError(
                    f"{pattern!r} is not a tag glob: use letters, digits, '_', '.', '-' and * ? [ ]"
                )
            if pattern.count("[") != pattern.count("]"):
                raise ValueError(f"{pattern!r} has an unbalanced '[' ']'")
        return value

    def matches(self, repository: str, tag: str) -> bool:
        """True when ``repository:tag`` is a push this source follows (with ``order: semver``,
        only a tag that is a semantic version: the others are ignored, deploy/versions.py)."""
        if repository != self.repository or not any(fnmatch.fnmatchcase(tag, p) for p in self.tags):
            return False
        if self.semver:
            from ecspilot.domain.semver import parse  # noqa: PLC0415 - only semver sources

            return parse(tag) is not None
        return True
