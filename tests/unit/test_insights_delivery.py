"""The delivery metrics a closed deployment emits (``tracking.delivery``: pure, a table)."""

from __future__ import annotations

from typing import Any

import pytest

from ecspilot.tracking.delivery import delivery_metrics


@pytest.mark.parametrize(
    ("record", "before", "status", "expected"),
    [
        (
            {
                "trigger": "push",
                "image_pushed_at": "2026-11-02T10:00:00Z",
                "finished_at": "2026-11-02T10:20:00Z",
            },
            "IN_PROGRESS",
            "COMPLETED",
            [
                ("closed", 1.0),
                ("completed", 1.0),
                ("lead_time", 1200.0),
            ],
        ),
        (
            {"trigger": "promotion", "finished_at": "2026-11-02T10:20:00Z"},
            "",
            "COMPLETED",
            [("closed", 1.0), ("completed", 1.0)],
        ),
        (
            {"trigger": "push"},
            "IN_PROGRESS",
            "FAILED",
            [("closed", 1.0), ("failed", 1.0)],
        ),
        ({"trigger": "push"}, "FAILED", "ROLLED_BACK", []),
        (
            {
                "trigger": "rollback",
                "started_at": "2026-11-02T10:00:00Z",
                "finished_at": "2026-11-02T10:05:00Z",
            },
            "",
            "COMPLETED",
            [("restore", 300.0)],
        ),
        ({"trigger": "rollback"}, "IN_PROGRESS", "FAILED", []),
        ({"trigger": "push"}, "", "IN_PROGRESS", []),
    ],
)
def test_delivery_metrics(record: dict[str, Any], before: str, status: str, expected: list[Any]) -> None:
    assert delivery_metrics(record, before, status) == expected
