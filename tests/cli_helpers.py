"""Helpers for tests that run the real command line (`python -m mfjle_lib ...`) in a subprocess.

Used by test_cli_bad_input.py, test_checkpoints.py and test_kill_resume.py: run a command with a
private MFJLE_DATA_DIR, check the one-line error contract (docs/DESIGN.md §4: exit status 2, one line on
stderr naming the file, no traceback), SIGKILL a process at a chosen moment, and build small inputs (photos of a real
face in unusual
formats, a tiny checkpoint).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[1]
FOLDER_HEADER = "path,surprise,fear,disgust,happiness,sadness,anger"


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: private data folder, no progress bars, no debug."""
    env = {k: v for k, v in os.environ.items() if k not in ("MFJLE_DEBUG", "MFJLE_FAST")}
    env.update(MFJLE_DATA_DIR=str(data_dir), MFJLE_NO_PROGRESS="1", PYTHONPATH=str(REPO), **extra)
    return env


def run_cli(data_dir: Path, *args: object, timeout: float = 600, **extra_env: str) -> subprocess.CompletedProcess:
    """Run `python -m mfjle_lib ARGS` from the repo and capture stdout/stderr as text."""
    cmd = [sys.executable, "-m", "mfjle_lib", *map(str, args)]
    return subprocess.run(
        cmd, cwd=REPO, env=cli_env(data_dir, **extra_env), capture_output=True, text=True, timeout=timeout
    )


def one_line_error(proc: subprocess.CompletedProcess, *needles: str, status: int = 2) -> str:
    """Assert the bad-input contract and return the line: exit `status`, one stderr line, no traceback."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    detail = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-4000:]}"
    assert "Traceback" not in proc.stderr, detail
    assert proc.returncode == status, detail
    assert len(lines) == 1, detail
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def ok_json(proc: subprocess.CompletedProcess, status: int = 0) -> Any:
    """Assert exit `status` (0) and no traceback, and parse stdout as one JSON value."""
    assert proc.returncode == status and "Traceback" not in proc.stderr, (
        f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    )
    return json.loads(proc.stdout)


# --------------------------------------------------------------------------- images


def face_photo() -> np.ndarray:
    """A real face (skimage's astronaut), 90 wide x 120 tall: MTCNN finds it; portrait, so rotation shows."""
    from skimage import data

    crop = data.astronaut()[20:260, 100:280]
    return np.asarray(Image.fromarray(crop).resize((90, 120), Image.LANCZOS))


def write_unusual_images(folder: Path) -> dict[str, str]:
    """Write the face in every unusual-but-valid form; return {file name: what it is}.

    `exif_rotated.jpg` stores the face turned sideways with EXIF orientation 6 ("rotate 90° CW to
    display"): MTCNN finds no face unless the rotation is applied. `upright_reference.png` holds the
    pixels that applying it must give. `one_pixel.png` has no face: fallback landmarks.
    """
    folder.mkdir(parents=True, exist_ok=True)
    face = face_photo()
    rgba = np.dstack([face, np.full(face.shape[:2], 255, np.uint8)])
    rgba[:10, :, 3] = 0  # a transparent band on top
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    Image.fromarray(face).convert("P", palette=Image.ADAPTIVE).save(folder / "palette.png")
    gray16 = np.asarray(Image.fromarray(face).convert("L")).astype(np.uint16) * 100 + 2000  # narrow 16-bit range
    Image.fromarray(gray16).save(folder / "gray16.png")
    Image.fromarray(face).convert("L").save(folder / "gray8.png")
    Image.fromarray(face).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    sideways = Image.fromarray(np.ascontiguousarray(np.rot90(face, 1)))
    exif = sideways.getexif()
    exif[0x0112] = 6
    sideways.save(folder / "exif_rotated.jpg", exif=exif, quality=95)
    with Image.open(folder / "exif_rotated.jpg") as img:
        ImageOps.exif_transpose(img).save(folder / "upright_reference.png")
    Image.new("RGB", (1, 1), (200, 150, 120)).save(folder / "one_pixel.png")
    assert Image.open(folder / "gray16.png").mode.startswith("I;16")
    assert Image.open(folder / "cmyk.jpg").mode == "CMYK"
    return {
        "rgba.png": "RGBA with a transparent band",
        "palette.png": "palette (P)",
        "gray16.png": "16-bit grayscale",
        "gray8.png": "8-bit grayscale",
        "cmyk.jpg": "CMYK JPEG",
        "exif_rotated.jpg": "EXIF orientation 6",
        "upright_reference.png": "the same face stored upright",
        "one_pixel.png": "1x1 (no face)",
    }


def small_image(path: Path, seed: int = 0, size: int = 16) -> Path:
    """A small random RGB PNG (below MTCNN's minimum side, so it always gets fallback landmarks)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def jpeg_bytes(seed: int = 0, size: int = 64) -> bytes:
    """A valid JPEG of random pixels (cut in half for a truncated file)."""
    import io

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def write_labels(folder: Path, rows: list[str], raw: bytes | None = None) -> Path:
    """Write folder/labels.csv: the header then `rows` (or exactly `raw` bytes)."""
    path = folder / "labels.csv"
    path.write_bytes(raw if raw is not None else ("\n".join([FOLDER_HEADER, *rows]) + "\n").encode())
    return path


# --------------------------------------------------------------------------- checkpoints


def make_checkpoint(path: Path, model: str = "resnet18", **config: Any) -> Path:
    """A real, small checkpoint (random weights) as `train` writes it; sizes default to 32 px."""
    import torch

    from mfjle_lib.training.config import make_config, model_from_config
    from mfjle_lib.training.run_files import save_checkpoint

    options = dict(dataset="folder", root=None, source_size=32, global_size=32, local_size=16, device="cpu")
    options.update(config)
    cfg = make_config("fast", model=model, **options)
    torch.manual_seed(0)
    net = model_from_config(cfg)
    save_checkpoint(path, net.state_dict(), cfg.to_dict(), {"epoch": 1})
    return path


def kill_when(
    proc: subprocess.Popen, ready: Callable[[], bool], what: str, timeout: float = 480, poll: float = 0.005
) -> None:
    """SIGKILL `proc` as soon as `ready()` is true (polled every `poll` s); it must die by that signal."""
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert proc.poll() is None, f"the process exited (status {proc.returncode}) before {what}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(poll)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
