"""Crops: roi_align boxes centred on landmarks, dtype/batch/device agreement, flips, zeros outside."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mfjle_lib.constants import FLIP_PERMUTATION, IMAGENET_MEAN, TEMPLATE
from mfjle_lib.faces.display import crops_for_display
from mfjle_lib.method.crops import crop_boxes, cut_crops, hflip


def _faces(b: int = 3, r: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(b, 3, r, r, generator=g)
    lm = torch.as_tensor(TEMPLATE * r).expand(b, 5, 2) + torch.randn(b, 5, 2, generator=g) * 2
    return images, lm.contiguous()


def test_crop_boxes_layout() -> None:
    lm = torch.tensor([[[10.0, 20.0]] * 5, [[30.0, 40.0]] * 5])
    lm[1, 4] = torch.tensor([50.0, 60.0])
    boxes = crop_boxes(lm, source_size=100, crop_fraction=0.2)
    assert boxes.shape == (10, 5)
    assert boxes[:5, 0].tolist() == [0] * 5 and boxes[5:, 0].tolist() == [1] * 5
    assert boxes[0].tolist() == [0, 0, 10, 20, 30]
    assert boxes[9].tolist() == [1, 40, 50, 60, 70]


def test_bright_dot_lands_at_crop_centre() -> None:
    r, s = 64, 33
    dots = [(20, 25), (44, 25), (32, 36), (24, 47), (40, 47)]
    # One image per landmark, each with one dot, so no other dot competes inside a crop.
    images = torch.zeros(5, 1, r, r)
    lm = torch.as_tensor(TEMPLATE * r).expand(5, 5, 2).clone()
    for k, (x, y) in enumerate(dots):
        images[k, 0, y, x] = 1.0
        lm[k, k] = torch.tensor([x + 0.5, y + 0.5])  # the dot's centre in continuous coordinates
    crops = cut_crops(images, lm, crop_fraction=s / r, out_size=s)  # 1 px bins
    assert crops.shape == (5, 5, 1, s, s)
    for k in range(5):
        c = crops[k, k, 0]
        assert divmod(int(c.argmax()), s) == (s // 2, s // 2)
        # Symmetric around the middle bin: the landmark is the crop's exact centre.
        torch.testing.assert_close(c, c.flip(0).flip(1))


def test_float64_and_float32_agree() -> None:
    images, lm = _faces()
    c32 = cut_crops(images, lm, 0.25, 16)
    c64 = cut_crops(images.double(), lm.double(), 0.25, 16)
    assert c64.dtype == torch.float64
    torch.testing.assert_close(c32.double(), c64, atol=1e-5, rtol=0)


def test_batch_equals_single() -> None:
    images, lm = _faces(b=4)
    batch = cut_crops(images, lm, 0.3, 20)
    for i in range(4):
        assert torch.equal(batch[i], cut_crops(images[i : i + 1], lm[i : i + 1], 0.3, 20)[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    images, lm = _faces(b=4)
    cpu = cut_crops(images, lm, 0.25, 32)
    gpu = cut_crops(images.cuda(), lm.cuda(), 0.25, 32)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=0)


def test_zeros_outside_the_image() -> None:
    r = 32
    image = torch.ones(1, 3, r, r)
    lm = torch.zeros(1, 5, 2)  # every landmark on the top-left corner
    crops = cut_crops(image, lm, crop_fraction=1.0, out_size=32)  # box [-16, 16): 1 px bins
    c = crops[0, 0, 0]
    assert torch.all(c[:15, :] == 0) and torch.all(c[:, :15] == 0)  # more than half a pixel outside
    assert torch.all(c[17:, 17:] == 1)  # inside


def test_hflip_twice_is_identity_and_swaps_sides() -> None:
    images, lm = _faces()
    fi, fl = hflip(images, lm)
    assert torch.equal(fi, images.flip(-1))
    torch.testing.assert_close(fl[:, 0, 0], 64 - lm[:, 1, 0])  # new left eye = mirrored right eye
    assert fl[:, 0, 0].lt(fl[:, 1, 0]).all()  # still left of the right eye in the image
    ii, ll = hflip(fi, fl)
    assert torch.equal(ii, images)
    torch.testing.assert_close(ll, lm)
    assert tuple(FLIP_PERMUTATION) == (1, 0, 2, 4, 3)


def test_flipped_crop_is_mirrored_crop_of_the_other_side() -> None:
    images, lm = _faces(b=2, r=64, seed=3)
    crops = cut_crops(images, lm, 0.25, 16)
    fi, fl = hflip(images, lm)
    fcrops = cut_crops(fi, fl, 0.25, 16)
    for k, j in enumerate(FLIP_PERMUTATION):
        torch.testing.assert_close(fcrops[:, k], crops[:, j].flip(-1), atol=1e-6, rtol=0)


def test_flip_moves_a_dot_with_its_landmark() -> None:
    image = torch.zeros(1, 1, 40, 40)
    image[0, 0, 10, 7] = 1.0
    lm = torch.as_tensor(TEMPLATE * 40)[None].clone()
    lm[0, 0] = torch.tensor([7.5, 10.5])  # left eye on the dot
    fi, fl = hflip(image, lm)
    x, y = fl[0, 1].tolist()  # it is now the right eye
    assert fi[0, 0, int(y), int(x)] == 1.0 and x == 40 - 7.5


def test_crops_for_display_matches_model_view() -> None:
    image = np.zeros((64, 64, 3), np.uint8)
    image[25, 20] = 255
    lm = TEMPLATE * 64
    lm[0] = [20.5, 25.5]
    crops = crops_for_display(image, lm, crop_fraction=33 / 64, out_size=33)
    assert len(crops) == 5 and all(c.shape == (33, 33, 3) and c.dtype == np.uint8 for c in crops)
    gray = crops[0][..., 0].astype(int)
    assert divmod(int(gray.argmax()), 33) == (16, 16)
    far = crops_for_display(image, np.full((5, 2), -100.0, np.float32), 0.25, 8)[0]
    np.testing.assert_array_equal(far[0, 0], np.round(np.array(IMAGENET_MEAN) * 255).astype(np.uint8))
