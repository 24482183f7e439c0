"""Small training sets: from scratch vs started from a run on other built-in faces vs --augment.

JAFFE trains on about 130 faces. This script measures, on the built-in faces, what starting from
another run buys at that size (docs/DESIGN.md §2, initialisation): a ResNet-18 is pretrained on
3,000 built-in faces rendered with another seed (`pretrain --synthetic-seed 1`, so no face is
shared with the evaluation set), then 217 built-in faces of the default set (seed 0; a 60/20/20
split gives 130 train / 43 val / 44 test, JAFFE's sizes) are trained four ways, over three seeds
(training seed = split seed = S):

  scratch            random initialisation
  init-from          `--init-from` the pretrained run (optimiser and schedule start fresh)
  augment            random initialisation, `--augment`
  init-from+augment  both

Every run is a real `python -m mfjle_lib` command (printed); the table is mean ± std over seeds.

    python benchmarks/small_data.py [--out runs/small_data] [--seeds 3] [--json F] [--markdown F]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["--preset", "cpu", "--model", "resnet18", "--no-progress"]
SMALL = ["--dataset", "synthetic", "--num-images", "217", "--epochs", "30", "--batch-size", "32"]
PRETRAIN = ["pretrain", "--like", "jaffe", "--num-images", "3000", "--synthetic-seed", "1", "--seed", "0"]
CONDITIONS = {
    "scratch": [],
    "init-from": ["--init-from", "{pretrain}"],
    "augment": ["--augment"],
    "init-from+augment": ["--init-from", "{pretrain}", "--augment"],
}
KEYS = ("micro_f1", "macro_f1", "average_precision", "hamming_loss", "coverage")


def run(args: list[str]) -> None:
    """Run one CLI command from the repository root (its time is read back from the run's history)."""
    print("$ python -m mfjle_lib " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "mfjle_lib", *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def training_seconds(out: Path) -> dict[str, float]:
    """Seconds each finished run under `out` spent in its training epochs (history.csv's time_s)."""
    return {
        d.name: round(float(pd.read_csv(d / "history.csv")["time_s"].sum()), 1)
        for d in sorted(out.iterdir())
        if (d / "history.csv").exists() and (d / "metrics.json").exists()
    }


def relative(text: str) -> str:
    """An init record with the repository's absolute path removed, so the committed result names no machine."""
    return text.replace(str(ROOT) + "/", "")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "runs" / "small_data"))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "small_data.json"))
    p.add_argument("--markdown", default=str(ROOT / "benchmarks" / "results" / "small_data.md"))
    args = p.parse_args(argv)
    out = Path(args.out)
    pretrain = out / "pretrain"
    if not (pretrain / "metrics.json").exists():
        run([*PRETRAIN, *COMMON, "--out", str(pretrain), "--overwrite"])
    rows: dict[str, list[dict]] = {c: [] for c in CONDITIONS}
    for seed in range(args.seeds):
        for name, extra in CONDITIONS.items():
            run_dir = out / f"{name}_seed{seed}"
            if not (run_dir / "metrics.json").exists():
                flags = [x.format(pretrain=pretrain) for x in extra]
                run(
                    [
                        "train",
                        *SMALL,
                        *COMMON,
                        "--seed",
                        str(seed),
                        "--split-seed",
                        str(seed),
                        *flags,
                        "--out",
                        str(run_dir),
                        "--overwrite",
                    ]
                )
            rows[name].append(json.loads((run_dir / "metrics.json").read_text()))
    summary = {
        name: {
            k: (statistics.mean(r[k] for r in runs), statistics.stdev(r[k] for r in runs) if len(runs) > 1 else 0.0)
            for k in KEYS
        }
        for name, runs in rows.items()
    }
    n = rows["scratch"][0]
    header = (
        "| start (ResNet-18, 130 train faces) | "
        + " | ".join(f"{k} {'↓' if k in ('hamming_loss', 'coverage') else '↑'}" for k in KEYS)
        + " |"
    )
    lines = [
        f"{args.seeds} seeds (training seed = split seed), {n['n_train']} train / {n['n_val']} val / "
        f"{n['n_samples']} test faces; "
        "`python benchmarks/small_data.py`",
        "",
        header,
        "|---" * (len(KEYS) + 1) + "|",
    ]
    for name, stats in summary.items():
        lines.append(f"| {name} | " + " | ".join(f"{m:.3f} ± {s:.3f}" for m, s in stats.values()) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    result = {
        "summary": summary,
        "runs": {
            k: [{**{m: r[m] for m in (*KEYS, "seed", "selected_epoch")}, "init": relative(r["init"])} for r in v]
            for k, v in rows.items()
        },
        "training_seconds": training_seconds(out),
        "pretrain_command": "python -m mfjle_lib " + " ".join([*PRETRAIN, *COMMON]),
        "train_command": "python -m mfjle_lib "
        + " ".join(["train", *SMALL, *COMMON, "--seed", "S", "--split-seed", "S"]),
    }
    for path, content in ((args.json, json.dumps(result, indent=2)), (args.markdown, text)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(content)
    return result


if __name__ == "__main__":
    main()
