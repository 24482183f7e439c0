"""How the built-in faces encode an emotion: emotion -> action units -> pixels (lesson 01, section 1).

Each emotion switches on its prototype action units (`data.face_params.EMOTION_AUS`); the renderer
turns each unit into a movement of brows, lids, nose or mouth (`data.face_renderer`). Rendering one
identity neutral and then with one emotion at full strength, with the same pose and lighting and no
sensor noise, isolates what that emotion changes — and shows which of the five crops can see it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..constants import EMOTION_TITLES, EMOTIONS, LANDMARKS
from ..data.face_params import AU_MATRIX, AU_NAMES, sample_identity
from ..data.face_renderer import render_one
from ..faces.display import crops_for_display

#: What each action unit does in FACS, and how the renderer draws it.
AU_TITLES: dict[str, str] = {
    "AU1": "inner brow raiser",
    "AU2": "outer brow raiser",
    "AU4": "brow lowerer",
    "AU5": "upper lid raiser",
    "AU6": "cheek raiser",
    "AU7": "lid tightener",
    "AU9": "nose wrinkler",
    "AU12": "lip corner puller",
    "AU15": "lip corner depressor",
    "AU16": "lower lip depressor",
    "AU20": "lip stretcher",
    "AU23": "lip tightener",
    "AU26": "jaw drop",
}

#: The part of the face the renderer moves for each action unit (AU6 also deepens the nose-to-mouth folds).
AU_REGIONS: dict[str, str] = {
    "AU1": "brows",
    "AU2": "brows",
    "AU4": "brows",
    "AU5": "eyes",
    "AU6": "eyes",
    "AU7": "eyes",
    "AU9": "nose",
    "AU12": "mouth",
    "AU15": "mouth",
    "AU16": "mouth",
    "AU20": "mouth",
    "AU23": "mouth",
    "AU26": "mouth",
}

#: Default identity of the figure: a face without glasses or an occluding patch.
FIGURE_IDENTITY = 2


def render_emotions(size: int = 128, identity: int = FIGURE_IDENTITY) -> dict[str, Any]:
    """One built-in identity rendered neutral and with each emotion's action units at full strength.

    Returns `names` ("neutral" then EMOTIONS), `images` (7, size, size, 3) uint8, `landmarks`
    (7, 5, 2) in pixels and `aus` (7, 13). Pose, lighting and background are the same in all seven
    (one seeded stream per call) and there is no sensor noise, so two images differ only where the
    expression moved something.
    """
    idt = sample_identity(np.random.default_rng([identity, 1, 0]))
    silent = np.zeros((2 * size, 2 * size, 3), np.float32)
    aus = np.vstack([np.zeros((1, len(AU_NAMES)), np.float32), AU_MATRIX])
    rendered = [render_one(size, idt, au, np.random.default_rng([identity, 4]), silent) for au in aus]
    return {
        "names": ["neutral", *EMOTIONS],
        "images": np.stack([img for img, _ in rendered]),
        "landmarks": np.stack([lm for _, lm in rendered]),
        "aus": aus,
    }


def change_maps(renders: dict[str, Any]) -> np.ndarray:
    """(7, size, size) mean absolute change over RGB of each render from the neutral one (grey levels)."""
    images = renders["images"].astype(np.float32)
    return np.abs(images - images[0]).mean(-1)


def crop_changes(renders: dict[str, Any], crop_fraction: float = 0.25) -> np.ndarray:
    """(7, 6): mean |change| per pixel over the whole face, then inside each of the five crops.

    Each crop is cut around that face's own landmarks, as a local module receives it (a mouth crop
    follows its moving corner), at one crop pixel per face pixel.
    """
    side = max(1, round(crop_fraction * renders["images"].shape[1]))
    crops = [
        np.stack(crops_for_display(img, lm, crop_fraction, side)).astype(np.float32)
        for img, lm in zip(renders["images"], renders["landmarks"])
    ]
    per_crop = np.stack([np.abs(c - crops[0]).mean(axis=(1, 2, 3)) for c in crops])
    return np.column_stack([change_maps(renders).mean(axis=(1, 2)), per_crop])


def expression_change_table(size: int = 128, identities: int = 8, crop_fraction: float = 0.25) -> pd.DataFrame:
    """Per emotion, averaged over identities: mean |change| in the whole face and in each crop, and how far the mouth
    corners move.

    Rows are the six emotions; columns the whole face, the five crops (grey levels per pixel) and
    the mean displacement of the two mouth-corner landmarks in pixels (eyes and nose never move).
    """
    changes, moves = [], []
    for k in range(identities):
        renders = render_emotions(size, identity=k)
        changes.append(crop_changes(renders, crop_fraction)[1:])
        moves.append(np.linalg.norm(renders["landmarks"][1:, 3:] - renders["landmarks"][0, 3:], axis=-1).mean(-1))
    columns = ["whole face", *(name.replace("_", " ") for name in LANDMARKS)]
    table = pd.DataFrame(np.mean(changes, axis=0), index=list(EMOTION_TITLES), columns=columns)
    table["mouth corners move (px)"] = np.mean(moves, axis=0)
    return table.rename_axis(f"{identities} identities, {size} px")
