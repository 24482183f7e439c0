"""The fixed import path `mfjle_lib.metrics.multilabel_metrics` (docs/DESIGN.md §4): scripts outside this
repository import it. The metrics live in `mfjle_lib.method.metrics`; this module only re-exports the contract."""

from __future__ import annotations

from .method.metrics import multilabel_metrics

__all__ = ["multilabel_metrics"]
