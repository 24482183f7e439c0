"""The command line, `python -m mfjle_lib {data,train,evaluate,predict,reproduce,demo}`: parser, commands, entry point."""
from __future__ import annotations

from .main import main
from .parser import DATASETS, build_parser

__all__ = ["DATASETS", "build_parser", "main"]
