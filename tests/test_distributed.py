"""One run across several processes (torchrun + DistributedDataParallel), tested on the CPU with gloo."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from mfjle_lib.errors import ConfigError
from mfjle_lib.training.augment import augment_batch
from mfjle_lib.training.distributed import DistContext, LaunchPlan, launch, part_bounds, plan_launch, usable_length

REPO = Path(__file__).resolve().parents[1]


def _torchrun_env(rank: int = 0, world: int = 2, local_world: int | None = None, port: int = 29500) -> dict[str, str]:
    return {
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(world),
        "LOCAL_WORLD_SIZE": str(local_world or world),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# Sharding
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 5, 8, 10, 16, 17])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_parts_cover_a_batch_once_in_order(n: int, world: int) -> None:
    bounds = [part_bounds(n, r, world) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))  # contiguous, no gap, no overlap
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_every_rank_shards_the_same_permutation_into_the_global_batches() -> None:
    """Same generator on every rank -> same permutation; the ranks' parts of each step are the one-process batch."""
    batch, world, n = 16, 2, 42
    perms = [torch.randperm(n, generator=torch.Generator().manual_seed(7)) for _ in range(world)]
    assert all(torch.equal(perms[0], p) for p in perms)
    ctxs = [DistContext(rank=r, world_size=world) for r in range(world)]
    steps = -(-n // batch)
    for b in range(steps):
        global_batch = perms[0][b * batch : (b + 1) * batch]
        parts = [c.shard(perms[c.rank][b * batch : (b + 1) * batch]) for c in ctxs]
        assert torch.equal(torch.cat(parts), global_batch)
        assert all(len(p) == len(global_batch) // world for p in parts)  # 16 -> 8 + 8, tail 10 -> 5 + 5
    assert DistContext().shard(perms[0]) is perms[0]  # one process: the whole batch


def test_a_last_batch_smaller_than_the_world_is_dropped() -> None:
    assert usable_length(42, 16, 2) == 42  # tail 10: both ranks get 5
    assert usable_length(33, 16, 2) == 32  # tail 1: one rank would have nothing
    assert usable_length(35, 16, 4) == 32
    assert usable_length(36, 16, 4) == 32  # tail 4: one image a rank, too few for BatchNorm
    assert usable_length(40, 16, 4) == 40  # tail 8: two a rank
    assert (
        usable_length(97, 32, 1) == 96 and usable_length(98, 32, 1) == 98
    )  # one process: a one-image batch is dropped
    assert usable_length(32, 16, 4) == 32
    assert (
        DistContext().usable(33, 16) == 32
        and DistContext().usable(34, 16) == 34
        and DistContext(0, 2).usable(33, 16) == 32
    )


def test_loss_weights_make_ddps_average_the_global_mean() -> None:
    """DDP averages the ranks' gradients; weighting each rank's mean by n_r*N/n gives the mean over the global batch."""
    losses = torch.rand(11, dtype=torch.float64)  # an uneven last batch: 11 over 3 ranks -> 4, 4, 3
    world = 3
    ctxs = [DistContext(r, world) for r in range(world)]
    avg = sum(c.loss_weight(len(c.shard(losses)), len(losses)) * c.shard(losses).mean() for c in ctxs) / world
    assert torch.allclose(avg, losses.mean(), rtol=0, atol=1e-12)
    assert DistContext().loss_weight(5, 11) == 1.0


def test_augmenting_a_part_equals_that_part_of_the_global_batch() -> None:
    """Each rank draws the random numbers of the whole global batch: same images as one process, generators in step."""
    torch.manual_seed(0)
    x, lm = torch.rand(10, 3, 32, 32), torch.rand(10, 5, 2) * 32
    whole_gen = torch.Generator().manual_seed(3)
    whole = augment_batch(x, lm, whole_gen)
    for world in (2, 3):
        parts, gens = [], []
        for r in range(world):
            gen = torch.Generator().manual_seed(3)
            start, stop = part_bounds(10, r, world)
            parts.append(augment_batch(x[start:stop], lm[start:stop], gen, rows=(start, stop, 10)))
            gens.append(gen)
        assert torch.allclose(torch.cat([p[0] for p in parts]), whole[0], atol=1e-6)
        assert torch.allclose(torch.cat([p[1] for p in parts]), whole[1], atol=1e-5)
        assert all(torch.equal(g.get_state(), whole_gen.get_state()) for g in gens)


# --------------------------------------------------------------------------------------------
# Launch checks: one clear ConfigError line before any process group exists
# --------------------------------------------------------------------------------------------


def test_no_torchrun_is_an_ordinary_run() -> None:
    assert plan_launch({}, "cpu", 16) == LaunchPlan()
    assert plan_launch({}, None, 15) == LaunchPlan()  # one process: any batch size
    assert plan_launch(_torchrun_env(world=1), "cpu", 15) == LaunchPlan()  # torchrun --nproc_per_node 1


def test_cpu_ranks_use_gloo_and_cuda_ranks_nccl_on_their_local_gpu() -> None:
    plan = plan_launch(_torchrun_env(rank=1), "cpu", 16, cuda_count=0)
    assert (plan.rank, plan.world_size, plan.backend, plan.device) == (1, 2, "gloo", "cpu")
    plan = plan_launch(_torchrun_env(rank=0), None, 16, cuda_count=0)  # auto without GPUs -> cpu
    assert (plan.backend, plan.device) == ("gloo", "cpu")
    if torch.distributed.is_nccl_available():
        plan = plan_launch(_torchrun_env(rank=1), "cuda", 16, sync_bn=True, cuda_count=2)
        assert (plan.backend, plan.device, plan.sync_bn) == ("nccl", "cuda:1", True)
        plan = plan_launch(_torchrun_env(rank=1), "auto", 16, cuda_count=4)
        assert (plan.backend, plan.device) == ("nccl", "cuda:1")


@pytest.mark.parametrize(
    "env, device, batch, options, words",
    [
        ({"WORLD_SIZE": "2"}, "cpu", 16, {}, ["RANK", "MASTER_ADDR", "torchrun --nproc_per_node"]),
        ({"WORLD_SIZE": "two"}, "cpu", 16, {}, ["WORLD_SIZE", "whole number"]),
        ({**_torchrun_env(), "RANK": "5"}, "cpu", 16, {}, ["RANK=5"]),
        (_torchrun_env(world=3), "cpu", 16, {}, ["--batch-size 16", "3 processes", "multiple of 3"]),
        (_torchrun_env(), "cuda", 16, {"cuda_count": 1}, ["2 processes", "1 CUDA GPU", "--nproc_per_node 1"]),
        (_torchrun_env(), "cuda", 16, {"cuda_count": 0}, ["0 CUDA GPU", "--device cpu"]),
        (_torchrun_env(), "cuda:1", 16, {"cuda_count": 2}, ["names one GPU", "--device cuda"]),
        (_torchrun_env(), "mps", 16, {"cuda_count": 0}, ["cuda or cpu"]),
        (_torchrun_env(), "cpu", 16, {"backend": "nccl", "cuda_count": 0}, ["nccl", "gloo"]),
        (_torchrun_env(), "cpu", 16, {"sync_bn": True, "cuda_count": 0}, ["--sync-bn needs CUDA"]),
        ({}, "cpu", 16, {"sync_bn": True}, ["--sync-bn", "torchrun"]),
        ({}, "cpu", 16, {"backend": "gloo"}, ["--dist-backend", "torchrun"]),
        (_torchrun_env(), "cpu", 16, {"backend": "mpi"}, ["--dist-backend must be"]),
    ],
)
def test_wrong_launches_are_one_clear_line(env, device, batch, options, words) -> None:
    with pytest.raises(ConfigError) as err:
        plan_launch(env, device, batch, **options)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


# --------------------------------------------------------------------------------------------
# Two real gloo processes: the collectives and DDP's gradient
# --------------------------------------------------------------------------------------------


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(_torchrun_env(rank, world, port=port))
    torch.manual_seed(0)
    x, y = torch.randn(11, 4, dtype=torch.float64), torch.randn(11, 1, dtype=torch.float64)
    with launch("cpu", 12) as ctx:  # global batch 12 divides over 2 ranks; this step is an uneven tail of 11
        total = ctx.all_reduce_sum(torch.tensor([float(rank + 1), 1.0]))
        model = torch.nn.Linear(4, 1).double()
        ddp = ctx.wrap(model)
        xs, ys = ctx.shard(x), ctx.shard(y)
        loss = torch.nn.functional.mse_loss(ddp(xs), ys) * ctx.loss_weight(len(xs), len(x))
        loss.backward()
        choice = ctx.broadcast_object(f"rank{rank}")
        if ctx.is_main:
            torch.save(
                {
                    "total": total,
                    "grad": [p.grad for p in model.parameters()],
                    "choice": choice,
                    "world": ctx.world_size,
                },
                out,
            )


@pytest.mark.slow  # two gloo processes training (>10 s on 2 cores)
def test_two_gloo_processes_sum_losses_and_average_gradients_like_one_process(tmp_path: Path) -> None:
    out = tmp_path / "rank0.pt"
    mp.spawn(_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    got = torch.load(out)
    assert got["world"] == 2 and got["choice"] == "rank0"
    assert got["total"].tolist() == [3.0, 2.0]
    torch.manual_seed(0)
    x, y = torch.randn(11, 4, dtype=torch.float64), torch.randn(11, 1, dtype=torch.float64)
    model = torch.nn.Linear(4, 1).double()
    torch.nn.functional.mse_loss(model(x), y).backward()
    for mine, ref in zip(got["grad"], model.parameters()):
        assert torch.allclose(mine, ref.grad, rtol=1e-12, atol=1e-12)
