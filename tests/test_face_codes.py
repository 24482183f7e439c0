"""How the built-in faces draw an emotion (course.face_codes) and lesson 01's figure of it."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mfjle_lib.constants import EMOTIONS, LANDMARKS  # noqa: E402
from mfjle_lib.course import face_codes, plots  # noqa: E402
from mfjle_lib.data import AU_MATRIX, AU_NAMES  # noqa: E402


@pytest.fixture(scope="module")
def renders() -> dict:
    return face_codes.render_emotions(size=64)


def test_renders_differ_only_where_the_expression_moves(renders: dict) -> None:
    assert renders["names"] == ["neutral", *EMOTIONS]
    assert renders["images"].shape == (7, 64, 64, 3) and renders["images"].dtype == np.uint8
    assert np.array_equal(renders["aus"][1:], AU_MATRIX) and not renders["aus"][0].any()
    assert np.array_equal(face_codes.render_emotions(size=64)["images"], renders["images"])  # deterministic
    moved = np.linalg.norm(renders["landmarks"] - renders["landmarks"][0], axis=-1)
    assert np.allclose(moved[:, :3], 0)  # eyes and nose never move; the mouth corners do
    assert (moved[1:, 3:] > 0.5).all()
    changes = face_codes.change_maps(renders)
    assert changes.shape == (7, 64, 64) and not changes[0].any()
    corner = changes[:, :6, :6]  # the background corner: same pose and light, no noise
    assert not corner.any()


def test_crop_changes_see_the_nose_blank_except_for_disgust_and_happiness(renders: dict) -> None:
    per_crop = face_codes.crop_changes(renders)
    assert per_crop.shape == (7, 1 + len(LANDMARKS)) and not per_crop[0].any()
    nose = dict(zip(EMOTIONS, per_crop[1:, 1 + LANDMARKS.index("nose")]))
    quiet = max(nose[e] for e in ("surprise", "fear", "sadness", "anger"))
    assert nose["disgust"] > 3 * quiet and nose["happiness"] > 3 * quiet


def test_expression_change_table() -> None:
    table = face_codes.expression_change_table(size=48, identities=2)
    assert list(table.index) == [e.capitalize() for e in EMOTIONS]
    assert table.columns[0] == "whole face" and table.columns[-1] == "mouth corners move (px)"
    happiness = table.loc["Happiness"]
    assert happiness["mouth left"] > 3 * happiness["whole face"]  # concentrated in the mouth corners
    assert table["mouth corners move (px)"].idxmax() == "Happiness"


def test_every_action_unit_has_a_title_and_a_region() -> None:
    assert set(face_codes.AU_TITLES) == set(AU_NAMES) == set(face_codes.AU_REGIONS)


def test_plot_emotion_codes_draws(renders: dict) -> None:
    fig = plots.plot_emotion_codes(renders, crop_fraction=0.25)
    try:
        assert len(fig.axes) == 3 * 7
        assert fig.axes[0].get_title().startswith("Neutral") and "AU6, AU12" in fig.axes[4].get_title()
        assert fig.axes[7].images and fig.axes[14].patches  # faces drawn; crop squares on the change maps
        fig.canvas.draw()
    finally:
        plt.close(fig)
