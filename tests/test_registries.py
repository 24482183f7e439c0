"""The dataset and model registries: a new dataset is one loader plus one registry line, and the CLI reads both
tables."""

from __future__ import annotations

import json
from pathlib import Path

import dataset_trees as trees
import numpy as np
import pytest

from mfjle_lib.cli import build_parser, main
from mfjle_lib.constants import EMOTIONS, TEMPLATE
from mfjle_lib.data import DATASETS, DatasetIndex, DatasetSpec, FaceRecord, load_index
from mfjle_lib.data.registry import dataset_names
from mfjle_lib.errors import ConfigError
from mfjle_lib.models.registry import MODELS, build_model, model_spec


# The whole of a new dataset's own file: a loader that turns its folder into FaceRecords.
# Toy layout: DIR/<id>_<emotion>.png, one emotion a face, the face already on the template.
def load_toy(root: Path, skip_bad: bool = False, size: int = 32) -> DatasetIndex:
    """Read DIR/<id>_<emotion>.png (faces already aligned to the template, one emotion each)."""
    records = []
    for path in sorted(root.glob("*.png")):
        face_id, emotion = path.stem.rsplit("_", 1)
        labels = np.zeros(len(EMOTIONS), np.float32)
        labels[EMOTIONS.index(emotion)] = 1
        records.append(
            FaceRecord(
                face_id, labels, image_path=path, landmarks=TEMPLATE * size, landmark_source="dataset", aligned=True
            )
        )
    return DatasetIndex("toy", records, root=root)


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A toy dataset on disk, registered for this test only (the one registry line)."""
    monkeypatch.setitem(DATASETS, "toy", DatasetSpec("toy", load_toy, source_size=32))
    for i in range(12):
        trees.write_image(tmp_path / f"f{i:02d}_{EMOTIONS[i % 6]}.png", size=32, seed=i)
    return tmp_path


def test_a_registered_dataset_loads_through_the_cli(toy: Path, capsys: pytest.CaptureFixture) -> None:
    assert "toy" in dataset_names(real_only=True)
    assert len(load_index("toy", toy)) == 12
    assert main(["data", "--dataset", "toy", "--root", str(toy), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["num_images"] == 12
    assert summary["landmarks"]["dataset"] == 12  # its own landmarks: no face detector ran
    assert all(count == 2 for count in summary["label_counts"].values())


def test_the_cli_choices_come_from_the_registries(toy: Path) -> None:
    parser = build_parser()
    args = parser.parse_args(["train", "--dataset", "toy", "--root", str(toy), "--model", "resnet18", "--out", "x"])
    assert args.dataset == "toy"
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--dataset", "affectnet", "--model", "mfjle", "--out", "x"])
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--model", "vgg", "--out", "x"])
    study = parser.parse_args(["study", "--dataset", "toy", "--root", str(toy)])
    assert study.dataset == "toy"


def test_a_flag_that_changed_meaning_says_what_to_use(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["train", "--model", "mfjle", "--out", "x", "--image-size", "64"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--image-size is gone" in err[0] and "--global-size" in err[0]


def test_model_specs_say_what_callers_ask() -> None:
    assert tuple(MODELS) == ("resnet18", "mfjle", "wholeface")
    assert not model_spec("resnet18").has_locals and model_spec("mfjle").has_locals
    with pytest.raises(ConfigError, match="unknown model 'vgg'"):
        model_spec("vgg")
    # A run setting the baseline does not use is dropped; a typo is an error.
    net = build_model("resnet18", global_size=32, local_size=16, crop_fraction=0.25)
    assert len(model_spec("resnet18").nets(net)) == 1
    assert len(model_spec("mfjle").nets(build_model("mfjle", global_size=32, local_size=16))) == 6
    with pytest.raises(ConfigError, match="unknown option"):
        build_model("resnet18", global_sise=32)
