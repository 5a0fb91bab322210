"""Presentation for the CLI and the demo: tables and JSON. The only place that prints."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], out: TextIO | None = None) -> None:
    """Print ``rows`` as an aligned text table with the given columns."""
    out = out or sys.stdout
    cells = [[str(r.get(c, "") if r.get(c) is not None else "") for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(), file=out)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip(), file=out)
    if not rows:
        print("(none)", file=out)


def as_json(data: Any, out: TextIO | None = None) -> None:
    print(json.dumps(data, indent=2, default=str), file=out or sys.stdout)


def say(text: str = "", out: TextIO | None = None) -> None:
    print(text, file=out or sys.stdout)


def counted(summary: Mapping[str, int]) -> str:
    """``{"create": 1, "error": 3}`` as ``1 create, 3 errors`` (a count of errors is plural)."""
    return ", ".join(
        f"{n} {change}{'s' if change == 'error' and n != 1 else ''}" for change, n in sorted(summary.items())
    )
