"""``ecspilot demo`` lives in the development package (``ecspilot_dev``), outside the Lambda layer: the
CLI imports it only for that verb and says what to do where it is missing."""

from __future__ import annotations

import sys

import pytest

from ecspilot.interfaces import cli


@pytest.mark.parametrize("missing", ["ecspilot_dev", "moto"])
def test_the_demo_verb_without_the_development_tools_says_what_is_missing_and_how_to_get_it(
    missing: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a Python where the package cannot be imported (None in sys.modules: as if not installed)
    for name in [m for m in sys.modules if m == missing or m.startswith(f"{missing}.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, missing, None)
    # WHEN the user asks for the demo
    code = cli.main(["demo"])
    # THEN it fails as an action (exit 1) with one line naming the missing package and the fix
    err = capsys.readouterr().err
    assert code == 1
    assert f"({missing} is not installed)" in err
    assert "make demo" in err
