"""Where a model's ResNet-18s start: random, ImageNet (`--pretrained`) or a weights file (`--weights FILE`), never
silently another."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torchvision
from torch import nn

from ..errors import ConfigError


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file (records which weights file a run started from)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_weights(weights: str | Path) -> dict:
    """A bare ResNet-18 state dict from `weights`, or ConfigError naming the file and the reason."""
    path = Path(weights)
    if not path.is_file():
        raise ConfigError(f"--weights {path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - garbage fails in many ways; one line names the file
        raise ConfigError(
            f"--weights {path}: not a readable torch state dict ({type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0][:100] if str(exc).strip() else ''})"
        ) from None
    if isinstance(state, dict) and "model_state" in state and "format" in state:
        raise ConfigError(
            f"--weights {path}: this is a checkpoint of this project, not bare ResNet-18 weights; start from it with "
            f"--init-from {path}"
        )
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"--weights {path}: the file does not hold a state dict of tensors")
    return state


def load_backbone_weights(
    nets: Sequence[nn.Module], pretrained: bool = False, weights: str | Path | None = None
) -> str:
    """Load ImageNet weights (all but the head) into each net; anything that cannot deliver is a ConfigError.

    Never falls back to random initialisation: a run that asked for a start and did not get it
    would be a different experiment (docs/DESIGN.md §2). Returns what was loaded, as recorded in
    the checkpoint and metrics.json: 'random', 'imagenet', or 'file:<path> sha256:<hex>'.
    """
    if not pretrained and weights is None:
        return "random"
    if weights is not None:
        state = _read_weights(weights)
        origin = f"file:{weights} sha256:{file_sha256(weights)}"
        what = f"--weights {weights}"
    else:
        try:
            state = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
        except Exception as exc:  # noqa: BLE001 - no internet, proxy, full disk: one line, no fallback
            raise ConfigError(
                f"--pretrained: could not get the ImageNet weights ({type(exc).__name__}: {str(exc)[:120]}); "
                "connect to the internet once, or pass a downloaded file with --weights FILE"
            ) from None
        origin, what = "imagenet", "--pretrained"
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    for net in nets:
        expected = {k: v.shape for k, v in net.state_dict().items() if not k.startswith("fc.")}
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != tuple(expected[k]))
        if missing or unexpected or wrong:
            detail = (
                f"missing {missing[:2]}"
                if missing
                else f"unexpected {unexpected[:2]}"
                if unexpected
                else f"other shapes for {wrong[:2]}"
            )
            raise ConfigError(f"{what}: not ResNet-18 weights ({detail})")
        net.load_state_dict(state, strict=False)
    return origin
