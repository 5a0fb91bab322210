"""A self-contained HTML page printed by headless Chromium and read back as text (Debian's chromium
and poppler-utils' pdftotext, installed by `make test` as root): what a person would see."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NO_CHROMIUM = "chromium is not installed (make test installs it as root)"


def printed_text(page: Path) -> str:
    """The text of ``page`` as Chromium prints it to PDF; skips when pdftotext is missing."""
    assert CHROMIUM is not None, NO_CHROMIUM
    pdf = page.with_suffix(".pdf")
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    return subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
