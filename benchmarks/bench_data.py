"""Data-path speed: decoded-cache batches vs JPEG decoding, and synthetic rendering (docs/DESIGN.md §6).

    python benchmarks/bench_data.py [--batch-size 128] [--size 128] [--json FILE]

(a) a batch of 128 from the uint8 memmap (-> torch tensor (B,3,R,R)) vs decoding the same images
from JPEG files with `image_io.read_image`; target: the cache is >= 10x faster.
(b) `render_faces(n=300, size=128)` on one core; target >= 300 images/s.
Everything runs on one thread, in a throw-away data folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

CACHE_TARGET_RATIO = 10.0
SYNTHETIC_TARGET = 300.0


def _timed(fn, min_time: float = 1.0, min_reps: int = 3) -> float:
    """Median seconds per call of fn() over at least `min_reps` calls and `min_time` seconds."""
    fn()  # warm-up: page cache, allocator, lazy imports
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def bench_cache_vs_jpeg(num_images: int = 256, size: int = 128, batch_size: int = 128, seed: int = 0) -> dict:
    """Images/s reading random batches from the decoded cache vs decoding the same JPEGs."""
    from PIL import Image

    from mfjle_lib.data.image_io import read_image
    from mfjle_lib.data.records import DatasetIndex, FaceRecord
    from mfjle_lib.data.synthetic import render_faces
    from mfjle_lib.faces.prepare import prepare_dataset

    faces = render_faces(n=num_images, size=size, seed=seed)
    with tempfile.TemporaryDirectory(prefix="mfjle-bench-") as tmp:
        os.environ["MFJLE_DATA_DIR"] = str(Path(tmp) / "data")
        paths = []
        for i, img in enumerate(faces["images"]):
            path = Path(tmp) / f"{i:05d}.jpg"
            Image.fromarray(img).save(path, quality=95)
            paths.append(path)
        records = [
            FaceRecord(
                id=p.stem,
                labels=faces["labels"][i],
                image_path=p,
                landmarks=faces["landmarks"][i],
                landmark_source="dataset",
                aligned=True,
            )
            for i, p in enumerate(paths)
        ]
        prepared = prepare_dataset(DatasetIndex("bench", records, root=Path(tmp)), size=size, show_progress=False)
        rng = np.random.default_rng(seed)
        batch = np.sort(rng.choice(len(paths), size=min(batch_size, len(paths)), replace=False))

        # Both paths end in the same (B,3,R,R) uint8 tensor, a channels_last view of the NHWC
        # rows: the device copy and .float() keep that layout, and a contiguous NCHW permute
        # would cost more than the gather itself (reported separately).
        def from_cache() -> torch.Tensor:
            return torch.from_numpy(prepared.images[batch]).permute(0, 3, 1, 2)

        def from_cache_nchw() -> torch.Tensor:
            return from_cache().contiguous()

        def from_jpeg() -> torch.Tensor:
            return torch.from_numpy(np.stack([read_image(paths[i]) for i in batch])).permute(0, 3, 1, 2)

        assert torch.equal(from_cache(), from_jpeg())  # same pixels: the cache holds the decoded JPEGs
        t_cache = _timed(from_cache)
        t_nchw = _timed(from_cache_nchw)
        t_jpeg = _timed(from_jpeg)
    n = len(batch)
    cache_ips, jpeg_ips = n / t_cache, n / t_jpeg
    return {
        "cache_read_images_per_s": round(cache_ips, 1),
        "cache_read_nchw_contiguous_images_per_s": round(n / t_nchw, 1),
        "jpeg_decode_images_per_s": round(jpeg_ips, 1),
        "cache_vs_jpeg_ratio": round(cache_ips / jpeg_ips, 2),
        "cache_vs_jpeg_target": CACHE_TARGET_RATIO,
        "cache_vs_jpeg_ok": cache_ips / jpeg_ips >= CACHE_TARGET_RATIO,
        "batch_size": n,
        "source_size": size,  # R, the side of the cached faces
    }


def bench_synthetic(n: int = 300, size: int = 128) -> dict | None:
    """Images/s of the synthetic renderer on one core, or None when it is not available."""
    try:
        from mfjle_lib.data.synthetic import render_faces
    except ImportError:
        return None
    render_faces(n=4, size=size, seed=1)  # warm-up
    t0 = time.perf_counter()
    render_faces(n=n, size=size, seed=0)
    ips = n / (time.perf_counter() - t0)
    return {
        "synthetic_images_per_s": round(ips, 1),
        "synthetic_target": SYNTHETIC_TARGET,
        "synthetic_ok": ips >= SYNTHETIC_TARGET,
        "synthetic_n": n,
    }


def main(argv: list[str] | None = None) -> int:
    """Run both measurements, print them, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--num-images", type=int, default=256)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # one core: comparable across machines, fair to single-threaded PIL
    os.environ.setdefault("MFJLE_NO_PROGRESS", "1")
    result: dict = {"cpu": platform.processor() or platform.machine(), "threads": 1}
    result.update(bench_cache_vs_jpeg(args.num_images, args.size, args.batch_size))
    print(
        f"batch of {result['batch_size']} at {args.size}px: cache {result['cache_read_images_per_s']:.0f} img/s "
        f"({result['cache_read_nchw_contiguous_images_per_s']:.0f} with a contiguous NCHW copy), "
        f"JPEG decode {result['jpeg_decode_images_per_s']:.0f} img/s, ratio {result['cache_vs_jpeg_ratio']:.1f}x "
        f"(target >= {CACHE_TARGET_RATIO:.0f}x: {'ok' if result['cache_vs_jpeg_ok'] else 'MISSED'})"
    )
    syn = bench_synthetic(size=args.size)
    if syn is None:
        print("synthetic renderer not available: skipped")
    else:
        result.update(syn)
        print(
            f"synthetic rendering at {args.size}px, one core: {syn['synthetic_images_per_s']:.0f} img/s "
            f"(target >= {SYNTHETIC_TARGET:.0f}: {'ok' if syn['synthetic_ok'] else 'MISSED'})"
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
