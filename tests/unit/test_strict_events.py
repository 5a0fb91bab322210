"""Strict event parsing: a digest is exactly sha256 + 64 lowercase hex, an account 12 ASCII digits."""

from __future__ import annotations

import pytest

from ecspilot.domain.envelope import parse_event
from ecspilot.domain.events import EcrImageActionEvent
from ecspilot.domain.images import DIGEST_RE
from ecspilot.errors import EventError
from ecspilot_dev.local import load_event

GOOD = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("digest", "valid"),
    [
        (GOOD, True),
        (GOOD + "\n", False),
        ("\n" + GOOD, False),
        (GOOD.upper().replace("SHA256", "sha256"), False),
        (GOOD[:-1], False),
        (GOOD + "0", False),
        ("sha512:" + "0" * 64, False),
        (GOOD + " ", False),
    ],
    ids=[
        "exact",
        "trailing-newline",
        "leading-newline",
        "uppercase",
        "short",
        "long",
        "sha512",
        "trailing-space",
    ],
)
def test_a_digest_is_exactly_sha256_and_64_lowercase_hex(digest: str, valid: bool) -> None:
    assert (DIGEST_RE.fullmatch(digest) is not None) is valid
    event = load_event("ecr_push", {"image-digest": digest})
    if valid:
        assert parse_event(EcrImageActionEvent, event, "ECR").detail.image_digest == digest
    else:
        with pytest.raises(EventError, match="image-digest"):
            parse_event(EcrImageActionEvent, event, "ECR")


@pytest.mark.parametrize("account", ["12345678901", "1234567890123", "123456789012\n", "١٢٣٤٥٦٧٨٩٠١٢"])
def test_an_account_is_exactly_twelve_ascii_digits(account: str) -> None:
    with pytest.raises(EventError, match="account"):
        parse_event(EcrImageActionEvent, load_event("ecr_push", account=account), "ECR")
