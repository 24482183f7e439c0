"""Photos in, emotions out: MTCNN landmarks -> alignment -> model -> fused probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..constants import EMOTIONS
from ..data.image_io import read_images
from ..faces.alignment import align_face
from ..faces.landmarks import detect_landmarks, fallback_landmarks
from ..faces.normalise import to_unit_float
from ..method.fusion import fuse, module_probs
from ..training.batches import model_input
from ..training.config import TrainConfig
from ..training.inference_path import inference_model


@dataclass
class Prediction:
    """One photo's result: probabilities per emotion, the positives, and what the model saw."""

    source: str
    probs: dict[str, float] = field(default_factory=dict)
    positives: list[str] = field(default_factory=list)
    module_probs: np.ndarray | None = None  # (M, 6): global then locals
    aligned: np.ndarray | None = None  # the aligned face (R,R,3) uint8
    landmarks: np.ndarray | None = None  # (5,2) in the aligned face
    landmark_source: str = "mtcnn"
    error: str | None = None  # 'no face found' etc.; probs empty then
    inference: dict | None = None  # the inference path's record (`training.inference_model`)


def prepare_photos(
    images: Sequence[np.ndarray], size: int, device: torch.device | None = None
) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """Detect five landmarks on each photo (batched MTCNN) and align it onto the template at `size`."""
    lms, sources, _ = detect_landmarks(list(images), device=device)
    sources = list(sources)
    aligned, aligned_lms = [], []
    for k, (img, lm) in enumerate(zip(images, lms)):
        try:
            a, alm = align_face(img, lm, size)
        except ValueError:  # degenerate detected points: the centred template, as in cache.py
            sources[k] = "fallback"
            a, alm = align_face(img, fallback_landmarks(*np.asarray(img).shape[:2]), size)
        aligned.append(a)
        aligned_lms.append(alm)
    return aligned, aligned_lms, sources


@torch.no_grad()
def predict_images(
    model: torch.nn.Module,
    cfg: TrainConfig,
    images: Sequence[np.ndarray],
    sources: Sequence[str] | None = None,
    threshold: float = 0.5,
    allow_fallback: bool = False,
    precision: str = "auto",
    checkpoint: str | Path | None = None,
) -> list[Prediction]:
    """Predict emotions for in-memory photos; a photo with no face gets `error` unless allowed.

    The model runs in the `precision` path (`inference_model`; no labels here, so bf16 only with a
    passing check recorded beside `checkpoint`), recorded in each prediction's `inference`.
    """
    device = next(model.parameters()).device
    model, path = inference_model(model, cfg, device, precision, checkpoint=checkpoint)
    sources = list(sources) if sources is not None else [f"image[{i}]" for i in range(len(images))]
    aligned, lms, lm_sources = prepare_photos(images, cfg.source_size, device)  # MTCNN beside the model (CPU for MPS)
    results: list[Prediction] = []
    for src, a, lm, how in zip(sources, aligned, lms, lm_sources):
        pred = Prediction(source=src, aligned=a, landmarks=lm, landmark_source=how, inference=path)
        if how == "fallback" and not allow_fallback:
            pred.error = "no face found (MTCNN detected nothing); try a frontal, well-lit photo"
            results.append(pred)
            continue
        x = model_input(to_unit_float(torch.from_numpy(a).permute(2, 0, 1)[None], device))
        out = model(x, torch.from_numpy(lm)[None].float().to(device))
        # Probabilities from float64 logits, as evaluation computes them (`evaluation.outputs`); torch until written.
        local = None if out.local_logits is None else out.local_logits.double().cpu()
        per_module = module_probs(out.global_logits.double().cpu(), local, cfg.activation)
        fused = fuse(per_module, cfg.effective_fusion_weights())[0].tolist()
        pred.probs = dict(zip(EMOTIONS, fused))
        pred.positives = [e for e, p in pred.probs.items() if p >= threshold]
        pred.module_probs = per_module[0].numpy()
        results.append(pred)
    return results


def predict_files(
    model: torch.nn.Module,
    cfg: TrainConfig,
    paths: Sequence[str | Path],
    threshold: float = 0.5,
    skip_bad: bool = False,
    allow_fallback: bool = False,
    precision: str = "auto",
    checkpoint: str | Path | None = None,
) -> tuple[list[Prediction], list[str]]:
    """Read photos (bad files raise DataError, or are listed with skip_bad) and predict."""
    images, names, problems = read_images(paths, skip_bad)
    preds = (
        predict_images(model, cfg, images, names, threshold, allow_fallback, precision, checkpoint) if images else []
    )
    return preds, problems
