"""Data: face records, the dataset loaders, image IO, splits and the built-in rendered faces (no torch)."""
from __future__ import annotations

from .face_params import AU_MATRIX, AU_NAMES, EMOTION_AUS
from .ferplus import load_ferplus
from .folder import load_folder
from .image_io import load_record_image, read_image, read_images
from .jaffe import load_jaffe
from .rafml import load_rafml
from .records import LANDMARK_SOURCES, DatasetIndex, FaceRecord
from .registry import DATASETS, DatasetSpec, dataset_names, dataset_spec, has_official_split, load_index, loader_options, register_dataset
from .splits import SCHEMES, describe_splits, make_splits, official_split, paper_split, subject_split
from .synthetic import LABEL_SHARE_THRESHOLD, RENDER_VERSION, load_synthetic, render_faces

__all__ = [
    "AU_MATRIX", "AU_NAMES", "DATASETS", "DatasetSpec", "EMOTION_AUS", "LABEL_SHARE_THRESHOLD", "LANDMARK_SOURCES", "RENDER_VERSION",
    "SCHEMES", "DatasetIndex", "FaceRecord", "dataset_names", "dataset_spec", "describe_splits", "has_official_split", "load_ferplus", "load_folder",
    "load_index", "load_jaffe", "loader_options", "load_rafml", "load_record_image", "load_synthetic", "make_splits", "official_split",
    "paper_split", "read_image", "read_images", "register_dataset", "render_faces", "subject_split",
]
