"""The config validated at build time, loaded at a cold start without YAML and without validation.

``make build`` validates ``config/ecspilot.yaml`` (:func:`load_config`: every check the CLI makes)
and writes the result next to it, ``ecspilot.yaml.compact``: one header line (JSON) and the
validated :class:`EcspilotConfig` as a pickle. A Lambda's runtime (:mod:`ecspilot.interfaces.runtime`)
loads that instead of parsing and validating the YAML again, only when the header matches:

- ``yaml_sha256``: the hash of the YAML file's bytes *as they are now*: an edited YAML (a compact
  form left over from the previous one) is never trusted;
- ``fingerprint``: the hash of the sources that define and validate the config (every module of
  ``ecspilot.domain`` and ``ecspilot.errors``) with Python's version: a compact form written by
  other code (an older layer, a field added since) is never trusted either. The pickle holds plain
  instances (``ecspilot.domain.modeling``): loading it imports no pydantic.

Anything else (no compact file, a mismatch, an unreadable or truncated one) falls back to the YAML
path, with the same result and the same errors as before, only slower. The pickle is read only from
the file named by the function's own config setting (a read-only layer, as trusted as the code).
The CLI and the tests keep reading the YAML.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import sys
from pathlib import Path

from ecspilot.domain.config.schema import EcspilotConfig

SUFFIX = ".compact"
FORMAT = 1


def compact_path(path: str | Path) -> Path:
    """Where the compact form of the config at ``path`` lives: next to it."""
    path = Path(path)
    return path.with_name(path.name + SUFFIX)


def fingerprint() -> str:
    """The hash of what decides a validated config's shape: the domain sources and Python's version."""
    package = Path(__file__).resolve().parents[2]  # .../ecspilot
    digest = hashlib.sha256()
    digest.update(f"{sys.version_info[0]}.{sys.version_info[1]}|".encode())
    for source in [*sorted((package / "domain").rglob("*.py")), package / "errors.py"]:
        digest.update(source.relative_to(package).as_posix().encode() + b"\0")
        digest.update(source.read_bytes() + b"\0")
    return digest.hexdigest()


def _header(yaml_bytes: bytes) -> dict[str, object]:
    return {
        "format": FORMAT,
        "yaml_sha256": hashlib.sha256(yaml_bytes).hexdigest(),
        "fingerprint": fingerprint(),
    }


def write_compact(path: str | Path) -> Path:
    """Validate the YAML config at ``path`` (raises :class:`ConfigError` as the CLI would) and
    write its compact form next to it; returns where."""
    from ecspilot.domain.config.loading import load_config  # noqa: PLC0415 - the build step only

    path = Path(path)
    yaml_bytes = path.read_bytes()
    config = load_config(path)
    target = compact_path(path)
    payload = json.dumps(_header(yaml_bytes), sort_keys=True).encode() + b"\n"
    payload += pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(payload)
    tmp.replace(target)
    return target


def load_compact(path: str | Path) -> EcspilotConfig | None:
    """The validated config of the YAML at ``path`` from its compact form, or None when there is
    none or it does not match the YAML's bytes and this code exactly (then read the YAML)."""
    target = compact_path(path)
    try:
        payload = target.read_bytes()
        yaml_bytes = Path(path).read_bytes()
    except OSError:
        return None
    head, sep, body = payload.partition(b"\n")
    if not sep:
        return None
    try:
        header = json.loads(head)
    except ValueError:
        return None
    if header != _header(yaml_bytes):
        return None
    try:
        config = pickle.loads(body)  # our own build's output, checked against the YAML above
    except Exception:  # a damaged compact form: the YAML path decides
        return None
    return config if type(config) is EcspilotConfig else None
