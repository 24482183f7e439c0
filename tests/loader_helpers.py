"""Checks shared by the loader tests: the error a bad file gives, and a one-line edit of a label file."""

from __future__ import annotations

from pathlib import Path

import pytest

from mfjle_lib.errors import DataError


def expect_error(exc: pytest.ExceptionInfo, filename: str, line: int | None = None, reason: str = "") -> None:
    """The DataError names the file (and line), in the exception and in its one-line message."""
    err = exc.value
    assert isinstance(err, DataError)
    assert err.path is not None and filename in err.path, str(err)
    assert filename in str(err)
    if line is not None:
        assert err.line == line, str(err)
        assert f":{line}: " in str(err)
    if reason:
        assert reason in err.reason, str(err)


def replace_line(path: Path, lineno: int, text: str) -> None:
    """Overwrite one 1-based line of a text file."""
    lines = path.read_text().splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n")
