"""The method package stands alone, the trainer runs its very step, and saved runs keep their numbers."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mfjle_lib import method
from mfjle_lib.evaluation.outputs import load_outputs
from mfjle_lib.training.batches import Batch
from mfjle_lib.training.config import make_config, model_from_config
from mfjle_lib.training.setup import TrainingParts, make_adam, make_scaler
from mfjle_lib.training.trainer import train_step

REPO = Path(__file__).resolve().parents[1]
METHOD = REPO / "mfjle_lib" / "method"
#: What the method may import: torch, torchvision, numpy, the standard library and the package's constants and errors.
ALLOWED_THIRD_PARTY = {"torch", "torchvision", "numpy"}
ALLOWED_OWN = {"mfjle_lib.constants", "mfjle_lib.errors"}


def _imports(path: Path) -> set[str]:
    """Absolute module names a method file imports (relative imports resolved against mfjle_lib.method)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1:
                names.add(f"mfjle_lib.method.{node.module}" if node.module else "mfjle_lib.method")
            elif node.level == 2:
                names.add(f"mfjle_lib.{node.module}")
            else:
                names.add(node.module or "")
    return names


def test_the_method_stands_alone() -> None:
    files = sorted(METHOD.glob("*.py"))
    assert sum(len(p.read_text(encoding="utf-8").splitlines()) for p in files) <= 1000
    stdlib = set(__import__("sys").stdlib_module_names)
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert "local_impl" not in text and "channels_last" not in text, path.name  # speed lives in perf/
        for name in _imports(path):
            top = name.split(".")[0]
            ok = top in ALLOWED_THIRD_PARTY or top in stdlib or top == "__future__"
            ok = ok or name in ALLOWED_OWN or name.startswith("mfjle_lib.method")
            assert ok, f"{path.name} imports {name}"
        if path.name != "__init__.py":
            assert ast.get_docstring(ast.parse(text)).startswith("Paper Section"), f"{path.name} opens with its section"


@pytest.mark.parametrize("model", ["resnet18", pytest.param("mfjle", marks=pytest.mark.slow)])
def test_the_trainers_step_is_the_methods_step(model: str) -> None:
    """In float32 on one process the trainer's wrappers are the identity: the same losses and weights, bit for bit."""
    cfg = make_config(
        "fast", model=model, source_size=32, global_size=32, local_size=16, precision="float32", device="cpu"
    )
    g = torch.Generator().manual_seed(1)
    images, labels = torch.randn(6, 3, 32, 32, generator=g), (torch.rand(6, 6, generator=g) > 0.6).float()
    landmarks = torch.full((6, 5, 2), 12.0) + 8 * torch.rand(6, 5, 2, generator=g)
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    ours = model_from_config(cfg, cpu)
    ours_losses = method.train_step(
        ours, make_adam(ours, cfg.lr, cpu), images, landmarks, labels, cfg.lambdas, cfg.loss
    )
    torch.manual_seed(0)
    lib = model_from_config(cfg, cpu)
    parts = TrainingParts(lib, lib, make_adam(lib, cfg.lr, cpu), None, make_scaler(cpu, "float32"), None)
    losses, finite = train_step(parts, Batch(images, landmarks, labels), cfg, cpu)
    assert bool(finite)
    assert torch.equal(losses[0], ours_losses[0]) and torch.equal(losses[1], ours_losses[1])
    if ours_losses[2] is not None:
        assert torch.equal(losses[2:], ours_losses[2])
    for (name, a), b in zip(ours.state_dict().items(), lib.state_dict().values()):
        assert torch.equal(a, b), name


def _saved_runs() -> list[Path]:
    return sorted(
        p.parent for p in (REPO / "results").glob("*/*/metrics.json") if (p.parent / "test_outputs.npz").is_file()
    )


@pytest.mark.parametrize("run", _saved_runs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_saved_outputs_give_the_metrics_their_run_recorded(run: Path) -> None:
    """Every committed run (released lesson runs, the JAFFE study): its test outputs give back its metrics.json.

    Exactly, except average precision, computed for all rows at once since these runs were recorded:
    the same number to the last bits or so (1e-12).
    """
    recorded = json.loads((run / "metrics.json").read_text())
    out = load_outputs(run / "test_outputs.npz")
    # The fused output, and the global module's (the one every model has); the other modules follow the same path.
    per_module = [
        ("fused", recorded, out["fused_probs"]),
        ("global", recorded["modules"]["global"], out["module_probs"][:, 0]),
    ]
    for name, saved, scores in per_module:
        now = method.multilabel_metrics(out["labels"], scores, recorded.get("threshold", 0.5))
        for key in method.METRIC_KEYS:
            expected = np.nan if saved[key] is None else saved[key]
            if key == "average_precision":
                assert now[key] == pytest.approx(expected, abs=1e-12, nan_ok=True), (name, key)
            else:
                assert now[key] == expected or (np.isnan(now[key]) and np.isnan(expected)), (name, key)
