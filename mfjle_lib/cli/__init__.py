"""The command line, `python -m mfjle_lib {data,train,evaluate,predict,reproduce,demo}`: parser, commands, entry point."""

from __future__ import annotations

from .main import main
from .parser import build_parser

__all__ = ["build_parser", "main"]
