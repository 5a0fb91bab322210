"""Presentation for the CLI and the demo: tables and JSON. The only place that prints.

Text from AWS (an ECS stop reason, a deployment's reason, a tag) is printed escaped (issue 24):
control and format characters (C0, DEL, C1, bidirectional overrides, zero-width marks) become
``\\xNN`` / ``\\uNNNN``, so no string an API returns can move the cursor, clear the screen,
set the terminal's title or reorder what the operator reads. Table cells keep no line breaks;
free text keeps its newlines and tabs. JSON is escaped by the encoder.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any, TextIO


def printable(text: str, keep: str = "") -> str:
    """``text`` with every control or format character but those in ``keep`` escaped."""
    return "".join(
        ch
        if ch in keep or unicodedata.category(ch) not in ("Cc", "Cf")
        else (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        for ch in text
    )


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], out: TextIO | None = None) -> None:
    """Print ``rows`` as an aligned text table with the given columns."""
    out = out or sys.stdout
    cells = [[printable(str(r.get(c, "") if r.get(c) is not None else "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(), file=out)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip(), file=out)
    if not rows:
        print("(none)", file=out)


def as_json(data: Any, out: TextIO | None = None) -> None:
    print(json.dumps(data, indent=2, default=str), file=out or sys.stdout)


def say(text: str = "", out: TextIO | None = None) -> None:
    print(printable(text, keep="\n\t"), file=out or sys.stdout)


def error(text: str) -> None:
    """One ``error: ...`` line on stderr (escaped: an error may quote what AWS answered)."""
    print(f"error: {printable(text, keep=chr(10))}", file=sys.stderr)


def counted(summary: Mapping[str, int]) -> str:
    """``{"create": 1, "error": 3}`` as ``1 create, 3 errors`` (a count of errors is plural)."""
    return ", ".join(
        f"{n} {change}{'s' if change == 'error' and n != 1 else ''}" for change, n in sorted(summary.items())
    )
