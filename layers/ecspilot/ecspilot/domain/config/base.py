"""The config's building blocks: the base model, name and tag rules, and image sources."""

from __future__ import annotations

import fnmatch
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
# ECR tags are [A-Za-z0-9_.-]; patterns add fnmatch's * ? [ ] !
TAG_GLOB_RE = re.compile(r"^[A-Za-z0-9_.\-*?\[\]!]{1,128}$")
REPOSITORY_RE = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
OVERRIDE_FIELDS = ("command", "environment", "cpu", "memory")


class Model(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageSource(Model):
    """Where a container's image comes from: an ECR repository and tag patterns."""

    repository: str
    tags: list[str] = Field(default_factory=lambda: ["*"], min_length=1)

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
        """True when ``repository:tag`` is a push this source follows."""
        return repository == self.repository and any(fnmatch.fnmatchcase(tag, p) for p in self.tags)
