"""What a built-in face is made of: the emotion -> action-unit mixing, identities, label distributions."""
from __future__ import annotations

import numpy as np

from ..constants import EMOTIONS, NUM_LABELS

#: Probabilities of one, two or three peaks in a sample's emotion distribution.
PEAK_PROBS = (0.4, 0.4, 0.2)


#: Dirichlet concentration of the peak weights: higher keeps blended peaks away from the threshold.
PEAK_CONCENTRATION = 4.0


#: Largest share of the uniform background; below the threshold, so only peaks become labels.
BACKGROUND_MAX = 0.10


#: The FACS action units the renderer draws.
AU_NAMES: tuple[str, ...] = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU12", "AU15", "AU16",
                             "AU20", "AU23", "AU26")


#: Prototype action units of each emotion (EMFACS-style), in EMOTIONS order.
EMOTION_AUS: dict[str, tuple[str, ...]] = {
    "surprise": ("AU1", "AU2", "AU5", "AU26"),
    "fear": ("AU1", "AU2", "AU4", "AU5", "AU20", "AU26"),
    "disgust": ("AU9", "AU15", "AU16"),
    "happiness": ("AU6", "AU12"),
    "sadness": ("AU1", "AU4", "AU15"),
    "anger": ("AU4", "AU5", "AU7", "AU23"),
}


#: (6, num_AUs) emotion -> AU mixing matrix.
AU_MATRIX = np.array([[float(a in EMOTION_AUS[e]) for a in AU_NAMES] for e in EMOTIONS], np.float32)


#: Column of each action unit in AU_MATRIX.
AU_INDEX = {name: i for i, name in enumerate(AU_NAMES)}


#: Shade of folds, lashes and glasses (RGB).
DARK = (25.0, 18.0, 16.0)


def mix_colour(a, b, t: float) -> tuple[int, int, int]:
    """RGB colour a blended towards b by t in [0, 1]."""
    return tuple(int(min(255.0, max(0.0, float(x) * (1 - t) + float(y) * t))) for x, y in zip(a, b))


def sample_identity(rng: np.random.Generator) -> dict:
    """Draw one identity: face shape, skin and hair colours, feature spacing."""
    tone = rng.uniform()
    skin = np.array([238, 205, 180]) * (1 - tone) + np.array([105, 68, 50]) * tone + rng.normal(0, 6, 3)
    hair_t = rng.uniform()
    hair = np.array([20, 15, 12]) * (1 - hair_t) + np.array([170, 130, 80]) * hair_t
    if rng.uniform() < 0.1:  # grey hair
        hair = np.full(3, rng.uniform(140, 200))
    u = rng.uniform
    return dict(
        skin=tuple(skin.tolist()), hair=tuple(hair.tolist()), hair_style=int(rng.integers(3)), hairline=u(0.14, 0.22),
        fw=u(0.27, 0.32), fh=u(0.41, 0.46), fcy=u(0.52, 0.55), jaw=u(0.15, 0.35),
        eye_dx=u(-0.008, 0.008), eye_dy=u(-0.006, 0.006), nose_dy=u(-0.008, 0.008),
        mouth_dy=u(-0.008, 0.008), ew=u(0.044, 0.054), hu=u(0.016, 0.021), hl=u(0.011, 0.015),
        iris=u(0.016, 0.020), iris_col=mix_colour(DARK, [90 + 60 * u(), 70 + 40 * u(), 40 + 40 * u()], u()),
        bgap=u(0.055, 0.072), bthick=u(0.013, 0.02), blen=u(0.055, 0.07), arch=u(0.004, 0.012),
        nw=u(0.024, 0.034), tu=u(0.011, 0.016), tl=u(0.014, 0.02), lip_red=u(0.15, 0.4),
    )


def sample_distribution(rng: np.random.Generator) -> np.ndarray:
    """One to three peaks (Dirichlet-weighted) over a small uniform background, summing to 1."""
    k = int(rng.choice(3, p=PEAK_PROBS)) + 1
    peaks = np.zeros(NUM_LABELS)
    peaks[rng.choice(NUM_LABELS, k, replace=False)] = rng.dirichlet(np.full(k, PEAK_CONCENTRATION))
    background = rng.dirichlet(np.ones(NUM_LABELS))
    b = rng.uniform(0.03, BACKGROUND_MAX)
    return (1 - b) * peaks + b * background
