"""Faces: five-point landmarks (MTCNN or a fallback), alignment to the template, the ImageNet normalisation, crops for
display, the prepared-dataset cache."""

from __future__ import annotations

from .alignment import align_face, apply_transform, invert_transform, resize_aligned, similarity_transform, warp_affine
from .display import crops_for_display
from .landmarks import detect_landmarks, fallback_landmarks, get_mtcnn, landmarks_cached
from .normalise import imagenet_denormalise, imagenet_normalise, to_unit_float
from .prepare import prepare_dataset
from .prepared import PreparedDataset

__all__ = [
    "PreparedDataset",
    "align_face",
    "apply_transform",
    "crops_for_display",
    "detect_landmarks",
    "fallback_landmarks",
    "get_mtcnn",
    "imagenet_denormalise",
    "imagenet_normalise",
    "invert_transform",
    "landmarks_cached",
    "prepare_dataset",
    "resize_aligned",
    "similarity_transform",
    "to_unit_float",
    "warp_affine",
]
