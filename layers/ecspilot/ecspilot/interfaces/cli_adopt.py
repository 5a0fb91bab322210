"""``ecspilot init`` and ``ecspilot import copilot DIR``: write a config from what already runs, or
from a Copilot workspace. Both write to ``--file FILE`` (``-f``; default stdout), as YAML with
comments or, with ``--output json``, as JSON (the format, as for every verb), and never overwrite an
existing file without ``--force`` (exit 2, one line, before any AWS call)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ecspilot.errors import AdoptionInputError
from ecspilot.interfaces.present import printable, say


def write_config(text: str, output: str | None, force: bool) -> None:
    """``text`` to ``output`` (stdout when None); an existing file only with ``force``."""
    if output is None or output == "-":
        sys.stdout.write(printable(text, keep="\n\t"))
        return
    path = Path(output)
    if path.exists() and not force:
        raise AdoptionInputError(f"{path} exists: give --force to overwrite it")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise AdoptionInputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    say(f"wrote {path}", out=sys.stderr)


def _refuse_early(output: str | None, force: bool) -> None:
    """Fail before any AWS read when the output exists (the same check as :func:`write_config`)."""
    if output not in (None, "-") and Path(str(output)).exists() and not force:
        raise AdoptionInputError(f"{output} exists: give --force to overwrite it")


def as_json_text(config: Any) -> str:
    """The config as JSON (``--output json``): YAML reads it back, without the comments."""
    return json.dumps(config, indent=2) + "\n"


def cmd_init(args: argparse.Namespace, session_of: Callable[[], Any]) -> int:
    """``ecspilot init [--cluster C]... [--file FILE] [--force] [--output json]``; ``session_of``
    makes the AWS session once the arguments are known to be good."""
    from ecspilot.adoption.discover import discover  # noqa: PLC0415
    from ecspilot.adoption.init import adopt  # noqa: PLC0415
    from ecspilot.adoption.render import render  # noqa: PLC0415
    from ecspilot.domain.config import parse_config  # noqa: PLC0415

    _refuse_early(args.output_file, args.force)
    session = session_of()
    found = discover(
        session.client("ecs"), session.client("events"), session.client("scheduler"), args.cluster or ()
    )
    adoption = adopt(found)
    parse_config(adoption.as_config())  # what init writes must validate: a problem is a bug here
    text = as_json_text(adoption.as_config()) if args.output == "json" else render(adoption)
    write_config(text, args.output_file, args.force)
    for line in adoption.left_out:
        say(f"left out: {line}", out=sys.stderr)
    return 0


def cmd_import_copilot(args: argparse.Namespace) -> int:
    """``ecspilot import copilot DIR [--env ENV] [--cluster C] [--file FILE] [--force]``: the
    unsupported fields on stderr."""
    import yaml  # noqa: PLC0415

    workspace = Path(args.dir)
    if not workspace.is_dir():
        raise AdoptionInputError(
            f"{workspace} is not a directory (a Copilot workspace has copilot/*/manifest.yml)"
        )
    _refuse_early(args.output_file, args.force)
    from ecspilot.adoption.copilot import import_copilot  # noqa: PLC0415 - only this verb needs it

    config, unsupported = import_copilot(
        workspace, environment=args.environment, cluster=args.copilot_cluster
    )
    text = (
        as_json_text(config)
        if args.output == "json"
        else yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=100)
    )
    write_config(text, args.output_file, args.force)
    for line in unsupported:
        say(f"unsupported: {line}", out=sys.stderr)
    return 0
