"""`python -m tests.gt record|score|misses|fixtures ...`."""

from __future__ import annotations

import sys

if __package__ in (None, ""):
    from _boot import as_package  # type: ignore[import-not-found]

    __package__ = as_package()

from importlib import import_module


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the record, score, misses or fixtures command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = ("record", "score", "misses", "fixtures")
    if not argv or argv[0] not in commands:
        print(f"usage: python -m tests.gt {'|'.join(commands)} OUTDIR [...]", file=sys.stderr)
        return 2
    module = import_module(f"{__package__}.{argv[0]}")
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
