"""``python -m ecspilot_dev.compact CONFIG...``: validate each config and write its compact form
next to it (``CONFIG.compact``, :mod:`ecspilot.domain.config.compact`), as ``make build`` does
before ``sam build`` for ``config/ecspilot.yaml``. Exit 1 on an invalid config, with its problems."""

from __future__ import annotations

import sys

from ecspilot.domain.config.compact import write_compact
from ecspilot.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    for path in paths:
        try:
            target = write_compact(path)
        except ConfigError as exc:
            print(exc, file=sys.stderr)  # its problems, one a line
            return 1
        print(f"{path}: validated, compact form {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
