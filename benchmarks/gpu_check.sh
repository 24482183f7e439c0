#!/usr/bin/env bash
# The one short GPU check of this project (one GPU, within 8 minutes): the CUDA benchmark with the
# trainer's own settings (precision from the card's compute capability, GradScaler with fp16,
# cuDNN autotuning, data on the device), then one real epoch of `train` at the paper's geometry
# (R = S_g = 224, S_l = 64, batch 128). Writes benchmarks/results/bench_<card>.{json,md} and
# prints the card, so the numbers can go into docs/SPEED.md with the card's name.
#
#   bash benchmarks/gpu_check.sh            # from the repository root, after `make install`
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
RESULTS=${RESULTS:-benchmarks/results}
RUN=${RUN:-/tmp/mfjle_gpu_check_run}
mkdir -p "$RESULTS"
export PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
"$PY" - <<'PY'
import torch
from mfjle_lib.training.settings import choose_precision
assert torch.cuda.is_available(), "no CUDA device: this check is for a GPU machine"
cap = torch.cuda.get_device_capability(0)
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}, sm_{cap[0]}{cap[1]}, "
      f"trains in {choose_precision(torch.device('cuda', 0))}")
PY
card=$("$PY" -c "import re, torch; print(re.sub(r'[^a-z0-9]+', '_', torch.cuda.get_device_name(0).lower()).strip('_'))")

# 1. Speed with the trainer's settings (~3 min): inference, training steps, data path, one epoch of
#    4,908 images at 224 px and the projection of the paper's 218 epochs.
timeout 330 "$PY" benchmarks/bench.py --device cuda --repeats 5 --no-deploy \
    --json "$RESULTS/bench_${card}.json" --markdown "$RESULTS/bench_${card}.md"

# 2. One real epoch of the real command at the paper geometry (rendering 2,000 faces at 224 px
#    takes most of it on the CPU side; the decoded cache goes to /tmp).
MFJLE_DATA_DIR=/tmp/mfjle_gpu_check_data timeout 240 "$PY" -m mfjle_lib train --dataset synthetic --model mfjle \
    --preset gpu --num-images 2000 --source-size 224 --global-size 224 --local-size 64 --epochs 1 --batch-size 128 \
    --device cuda --out "$RUN" --overwrite --no-progress
"$PY" -c "import json,sys; m=json.load(open('$RUN/metrics.json')); print({k: m.get(k) for k in ('micro_f1','average_precision','local_impl','precision','deterministic','world_size')})"
echo "gpu_check: done ($card)"
