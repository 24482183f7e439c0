"""The data a run sees: a prepared dataset on the device, its splits, the one path of a batch, and the one forward
pass over a split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..constants import EMOTIONS
from ..data.registry import load_index, loader_options
from ..data.splits import make_splits
from ..errors import ConfigError
from ..evaluation.outputs import with_probabilities
from ..faces.normalise import imagenet_normalise, to_unit_float
from ..faces.prepare import prepare_dataset
from ..faces.prepared import PreparedDataset
from ..runtime import get_device
from .augment import augment_batch
from .config import TrainConfig


@dataclass
class DataBundle:
    """A prepared dataset, its splits, and its tensors on the storage device."""

    prepared: PreparedDataset
    splits: dict[str, np.ndarray]
    images: torch.Tensor  # (N,3,R,R) uint8
    landmarks: torch.Tensor  # (N,5,2) float32, pixels of R
    labels: torch.Tensor  # (N,6) float32
    source: dict | None = None  # what it was loaded for (`data_source`): a run checks its config against it

    @property
    def ids(self) -> list[str]:
        """Image ids in dataset order."""
        return list(self.prepared.ids)


def load_data(cfg: TrainConfig, device: torch.device | None = None, show_progress: bool = True) -> DataBundle:
    """Load, decode (cached), align and split the dataset named in `cfg`; keep it on `device` if it fits."""
    options = loader_options(cfg.dataset, cfg.source_size, cfg.num_images, cfg.synthetic_seed)
    index = load_index(cfg.dataset, cfg.root, skip_bad=cfg.skip_bad, **options)
    prepared = prepare_dataset(index, size=cfg.source_size, skip_bad=cfg.skip_bad, show_progress=show_progress)
    splits = make_splits(prepared, cfg.split_scheme, cfg.split_seed)
    for part in ("train", "val", "test"):
        if len(splits[part]) == 0:
            raise ConfigError(
                f"the {part} split of {cfg.dataset} is empty ({len(prepared.ids)} images); use more images"
            )
    images, landmarks, labels = prepared.to_tensors()
    bundle = DataBundle(prepared, splits, images, landmarks, labels, data_source(cfg))
    return on_device(bundle, device or get_device(cfg.device))


SOURCE_KEYS = (
    "dataset",
    "root",
    "source_size",
    "num_images",
    "synthetic_seed",
    "skip_bad",
    "split_scheme",
    "split_seed",
)


def data_source(cfg: TrainConfig) -> dict:
    """The settings that decide which faces and which splits `load_data` gives."""
    return {key: getattr(cfg, key) for key in SOURCE_KEYS}


def check_data_matches(data: DataBundle, cfg: TrainConfig) -> None:
    """Refuse data loaded for other settings: a run must train on the faces and splits its config names."""
    if data.source is None:
        return  # built by hand (tests, scripts): nothing recorded to compare
    wanted = data_source(cfg)
    differ = {k: (data.source[k], wanted[k]) for k in SOURCE_KEYS if data.source.get(k) != wanted[k]}
    if differ:
        raise ConfigError(
            "the data given was loaded for other settings than the run's config: "
            + ", ".join(f"{k} {a!r} (data) vs {b!r} (config)" for k, (a, b) in differ.items())
            + "; load it with load_data(cfg) or leave data out"
        )


def on_device(data: DataBundle, device: torch.device) -> DataBundle:
    """The bundle with its tensors on the training device when they fit there (else as it is).

    Batches are then gathered where the model runs: no per-step gather on a Colab's two vCPUs and
    no unpinned host-to-device copy. On CUDA "fits" means a quarter of the card's memory.
    """
    if data.images.device == device or device.type != "cuda":
        return data
    if device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if (
        data.images.device == device
        or data.images.numel() >= torch.cuda.get_device_properties(device).total_memory // 4
    ):
        return data
    return replace(
        data, images=data.images.to(device), landmarks=data.landmarks.to(device), labels=data.labels.to(device)
    )


@dataclass
class Batch:
    """What one step feeds the model and the loss: normalised images, their landmarks, labels."""

    images: torch.Tensor  # (B,3,R,R) float32, ImageNet-normalised, channels_last, on the device
    landmarks: torch.Tensor  # (B,5,2) pixels of R
    labels: torch.Tensor  # (B,6) float32


def model_input(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] images -> what every model takes: ImageNet-normalised, channels_last."""
    return imagenet_normalise(images).contiguous(memory_format=torch.channels_last)


def get_batch(
    data: DataBundle,
    indices: torch.Tensor,
    device: torch.device,
    generator: torch.Generator | None = None,
    rows: tuple[int, int, int] | None = None,
) -> Batch:
    """Rows `indices` of the bundle as a model-ready batch on `device`; augmented when a generator is given.

    `rows=(start, stop, n)`: `indices` are rows [start, stop) of a global batch of n (one rank's part
    under torchrun); augmentation then draws the random numbers of all n (`augment_batch`).

    The one path for a batch, used by training and by `collect_outputs` (validation, test).
    """
    # index_select: ~13x faster than fancy indexing for uint8 on CPU (bench_data.py).
    images = to_unit_float(data.images.index_select(0, indices.to(data.images.device)), device)
    landmarks = data.landmarks.index_select(0, indices.to(data.landmarks.device)).to(device)
    labels = data.labels.index_select(0, indices.to(data.labels.device)).to(device)
    if generator is not None:
        images, landmarks = augment_batch(images, landmarks, generator, rows=rows)
    return Batch(model_input(images), landmarks, labels)


@torch.no_grad()
def model_logits(
    model: torch.nn.Module, data: DataBundle, indices: np.ndarray, device: torch.device, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-module float32 logits (global (N,6), locals (N,5,6) or None) on `device`, in eval mode.

    No autocast: bf16 logits tie in the ranking metrics, make selection noisier and would make a
    CUDA evaluation differ from a CPU one of the same checkpoint.
    """
    was_training = model.training
    model.eval()
    g_all, l_all = [], []
    idx_t = torch.as_tensor(indices, dtype=torch.long)
    for start in range(0, len(idx_t), batch_size):
        batch = get_batch(data, idx_t[start : start + batch_size], device)
        out = model(batch.images, batch.landmarks)
        g_all.append(out.global_logits.float())
        if out.local_logits is not None:
            l_all.append(out.local_logits.float())
    model.train(was_training)
    empty = torch.zeros((0, len(EMOTIONS)), device=device)
    return (torch.cat(g_all) if g_all else empty), (torch.cat(l_all) if l_all else None)


def as_outputs(global_logits: torch.Tensor, local_logits: torch.Tensor | None) -> dict[str, np.ndarray]:
    """Logits as the float64 numpy arrays of the saved-outputs format (`evaluation.outputs`)."""
    result = {"global_logits": global_logits.double().cpu().numpy()}
    if local_logits is not None:
        result["local_logits"] = local_logits.double().cpu().numpy()
    return result


def collect_outputs(
    model: torch.nn.Module,
    data: DataBundle,
    indices: np.ndarray,
    batch_size: int = 256,
    device: torch.device | None = None,
) -> dict[str, np.ndarray]:
    """Per-module logits (float64 numpy, computed in float32) for the given images, in eval mode."""
    device = device or next(model.parameters()).device
    return as_outputs(*model_logits(model, data, indices, device, batch_size))


def run_split(
    model: torch.nn.Module,
    data: DataBundle,
    split: str,
    activation: str,
    fusion_weights: Sequence[float],
    device: torch.device | None = None,
    batch_size: int = 256,
) -> dict[str, np.ndarray]:
    """A model over one split of `data`, as a run saves it (`*_outputs.npz`): logits, module and fused probabilities,
    labels, ids.

    The one forward pass over a split: validation, the end of `train`, `evaluate`, `--fusion-weights val`
    and the lessons' re-fusion all come here. Fused once, in float64 (`evaluation.outputs.with_probabilities`).
    """
    idx = data.splits[split]
    logits = collect_outputs(model, data, idx, batch_size, device)
    return with_probabilities(
        logits, data.prepared.labels[idx], [data.prepared.ids[i] for i in idx], activation, fusion_weights
    )
