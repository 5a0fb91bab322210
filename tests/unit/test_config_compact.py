"""The config's compact form (ecspilot.domain.config.compact): the validated config, loaded at a cold
start only when it matches the YAML's bytes and this code; anything else reads the YAML."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ecspilot.domain.config import load_config
from ecspilot.domain.config.compact import compact_path, load_compact, write_compact
from ecspilot.errors import ConfigError
from ecspilot.interfaces.runtime import Runtime
from ecspilot.interfaces.settings import Settings
from ecspilot_dev.compact import main

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [ROOT / "config" / "ecspilot.yaml", ROOT / "bench" / "coldstart.yaml"]


def _copy(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "ecspilot.yaml"
    shutil.copyfile(source, target)
    return target


@pytest.mark.parametrize("source", SHIPPED, ids=lambda p: p.name)
def test_the_compact_form_is_the_validated_config(tmp_path: Path, source: Path) -> None:
    path = _copy(source, tmp_path)
    assert write_compact(path) == compact_path(path) == tmp_path / "ecspilot.yaml.compact"
    loaded = load_compact(path)
    assert loaded is not None
    assert loaded == load_config(path)
    assert loaded.model_fields_set == load_config(path).model_fields_set
    assert loaded.model_dump() == load_config(path).model_dump()


def _runtime_config(path: Path) -> object:
    return Runtime.build(settings=Settings(config_path=str(path)), clients=None).config


def test_the_runtime_loads_the_compact_form_when_it_matches(tmp_path: Path) -> None:
    path = _copy(ROOT / "bench" / "coldstart.yaml", tmp_path)
    write_compact(path)
    # swap the pickle for another valid config's, the header kept: the runtime reads the compact
    # form (what it was built from shows), proving it does not parse the YAML when they match
    other = tmp_path / "other" / "ecspilot.yaml"
    other.parent.mkdir()
    other.write_text(
        "version: 1\nservices:\n  - name: lone\n    cluster: c\n    containers: {app: {repository: r}}\n"
    )
    write_compact(other)
    head = compact_path(path).read_bytes().partition(b"\n")[0]
    body = compact_path(other).read_bytes().partition(b"\n")[2]
    compact_path(path).write_bytes(head + b"\n" + body)
    assert [s.name for s in _runtime_config(path).services] == ["lone"]  # type: ignore[attr-defined]


def test_an_edited_yaml_is_read_again(tmp_path: Path) -> None:
    path = _copy(ROOT / "bench" / "coldstart.yaml", tmp_path)
    write_compact(path)
    before = load_config(path)
    path.write_text(path.read_text().replace("version: 1", "version: 1\n# edited", 1))
    assert load_compact(path) is None
    edited = path.read_text().replace(
        "services:", "services:\n  - {name: added, cluster: c, containers: {app: {repository: r}}}", 1
    )
    path.write_text(edited)
    assert load_compact(path) is None
    names = [s.name for s in _runtime_config(path).services]  # type: ignore[attr-defined]
    assert names[0] == "added"
    assert names[1:] == [s.name for s in before.services]


def test_an_edited_yaml_that_is_invalid_fails_as_before(tmp_path: Path) -> None:
    path = _copy(ROOT / "bench" / "coldstart.yaml", tmp_path)
    write_compact(path)
    path.write_text(path.read_text() + "\nbogus_key: 1\n")
    with pytest.raises(ConfigError, match="bogus_key"):
        _runtime_config(path)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b.partition(b"\n")[0], id="no-body"),
        pytest.param(lambda b: b"not json\n" + b.partition(b"\n")[2], id="bad-header"),
        pytest.param(lambda b: b"", id="empty"),
        pytest.param(
            lambda b: (
                json.dumps({**json.loads(b.partition(b"\n")[0]), "fingerprint": "0" * 64}).encode()
                + b"\n"
                + b.partition(b"\n")[2]
            ),
            id="other-code",
        ),
        pytest.param(
            lambda b: b.partition(b"\n")[0] + b"\n" + b.partition(b"\n")[2][:-20] + b"\x00" * 20,
            id="bad-pickle",
        ),
    ],
)
def test_a_damaged_or_foreign_compact_form_is_ignored(tmp_path: Path, damage: object) -> None:
    path = _copy(ROOT / "bench" / "coldstart.yaml", tmp_path)
    target = write_compact(path)
    target.write_bytes(damage(target.read_bytes()))  # type: ignore[operator]
    assert load_compact(path) is None
    assert _runtime_config(path) == load_config(path)


def test_no_compact_form_or_no_yaml(tmp_path: Path) -> None:
    path = _copy(ROOT / "bench" / "coldstart.yaml", tmp_path)
    assert load_compact(path) is None
    write_compact(path)
    path.unlink()
    assert load_compact(path) is None


def test_an_invalid_config_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ecspilot.yaml"
    path.write_text("version: 1\nservices:\n  - name: web\n")
    with pytest.raises(ConfigError):
        write_compact(path)
    assert not compact_path(path).exists()
    assert main([str(path)]) == 1
    assert "services[0].cluster" in capsys.readouterr().err
    assert not compact_path(path).exists()


def test_the_build_step_writes_each_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _copy(ROOT / "config" / "ecspilot.yaml", tmp_path)
    assert main([str(path)]) == 0
    assert "validated" in capsys.readouterr().out
    assert load_compact(path) == load_config(path)
