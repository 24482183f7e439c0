"""Paper Section III.B (Figs. 1-2): the five local images, squares cut around the five landmarks.

The paper crops "five local images ... according to the corresponding five key landmarks" and
leaves the geometry open; docs/DESIGN.md §2 fixes it. Each crop is a square of side `c·R`
(R = the aligned face's side) centred on its landmark and resampled to `S x S`, all five cut on
the device with one `roi_align(..., aligned=True)` call.

Convention: landmarks are continuous pixels (pixel `j` covers `[j, j+1)`, centre `j + 0.5`), the
convention of `roi_align(..., aligned=True)`. Bin `k` of a crop covers
`[x - c·R/2 + k·c·R/S, x - c·R/2 + (k+1)·c·R/S)`, so with an odd `S` the middle bin is centred
exactly on the landmark. A horizontal flip maps `x -> W - x` and swaps left and right points.

`sampling_ratio` is fixed at 2 (2x2 bilinear samples per output bin) rather than roi_align's
adaptive default: the adaptive count is `ceil(box side / S)`, which depends on the float box and
can differ between float32/float64 or CPU/CUDA for the same crop, and makes the cost vary with
`c`; a fixed count gives one cost and one result everywhere. At the defaults (c·R = 56 px cut to
S = 64) bins are under one pixel wide, so 2 samples per axis already sees every source pixel.

Outside the image: roi_align returns 0 for samples more than half a pixel beyond the image edge
(and repeats the edge pixel within that half pixel). Crops are cut from the normalised tensor, so
"0" there is the ImageNet mean colour, not black.
"""

from __future__ import annotations

import torch
from torchvision.ops import roi_align

from ..constants import FLIP_PERMUTATION, NUM_LANDMARKS

#: Bilinear samples per bin and axis (see the module docstring for why it is fixed).
SAMPLING_RATIO = 2


def crop_boxes(landmarks: torch.Tensor, source_size: int, crop_fraction: float) -> torch.Tensor:
    """Boxes (B*5, 5) = [batch_index, x1, y1, x2, y2]: squares of side c·R centred on each landmark.

    Rows are batch-major (b0 l0..l4, b1 l0..l4, ...), matching `view(B, 5, ...)` of roi_align's output.
    """
    if landmarks.ndim != 3 or landmarks.shape[1:] != (NUM_LANDMARKS, 2):
        raise ValueError(f"landmarks must be (B,5,2), got {tuple(landmarks.shape)}")
    b = landmarks.shape[0]
    half = 0.5 * float(crop_fraction) * float(source_size)
    pts = landmarks.reshape(b * NUM_LANDMARKS, 2)
    index = torch.arange(b, device=landmarks.device, dtype=landmarks.dtype).repeat_interleave(NUM_LANDMARKS)
    return torch.stack([index, pts[:, 0] - half, pts[:, 1] - half, pts[:, 0] + half, pts[:, 1] + half], dim=1)


def cut_crops(images: torch.Tensor, landmarks: torch.Tensor, crop_fraction: float, out_size: int) -> torch.Tensor:
    """Five crops per image, (B,5,C,S,S), from one `roi_align(aligned=True)` call on images' device."""
    if images.ndim != 4:
        raise ValueError(f"images must be (B,C,H,W), got {tuple(images.shape)}")
    b, c, h, w = images.shape
    if h != w:
        raise ValueError(f"crops assume square aligned faces, got {h}x{w}")
    if landmarks.shape[0] != b:
        raise ValueError(f"{b} images but {landmarks.shape[0]} landmark sets")
    # roi_align reads out of bounds (segfaults) on NaN/inf boxes: send such points far outside, where
    # crops are zeros, without a host sync. Here, so every caller (model, deploy, figures) is guarded.
    pts = landmarks.to(device=images.device, dtype=images.dtype)
    far = 10.0 * w
    pts = torch.nan_to_num(pts, nan=-far, posinf=far, neginf=-far).clamp(-far, far)
    boxes = crop_boxes(pts, w, crop_fraction)
    crops = roi_align(
        images, boxes, output_size=out_size, spatial_scale=1.0, sampling_ratio=SAMPLING_RATIO, aligned=True
    )
    # One layout for the five crops whatever layout the images come in (roi_align keeps the input's),
    # so each local net gets a plain slice; a no-op for contiguous images.
    return crops.view(b, NUM_LANDMARKS, c, out_size, out_size).contiguous()


def hflip(images: torch.Tensor, landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror images left-right: x -> W - x, then swap left/right points by FLIP_PERMUTATION."""
    w = images.shape[-1]
    flipped = landmarks.clone()
    flipped[..., 0] = w - flipped[..., 0]
    perm = torch.as_tensor(FLIP_PERMUTATION, device=landmarks.device)
    return images.flip(-1), flipped.index_select(-2, perm)
