"""Entry point: dispatch, and turn known errors into one line on stderr."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ..errors import MfjleError
from .commands import COMMANDS, _check_device
from .parser import build_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: dispatch, and turn known errors into one line on stderr (exit 2)."""
    args = build_parser().parse_args(argv)
    try:
        _check_device(getattr(args, "device", None))
        return COMMANDS[args.command](args)
    except MfjleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # e.g. disk full, permission denied on --out
        print(f"error: {err.filename}: {err.strerror or err}" if err.filename else f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - last resort: one line, not a traceback (docs/DESIGN.md §4)
        if os.environ.get("MFJLE_DEBUG"):
            raise
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
        print(
            f"error: unexpected {type(err).__name__}: {first} (likely a bug in mfjle_lib; rerun with MFJLE_DEBUG=1 "
            "for the traceback)",
            file=sys.stderr,
        )
        return 1
