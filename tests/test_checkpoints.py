"""Checkpoints (docs/DESIGN.md §7): safe loads that never run code, clear refusals, atomic writes.

In-process tests cover every refusal of `load_checkpoint`; subprocess tests show the same files
give one line (exit 2) through `predict --checkpoint` and `evaluate --checkpoint`; a crash and a
SIGKILL during a save leave the previous checkpoint in place and no temp file behind it.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_helpers import REPO, cli_env, kill_when, make_checkpoint, one_line_error, run_cli, small_image

from mfjle_lib import __version__
from mfjle_lib.constants import EMOTIONS
from mfjle_lib.errors import CheckpointError
from mfjle_lib.files import atomic_write_bytes
from mfjle_lib.training.run_files import (
    CHECKPOINT_FORMAT,
    RESUME_FORMAT,
    atomic_torch_save,
    load_checkpoint,
    save_checkpoint,
)


class CarriesCode:
    """Unpickling this calls `open(marker, 'w')`: a stand-in for any code a hostile file could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A real (small) mfjle_lib checkpoint."""
    return make_checkpoint(tmp_path_factory.mktemp("good") / "checkpoint.pt")


def _payload(good: Path) -> dict:
    return torch.load(good, weights_only=True)


def _write_case(case: str, path: Path, good: Path) -> str:
    """Write the bad checkpoint `case` at `path`; return a phrase its error must contain."""
    if case == "random_bytes":
        path.write_bytes(os.urandom(4096))
        return "not a checkpoint"
    if case == "empty_file":
        path.write_bytes(b"")
        return "empty file"
    if case == "text_file":
        path.write_text("these are not weights\n")
        return "not a checkpoint"
    if case == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return "truncated or damaged"
    if case == "other_label_order":
        payload = _payload(good)
        payload["emotions"] = ["happiness", "sadness", "surprise", "anger", "disgust", "fear"]
        torch.save(payload, path)
        return "label order"
    if case == "other_version":
        payload = _payload(good)
        payload["library_version"] = "9.0.0"
        torch.save(payload, path)
        return f"written by mfjle_lib 9.0.0, this is {__version__}"
    if case == "not_mfjle_dict":
        torch.save({"state_dict": {"fc.weight": torch.zeros(6, 512)}, "epoch": 3}, path)
        return "not an mfjle checkpoint file"
    if case == "resume_state":
        payload = _payload(good)
        payload["format"] = RESUME_FORMAT
        torch.save(payload, path)
        return "this is a resume state (last.pt)"
    if case == "weights_missing":
        payload = _payload(good)
        del payload["model_state"]
        torch.save(payload, path)
        return "config or weights missing"
    if case == "directory":
        path.mkdir()
        return "not a file"
    if case == "missing":
        return "checkpoint not found"
    raise AssertionError(case)


CASES = [
    "random_bytes",
    "empty_file",
    "text_file",
    "truncated",
    "other_label_order",
    "other_version",
    "not_mfjle_dict",
    "resume_state",
    "weights_missing",
    "directory",
    "missing",
]


# =========================================================================== refusing bad files


@pytest.mark.parametrize("protocol", ["torch.save", "pickle"])
def test_file_that_carries_code_is_refused_and_never_run(protocol: str, tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    payload = {
        "format": CHECKPOINT_FORMAT,
        "emotions": list(EMOTIONS),
        "library_version": __version__,
        "config": {},
        "model_state": {"w": CarriesCode(marker)},
    }
    path = tmp_path / "evil.pt"
    if protocol == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    # The file is live: a plain unpickler would run it (checked with a second marker).
    live = tmp_path / "live_marker"
    pickle.loads(pickle.dumps(CarriesCode(live))).close()
    assert live.exists()
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    assert str(exc.value).startswith(f"{path}: refused to load")
    assert "open" in str(exc.value) and "nothing in it was run" in str(exc.value) and "\n" not in str(exc.value)
    assert not marker.exists()


@pytest.mark.parametrize("case", CASES)
def test_bad_checkpoint_is_a_clear_error(case: str, good: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.pt"
    phrase = _write_case(case, path, good)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    message = str(exc.value)
    assert message.startswith(f"{path}: ") and phrase in message, message
    assert "\n" not in message and len(message) < 400


def test_good_checkpoint_records_config_labels_and_version(good: Path) -> None:
    payload = load_checkpoint(good)
    assert payload["emotions"] == list(EMOTIONS)
    assert payload["library_version"] == __version__
    assert payload["config"]["model"] == "resnet18" and payload["config"]["source_size"] == 32
    assert all(isinstance(v, torch.Tensor) for v in payload["model_state"].values())


def test_a_resume_state_is_not_taken_for_a_checkpoint(good: Path, tmp_path: Path) -> None:
    save_checkpoint(
        tmp_path / "last.pt", {"w": torch.zeros(1)}, {"model": "resnet18"}, {"epoch": 1}, kind=RESUME_FORMAT
    )
    with pytest.raises(CheckpointError, match="resume state"):
        load_checkpoint(tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="not a resume state"):
        load_checkpoint(good, kind=RESUME_FORMAT)
    assert load_checkpoint(tmp_path / "last.pt", kind=RESUME_FORMAT)["epoch"] == 1


# =========================================================================== through the CLI
# Slow tier: each starts a CLI subprocess that imports torch (~3-9 s on 2 cores); the same refusals
# are checked in-process above.


@pytest.mark.slow
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_cli_refuses_code_with_one_line(command: str, tmp_path: Path, data_dir: Path) -> None:
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "model_state": CarriesCode(marker)}, path)
    args = [small_image(tmp_path / "face.png")] if command == "predict" else []
    one_line_error(
        run_cli(data_dir, command, "--checkpoint", path, *args),
        f"error: {path}: refused to load",
        "nothing in it was run",
    )
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "case, command",
    [("truncated", "evaluate"), ("other_version", "predict")],  # every case is checked in-process above
)
def test_cli_bad_checkpoint_one_line(case: str, command: str, good: Path, tmp_path: Path, data_dir: Path) -> None:
    path = tmp_path / "bad.pt"
    phrase = _write_case(case, path, good)
    args = [small_image(tmp_path / "face.png")] if command == "predict" else []
    one_line_error(run_cli(data_dir, command, "--checkpoint", path, *args), f"error: {path}: ", phrase)


# =========================================================================== atomic writes


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp"))


def test_crash_during_save_keeps_previous_checkpoint(
    good: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(good.read_bytes())
    before = path.read_bytes()
    real_save = torch.save

    def half_then_fail(obj, fh, *a, **k):
        fh.write(before[: len(before) // 2])  # half a checkpoint reaches the disk...
        raise OSError(28, "No space left on device")  # ...then the disk fills up

    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        atomic_torch_save(_payload(good), path)
    for interrupt in (KeyboardInterrupt, SystemExit):

        def interrupted(obj, fh, *a, exc=interrupt, **k):
            fh.write(b"partial")
            raise exc()

        monkeypatch.setattr(torch, "save", interrupted)
        with pytest.raises(interrupt):
            atomic_torch_save(_payload(good), path)
    monkeypatch.setattr(torch, "save", real_save)
    assert path.read_bytes() == before
    assert _temps(tmp_path) == []
    load_checkpoint(path)


_SLOW_WRITER = """
import sys, time
from pathlib import Path
from mfjle_lib.files import atomic_write_bytes

def write(fh):
    fh.write(b"x" * 1_000_000)
    fh.flush()
    Path(sys.argv[2]).touch()  # tell the test the write is under way
    time.sleep(120)  # ... and stay mid-write until killed

atomic_write_bytes(Path(sys.argv[1]), write)
"""


def test_sigkill_during_save_keeps_previous_checkpoint(good: Path, tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    path.write_bytes(good.read_bytes())
    before = path.read_bytes()
    ready = tmp_path / "writing"
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITER, str(path), str(ready)], cwd=REPO, env=cli_env(tmp_path)
    )
    kill_when(proc, ready.exists, "the writer started writing", timeout=120, poll=0.02)
    assert path.read_bytes() == before  # the target never held a partial file
    load_checkpoint(path)
    (stale,) = _temps(tmp_path)  # the killed writer's temp file, beside (not instead of) the target
    assert stale.stat().st_size >= 1_000_000
    # The next save of the same file removes what the dead writer left.
    atomic_write_bytes(path, lambda fh: fh.write(b"new"))
    assert path.read_bytes() == b"new"
    assert _temps(tmp_path) == []


def test_saved_files_follow_the_umask(tmp_path: Path) -> None:
    """mkstemp makes private files; a checkpoint should be readable like any other output."""
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "f.bin", lambda fh: fh.write(b"1"))
    finally:
        os.umask(old)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o644
