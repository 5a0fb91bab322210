"""Container image references: parsing, ECR registries, digest pinning. Pure."""

from __future__ import annotations

import re
from datetime import datetime

from ecspilot.records import dataclass

# use with fullmatch: "$" would also match before a trailing newline
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
# ECR's image tag: the OCI distribution spec's characters, ECR's 300-character limit
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,299}")
# ECR's repository name pattern (2 to 256 characters, checked with the length below)
REPOSITORY_RE = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)


def valid_tag(tag: str) -> bool:
    """True when ``tag`` is a tag ECR can hold (no control characters, no spaces, no ``@``)."""
    return bool(TAG_RE.fullmatch(tag))


def valid_repository(name: str) -> bool:
    """True when ``name`` is an ECR repository name."""
    return 2 <= len(name) <= 256 and bool(REPOSITORY_RE.fullmatch(name))


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference: ``[registry/]repository[:tag][@digest]``."""

    registry: str | None
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, image: str) -> ImageRef:
        """Parse ``image`` as Docker does: the first path part is a registry when it looks like a host."""
        rest, _, digest = image.partition("@")
        registry: str | None = None
        first, slash, remainder = rest.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            registry, rest = first, remainder
        repository, tag = rest, None
        last_slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon > last_slash:
            repository, tag = rest[:colon], rest[colon + 1 :]
        return cls(registry=registry, repository=repository, tag=tag or None, digest=digest or None)

    def same_repository(self, registry: str, repository: str) -> bool:
        """True when this reference names ``registry/repository``."""
        return self.registry == registry and self.repository == repository


def ecr_registry(account: str, region: str) -> str:
    """The registry host of an account's private ECR in ``region``."""
    suffix = ".amazonaws.com.cn" if region.startswith("cn-") else ".amazonaws.com"
    return f"{account}.dkr.ecr.{region}{suffix}"


@dataclass(frozen=True)
class ImagePush:
    """One successful, tagged push to ECR: the facts every deploy decision needs."""

    account: str
    region: str
    repository: str
    tag: str
    digest: str
    event_id: str = ""
    time: datetime | None = None

    @property
    def registry(self) -> str:
        return ecr_registry(self.account, self.region)

    @property
    def pinned(self) -> str:
        """The image reference pinned by digest: ``REGISTRY/REPO@sha256:...``."""
        return f"{self.registry}/{self.repository}@{self.digest}"


def short_digest(digest: str | None) -> str:
    """``sha256:0123456789ab`` for logs and tables."""
    return (digest or "-")[:19]
