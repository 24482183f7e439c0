"""Exceptions that carry the file (and line) at fault, so the CLI can print one clear line."""

from __future__ import annotations

from pathlib import Path


class MfjleError(Exception):
    """Base class for every error the CLI reports as one line without a traceback."""


class DataError(MfjleError):
    """Bad input data: names the file and, for text files, the 1-based line number."""

    def __init__(self, path: str | Path | None, reason: str, line: int | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.reason = reason
        self.line = line
        super().__init__(self.describe())

    def describe(self) -> str:
        """Return 'file:line: reason' (the form listed in `problems`)."""
        where = self.path or "<input>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.reason}"


class CheckpointError(MfjleError):
    """A checkpoint that is missing, not ours, carries code, or does not match this library."""


class ConfigError(MfjleError):
    """A command-line or API option that cannot work (e.g. wrong number of lambdas)."""


class TrainingDiverged(MfjleError):
    """The loss became NaN or infinite; names the epoch and module."""
