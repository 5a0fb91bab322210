"""SemVer 2.0.0 order and the release policy decisions (issue 27), table-tested."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from ecspilot.domain.release_policy import Candidate, Policy, candidates, highest_allowed, version_verdict
from ecspilot.domain.semver import Version, allowed, jump, parse

D1, D2, D3 = "sha256:" + "1" * 64, "sha256:" + "2" * 64, "sha256:" + "3" * 64


def v(tag: str) -> Version:
    got = parse(tag)
    assert got is not None, tag
    return got


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("1.2.3", (1, 2, 3, (), "")),
        ("v1.2.3", (1, 2, 3, (), "")),
        ("0.0.0", (0, 0, 0, (), "")),
        ("1.4.0-rc.1", (1, 4, 0, ("rc", "1"), "")),
        ("1.0.0-alpha-1.0a.x-y", (1, 0, 0, ("alpha-1", "0a", "x-y"), "")),
        ("2.0.0+abc.001", (2, 0, 0, (), "abc.001")),  # build identifiers may have leading zeros
        ("v10.20.30-0.3.7+exp.sha.5114f85", (10, 20, 30, ("0", "3", "7"), "exp.sha.5114f85")),
    ],
)
def test_parse(tag: str, expected: tuple[object, ...]) -> None:
    got = v(tag)
    assert (got.major, got.minor, got.patch, got.prerelease, got.build) == expected


@pytest.mark.parametrize(
    "tag",
    [
        "01.2.3",
        "1.02.3",
        "1.2.03",
        "1.2.3-01",  # a numeric prerelease identifier with a leading zero
        "1.2",
        "1.2.3.4",
        "V1.2.3",
        "vv1.2.3",
        "1.2.3-",
        "1.2.3+",
        "1.2.3-a..b",
        "1.2.3\n",
        "latest",
        "",
        "-1.2.3",
        "1.2.3-rc_1",
    ],
)
def test_not_a_version(tag: str) -> None:
    assert parse(tag) is None


# SemVer 2.0.0 item 11's example chain, each lower than the next
CHAIN = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.1.0",
    "1.9.0",
    "1.10.0",
    "2.0.0",
]


@pytest.mark.parametrize(("low", "high"), list(itertools.pairwise(CHAIN)))
def test_precedence(low: str, high: str) -> None:
    assert v(low) < v(high)
    assert v(high) > v(low)
    assert not v(high) < v(low)


def test_build_metadata_does_not_order() -> None:
    assert v("1.0.0+a").same_version(v("v1.0.0+b"))
    assert not v("1.0.0+a") < v("1.0.0+b")
    assert not v("1.0.0+b") < v("1.0.0+a")
    assert v("1.0.0-rc.1+x").same_version(v("1.0.0-rc.1"))
    assert str(v("v1.0.0-rc.1+x")) == "1.0.0-rc.1+x"


@pytest.mark.parametrize(
    ("running", "candidate", "size", "patch", "minor", "major"),
    [
        ("1.2.3", "1.2.4", "patch", True, True, True),
        ("1.2.3", "1.3.0", "minor", False, True, True),
        ("1.2.3", "2.0.0", "major", False, False, True),
        ("0.3.0", "0.4.0", "minor", False, True, True),
        ("1.2.3", "1.2.4-rc.1", "patch", True, True, True),
        ("1.9.9", "2.0.0-rc.1", "major", False, False, True),
    ],
)
def test_allow_rules(running: str, candidate: str, size: str, patch: bool, minor: bool, major: bool) -> None:
    assert jump(v(running), v(candidate)) == size
    assert [allowed(a, v(running), v(candidate)) for a in ("patch", "minor", "major")] == [
        patch,
        minor,
        major,
    ]


@pytest.mark.parametrize(
    ("policy", "candidate", "running", "approved", "verdict"),
    [
        (Policy(), "v1.2.4", "v1.3.0", False, "stale"),  # the hotfix after a newer minor
        (Policy(), "v1.2.4", "v1.3.0", True, "stale"),  # approval never moves back
        (Policy(), "v1.3.0", "v1.3.0", False, "conflict"),  # a re-tag
        (Policy(), "v1.3.0+b2", "v1.3.0+b1", False, "conflict"),  # build metadata does not order
        (Policy(), "v1.3.0", "v1.3.0", True, "deploy"),
        (Policy(), "v1.3.1", "v1.3.0", False, "deploy"),
        (Policy(), "v2.0.0", None, False, "deploy"),  # nothing to order against
        (Policy(), "v1.4.0-rc.1", "v1.3.0", False, "awaiting approval"),
        (Policy(prerelease=True), "v1.4.0-rc.1", "v1.3.0", False, "deploy"),
        (Policy(), "v1.4.0-rc.1", None, False, "awaiting approval"),
        (Policy(), "v1.4.0-rc.1", "v1.3.0", True, "deploy"),
        (Policy(prerelease=True), "v1.4.0-rc.1", "v1.4.0", False, "stale"),  # a release outranks its rc
        (Policy(allow="minor"), "v2.0.0", "v1.3.0", False, "awaiting approval"),
        (Policy(allow="minor"), "v2.0.0", "v1.3.0", True, "deploy"),
        (Policy(allow="minor"), "v1.9.0", "v1.3.0", False, "deploy"),
        (Policy(allow="patch"), "v1.4.0", "v1.3.0", False, "awaiting approval"),
        (Policy(allow="patch"), "v1.3.7", "v1.3.0", False, "deploy"),
        (Policy(allow="major"), "v9.0.0", "v1.3.0", False, "deploy"),
    ],
)
def test_version_verdict(
    policy: Policy, candidate: str, running: str | None, approved: bool, verdict: str
) -> None:
    got, reason = version_verdict(policy, v(candidate), v(running) if running else None, D1, approved)
    assert got == verdict
    assert (reason == "") == (verdict == "deploy" and not approved)


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def listing(*images: tuple[list[str], str, int]) -> list[dict[str, object]]:
    return [
        {"imageTags": tags, "imageDigest": digest, "imagePushedAt": T0.replace(hour=h)}
        for tags, digest, h in images
    ]


def test_candidates_ignore_tags_that_are_not_versions() -> None:
    found, ignored = candidates(listing((["v1.3.0", "latest"], D1, 1), (["nightly"], D2, 2)), ["*"])
    assert [(c.tag, c.digest) for c in found] == [("v1.3.0", D1)]
    assert sorted(ignored) == ["latest", "nightly"]
    found, ignored = candidates(listing((["v1.3.0", "1.9.0"], D1, 1)), ["v*"])
    assert [c.tag for c in found] == ["v1.3.0"]
    assert ignored == []


@pytest.mark.parametrize(
    ("policy", "running", "images", "chosen", "why"),
    [
        # the newest push is the hotfix of the older line: the highest version wins
        (Policy(), "1.2.3", [(["v1.3.0"], D1, 1), (["v1.2.4"], D2, 5)], D1, ""),
        (
            Policy(allow="minor"),
            "1.2.3",
            [(["v2.0.0"], D1, 9), (["v1.4.0"], D2, 1), (["v1.3.0"], D3, 2)],
            D2,
            "",
        ),
        (Policy(allow="patch"), "1.2.3", [(["v1.3.0"], D1, 9)], None, ""),
        (Policy(), "1.2.3", [(["v1.4.0-rc.1"], D1, 9), (["v1.3.0"], D2, 1)], D2, ""),
        (Policy(prerelease=True), "1.2.3", [(["v1.4.0-rc.1"], D1, 9), (["v1.3.0"], D2, 1)], D1, ""),
        (Policy(), None, [(["v1.3.0+a"], D1, 1), (["v1.3.0+b"], D2, 2)], None, "conflict"),
        (Policy(), None, [], None, ""),
    ],
)
def test_highest_allowed(
    policy: Policy,
    running: str | None,
    images: list[tuple[list[str], str, int]],
    chosen: str | None,
    why: str,
) -> None:
    found, _ = candidates(listing(*images))
    got, reason = highest_allowed(found, policy, v(running) if running else None)
    assert (got.digest if got else None) == chosen
    assert why in reason
    assert (reason == "") == (why == "")
    assert all(isinstance(c, Candidate) for c in found)


P1 = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/release"
P2 = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/nightly"


@pytest.mark.parametrize(
    ("statuses", "verdict", "why"),
    [
        ([{"signingProfileArn": P1, "status": "COMPLETE"}], "pass", ""),
        (
            [{"signingProfileArn": P1, "status": "COMPLETE"}, {"signingProfileArn": P2, "status": "FAILED"}],
            "pass",
            "",
        ),
        ([{"signingProfileArn": P1, "status": "IN_PROGRESS"}], "deferred", "IN_PROGRESS"),
        (
            [{"signingProfileArn": P1, "status": "FAILED", "failureCode": "C", "failureReason": "why"}],
            "refused",
            "release: C (why)",
        ),
        ([{"signingProfileArn": P1, "status": "FAILED"}], "refused", "release: FAILED"),
        ([{"signingProfileArn": P2, "status": "COMPLETE"}], "refused", "ECR reports only nightly"),
        ([], "refused", "no signing status"),
        ([{"signingProfileArn": P1, "status": "SOMETHING_NEW"}], "refused", "no signing status"),
    ],
)
def test_signature_verdict(statuses: list[dict[str, str]], verdict: str, why: str) -> None:
    from ecspilot.domain.signatures import signature_verdict  # noqa: PLC0415

    got, reason = signature_verdict([P1], statuses)
    assert got == verdict
    assert why in reason


def test_claim_rank_orders_versions_above_push_times() -> None:
    from ecspilot.domain.semver import claim_rank  # noqa: PLC0415

    ranks = [claim_rank(v(t)) for t in ("0.0.1", "1.2.4", "1.3.0-rc.1", "1.3.0", "1.10.0", "2.0.0")]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)
    assert min(ranks) > 4e9  # above any epoch second of a push-time claim
    assert claim_rank(v("99999.0.0")) == claim_rank(v("9999.0.0"))  # capped, exact in a float
