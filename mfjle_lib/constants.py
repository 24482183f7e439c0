"""Fixed names and numbers shared by every module: label order, landmark order, template, paper tables."""

from __future__ import annotations

import numpy as np

#: The six emotions in RAF-ML's column order (docs/DESIGN.md §2); every loader maps onto this order.
EMOTIONS: tuple[str, ...] = ("surprise", "fear", "disgust", "happiness", "sadness", "anger")


#: Capitalised names for tables and plots.
EMOTION_TITLES: tuple[str, ...] = tuple(e.capitalize() for e in EMOTIONS)


NUM_LABELS = len(EMOTIONS)


#: The five landmarks in MTCNN's order (paper Section III.B, Fig. 2).
LANDMARKS: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


NUM_LANDMARKS = len(LANDMARKS)


#: Index permutation applied to landmarks when an image is flipped horizontally (left <-> right).
FLIP_PERMUTATION: tuple[int, ...] = (1, 0, 2, 4, 3)


#: Canonical 5-point face template as fractions of the aligned image side (x, y), in LANDMARKS order.
#: Every face is aligned onto it by a similarity transform; the synthetic renderer draws on it.
#: Looser than ArcFace's 112-px template so brows, forehead and chin stay in the picture.
TEMPLATE = np.array(
    [
        [0.355, 0.415],  # left eye (image left)
        [0.645, 0.415],  # right eye
        [0.500, 0.575],  # nose tip
        [0.385, 0.735],  # mouth left corner
        [0.615, 0.735],  # mouth right corner
    ],
    dtype=np.float32,
)


#: ImageNet normalisation (paper Section IV.B).
IMAGENET_MEAN = (0.485, 0.456, 0.406)


IMAGENET_STD = (0.229, 0.224, 0.225)


#: Geometry defaults (docs/DESIGN.md §2): source side R, global side S_g, crop fraction c, local side S_l.
DEFAULT_SOURCE_SIZE = 224


DEFAULT_GLOBAL_SIZE = 224


DEFAULT_CROP_FRACTION = 0.25


DEFAULT_LOCAL_SIZE = 64


#: Paper rows (Table 1: RAF-ML, Table 2: JAFFE), in the tables' column order (`method.metrics.METRICS`).
PAPER_TABLES: dict[str, dict[str, tuple[float, ...]]] = {
    "rafml": {
        "ResNet-18 (paper Table 1)": (0.161, 1.932, 0.124, 0.112, 0.827, 0.772, 0.740, 0.907, 0.895),
        "MF-JLE (paper Table 1)": (0.155, 1.879, 0.123, 0.111, 0.828, 0.783, 0.762, 0.909, 0.897),
    },
    "jaffe": {
        "ResNet-18 (paper Table 2)": (0.061, 0.875, 0.153, 0.025, 0.939, 0.888, 0.861, 0.962, 0.961),
        "MF-JLE (paper Table 2)": (0.032, 0.804, 0.146, 0.023, 0.959, 0.895, 0.873, 0.979, 0.963),
    },
}


#: Paper's inference time per image for MF-JLE on a GTX 1060 (Section IV.C).
PAPER_MS_PER_IMAGE = 10.52
