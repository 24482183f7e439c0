"""keep_freed_memory: a training step reuses its memory instead of page-faulting it in again.

Counts page faults (deterministic kernel counters), never times anything. Each case runs in a fresh
interpreter: the allocator setting is process-wide and cannot be undone.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.skipif(
        not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only"
    ),
    pytest.mark.slow,  # a fresh interpreter per case, eight 224-px forward passes each
]

# Eight forward passes of a ResNet-18 at 224 px, batch 16 (its first activations are 51 MB each,
# past glibc's 32 MB mmap limit); report the page faults of the last five. Once tuned, most passes
# fault nothing; a pass now and then still faults a few thousand pages (seen: 2-14k in passes 2-4,
# once in a later pass on a loaded machine: worker threads' arenas), so the test takes the median.
PROBE = r"""
import json, resource, torch
from mfjle_lib.perf.allocator import keep_freed_memory
from mfjle_lib.method.models import make_resnet18
applied = keep_freed_memory()
net, x = make_resnet18(6).eval(), torch.randn(16, 3, 224, 224)
faults = []
for _ in range(8):
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    with torch.no_grad():
        net(x)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
print(json.dumps({"applied": applied, "again": keep_freed_memory(), "faults": faults[3:]}))
"""


def _probe(**env: str) -> dict:
    full = {k: v for k, v in os.environ.items() if k != "MFJLE_DEFAULT_MALLOC"}
    full.update(env)
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=full, timeout=600, check=True
    )  # generous: a loaded 2-core machine is slow to import torch
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_forward_passes_reuse_memory_without_page_faults():
    tuned = _probe()
    assert tuned["applied"] and tuned["again"]
    # Each pass needs ~100 MB (25,000 pages of 4 KB); reused memory needs none of them again.
    assert sorted(tuned["faults"])[len(tuned["faults"]) // 2] < 500, tuned


def test_default_allocator_faults_memory_in_on_every_pass():
    default = _probe(MFJLE_DEFAULT_MALLOC="1")
    assert not default["applied"]
    # glibc's default maps blocks this big fresh and returns them on free: every pass faults.
    assert min(default["faults"]) > 20_000, default
