"""Difficulty check of the `synthetic` dataset: micro-F1 of one ResNet-18 (target 0.70-0.85).

Recipe (fixed by the issue): 2400 faces rendered at 128 px, resized to 64 px (antialiased),
ImageNet-normalised; seeded 1800/600 train/test split (random, so identities are shared);
torchvision resnet18, random init, 6 outputs, BCEWithLogits, Adam lr 1e-3, batch 64, 10 epochs;
micro-F1 at sigmoid >= 0.5 on the 600 held-out faces. One CPU thread: a few minutes.

Usage: python benchmarks/calibrate_synthetic.py [--epochs 10] [--seed 0] [--no-cache]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from sklearn.metrics import f1_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mfjle_lib.constants import IMAGENET_MEAN, IMAGENET_STD
from mfjle_lib.data.synthetic import LABEL_SHARE_THRESHOLD, RENDER_VERSION, load_synthetic


def to_tensor(images: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (N,H,W,3) -> normalised float (N,3,size,size), antialiased resize."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def main() -> None:
    """Train and evaluate the calibration ResNet-18; print micro-F1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="data, split and training seed")
    parser.add_argument("--no-cache", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    index = load_synthetic(2400, size=128, seed=args.seed, cache=not args.no_cache)
    images = np.stack([r.image for r in index.records])
    labels = torch.from_numpy(index.labels)
    perm = np.random.default_rng(args.seed).permutation(len(index))
    train, test = perm[:1800], perm[1800:]
    x = to_tensor(images, 64)
    print(
        f"data: {len(index)} faces in {time.perf_counter() - t0:.1f}s; label cardinality "
        f"{labels.sum(1).mean():.2f}; threshold {LABEL_SHARE_THRESHOLD}; render v{RENDER_VERSION}"
    )

    model = torchvision.models.resnet18(weights=None, num_classes=6)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        model.train()
        t1, total = time.perf_counter(), 0.0
        order = torch.from_numpy(train)[torch.randperm(len(train), generator=gen)]
        for start in range(0, len(order), 64):
            idx = order[start : start + 64]
            loss = loss_fn(model(x[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}: train loss {total / len(order):.4f} ({time.perf_counter() - t1:.0f}s)")

    model.eval()
    with torch.no_grad():
        probs = torch.cat([torch.sigmoid(model(x[test[s : s + 200]])) for s in range(0, len(test), 200)])
    y_true, y_pred = labels[test].numpy(), (probs >= 0.5).numpy().astype(np.float32)
    micro = f1_score(y_true, y_pred, average="micro", zero_division=0)
    macro = f1_score(y_true, y_pred, average="macro", zero_division=0)
    print(f"micro-F1 {micro:.4f}  (macro-F1 {macro:.4f}; target 0.70-0.85; {time.perf_counter() - t0:.0f}s total)")


if __name__ == "__main__":
    main()
