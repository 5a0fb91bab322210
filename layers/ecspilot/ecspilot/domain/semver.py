"""Semantic Versioning 2.0.0, pure: parse a tag, order versions, judge a jump (issue 27).

- :func:`parse`: ``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`` with an optional leading ``v``;
  numeric identifiers with leading zeros are refused (the spec's items 2 and 9), as are empty
  identifiers; anything else is not a version (None);
- :class:`Version` orders by the spec's precedence (item 11): major, minor, patch numerically,
  then a prerelease ranks below its release, prerelease identifiers compare one by one
  (numeric ones numerically and below alphanumeric ones, which compare in ASCII order; a
  shorter list ranks lower when all before are equal). Build metadata never orders: two
  versions that differ only by it are *equal* (:meth:`Version.same_version`);
- :func:`jump` names the size of a move (``patch``, ``minor``, ``major``) and :func:`allowed`
  says whether an ``allow`` rule lets it through by itself.
"""

from __future__ import annotations

import re
from dataclasses import field
from typing import Literal

from ecspilot.records import dataclass

Jump = Literal["patch", "minor", "major"]
JUMPS: tuple[Jump, ...] = ("patch", "minor", "major")

_NUM = r"0|[1-9][0-9]*"
_PRE_ID = r"0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*"
_SEMVER = re.compile(
    rf"v?(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>(?:{_PRE_ID})(?:\.(?:{_PRE_ID}))*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)


@dataclass(frozen=True, order=False)
class Version:
    """A parsed semantic version; compare with ``<``, ``>`` (precedence, build ignored)."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: str = field(default="", compare=False)

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        """The precedence key: a release (no prerelease) ranks above each of its prereleases."""
        ids = tuple((1, 0, p) if not p.isdigit() else (0, int(p), "") for p in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, ids)

    def __lt__(self, other: Version) -> bool:
        return self.key() < other.key()

    def __gt__(self, other: Version) -> bool:
        return self.key() > other.key()

    def __le__(self, other: Version) -> bool:
        return self.key() <= other.key()

    def __ge__(self, other: Version) -> bool:
        return self.key() >= other.key()

    def same_version(self, other: Version) -> bool:
        """Equal precedence (build metadata ignored)."""
        return self.key() == other.key()

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        return text + (f"+{self.build}" if self.build else "")


def parse(tag: str) -> Version | None:
    """The version a tag names (``v1.2.3``, ``1.4.0-rc.1``, ``2.0.0+abc``), or None."""
    m = _SEMVER.fullmatch(tag)
    if m is None:
        return None
    pre = tuple(m.group("pre").split(".")) if m.group("pre") else ()
    return Version(int(m["major"]), int(m["minor"]), int(m["patch"]), pre, m.group("build") or "")


def jump(running: Version, candidate: Version) -> Jump:
    """How far ``candidate`` moves from ``running``: a different major is ``major``, else a
    different minor is ``minor``, else ``patch`` (a patch or a prerelease of the same line)."""
    if candidate.major != running.major:
        return "major"
    if candidate.minor != running.minor:
        return "minor"
    return "patch"


def allowed(allow: Jump, running: Version, candidate: Version) -> bool:
    """Whether ``allow`` (the biggest jump deployed by itself) lets ``candidate`` replace
    ``running``. A 0.y.z version is not special here: ``allow: minor`` lets 0.3 -> 0.4 through."""
    return JUMPS.index(jump(running, candidate)) <= JUMPS.index(allow)


def highest_version(tags: list[str]) -> Version | None:
    """The highest version among ``tags`` (the ones that are versions), or None."""
    versions = [v for v in (parse(t) for t in tags) if v is not None]
    return max(versions, key=Version.key) if versions else None


CLAIM_BASE = 1e10  # above any epoch second a push-time claim holds (about 1.8e9 today)
_CAP = 9999


def claim_rank(version: Version) -> float:
    """The order a container's claim carries for an ``order: semver`` deployment (the state
    table's claims compare one number, ``aws.service_state``): above every push-time claim,
    then by major, minor, patch (each capped at 9999) and release over prerelease. Prereleases of
    one patch tie (the claims' tie-break, the digest, decides a race between them). Exact in a
    float: at most about 2e12."""
    major, minor, patch = (min(n, _CAP) for n in (version.major, version.minor, version.patch))
    return CLAIM_BASE + ((major * 10_000 + minor) * 10_000 + patch) * 2 + (0 if version.prerelease else 1)
