"""Resume state: RNG states as tensors, and whether two configs describe the same run."""
from __future__ import annotations

import torch


def _rng_state(gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Every RNG state as tensors (a numpy state would break `weights_only` loading)."""
    state = {"data_generator": gen.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.stack(torch.cuda.get_rng_state_all()) if torch.cuda.device_count() else torch.empty(0)
    return state


def _set_rng_state(gen: torch.Generator, state: dict[str, torch.Tensor]) -> None:
    gen.set_state(state["data_generator"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and state["cuda"].numel():
        torch.cuda.set_rng_state_all(list(state["cuda"]))
