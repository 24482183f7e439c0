"""Device, seed/determinism and progress-bar helpers (the CPU allocator setting lives in `perf/allocator.py`)."""

from __future__ import annotations

import os
import platform
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm


def get_device(name: str | None = None) -> torch.device:
    """Return the requested device, else the best available one (cuda -> mps -> cpu)."""
    if name and name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_deterministic(device: torch.device) -> bool:
    """Determinism by default: on for the CPU (bit-identical resumes, tests), off on CUDA (cuDNN's fast kernels)."""
    return device.type != "cuda"


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch, and switch strict determinism on or off (docs/DESIGN.md §7)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    set_deterministic(deterministic)


def set_deterministic(on: bool) -> None:
    """Deterministic kernels (slower on CUDA), or cuDNN autotuning (`benchmark=True`, the fast path)."""
    if on:
        # cuBLAS needs a fixed workspace to be deterministic; set before the first CUDA matmul.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # ResNet's adaptive pooling backward has no deterministic CUDA kernel: warn, don't fail.
    torch.use_deterministic_algorithms(on, warn_only=on and torch.cuda.is_available())
    torch.backends.cudnn.benchmark = not on
    torch.backends.cudnn.deterministic = on


def in_notebook() -> bool:
    """True inside a Jupyter kernel (so progress bars render as widgets or plain text)."""
    return "ipykernel" in sys.modules


def progress(iterable=None, **kwargs):
    """tqdm that behaves in a terminal and in a notebook, and stays quiet when output is piped."""
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)
    if os.environ.get("MFJLE_NO_PROGRESS"):
        # Always off when asked (notebooks executed for commit would otherwise store tqdm widgets).
        kwargs["disable"] = True
    elif "disable" not in kwargs:
        # Off when stderr is not a terminal (CI logs, pipes) unless inside a notebook.
        kwargs["disable"] = not (in_notebook() or sys.stderr.isatty())
    return tqdm(iterable, **kwargs)


#: The vector extensions that decide a CPU's speed and rounding here (oneDNN picks its kernels by them).
VECTOR_EXTENSIONS = ("avx2", "avx512_f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_extensions() -> list[str]:
    """Which of `VECTOR_EXTENSIONS` this CPU has, as torch sees them (its kernel choice follows these)."""
    get = getattr(torch.cpu, "get_capabilities", None)
    if get is not None:
        caps = get()
        return [e for e in VECTOR_EXTENSIONS if caps.get(e)]
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return [e for e in VECTOR_EXTENSIONS if f" {e.replace('avx512_f', 'avx512f')} " in flags]


#: CPU kinds, widest first: the extension that names each (`cpu_kind`); benchmarks keep one folder per kind.
CPU_KINDS = (("amx", "amx_bf16"), ("avx512_bf16", "avx512_bf16"), ("avx512", "avx512_f"), ("avx2", "avx2"))


def cpu_kind(extensions: Sequence[str] | None = None) -> str:
    """This CPU's kind for speed records: 'amx', 'avx512_bf16', 'avx512', 'avx2' or 'other' (the widest it has)."""
    have = set(cpu_extensions() if extensions is None else extensions)
    return next((kind for kind, ext in CPU_KINDS if ext in have), "other")


def machine_record() -> dict[str, Any]:
    """Where a result was made: CPU model, vector extensions, kernel level, threads, cores, load (for run records)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu_model(),
        "cpu_extensions": cpu_extensions(),
        "cpu_kind": cpu_kind(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_1min": load,
        "system": platform.system(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
