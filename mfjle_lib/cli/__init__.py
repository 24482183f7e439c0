"""The command line, `python -m mfjle_lib <command>`: parser, commands, entry point.

The commands are listed once, generated from `parser.py`, in docs/MODULES.md ("The command line").
"""

from __future__ import annotations

from .main import main
from .parser import build_parser

__all__ = ["build_parser", "main"]
