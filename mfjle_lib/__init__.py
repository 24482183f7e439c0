"""mfjle_lib: multi-label facial expression recognition with MF-JLE (IEEE Access 2021)."""

from __future__ import annotations

from .constants import EMOTIONS, LANDMARKS

__version__ = "0.1.0"


__all__ = ["EMOTIONS", "LANDMARKS", "__version__"]
