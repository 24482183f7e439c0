"""One training run across several processes with PyTorch's DistributedDataParallel (`torchrun`).

    torchrun --nproc_per_node N -m mfjle_lib train --model mfjle ... --device cuda

starts N copies of the CLI; `torchrun` gives each one RANK, LOCAL_RANK, WORLD_SIZE,
LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT. This module turns those variables into a
`DistContext` (rank, world size, backend, the rank's device) and holds everything the trainer does
differently with several processes:

- **Same permutation, each rank its part.** Every rank draws the epoch's permutation from the same
  seeded generator, so every rank holds the same global batches; rank r takes the r-th contiguous
  part of each global batch (`DistContext.shard`). `--batch-size` stays the *global* batch: each of
  the N ranks trains on batch/N images a step, and the learning-rate recipe is unchanged.
- **The same gradient as one process.** DDP averages gradients over ranks; each rank's mean loss is
  weighted by n_rank·N/n_global (`DistContext.loss_weight`), so the average is the gradient of the
  mean loss over the global batch even when the last batch does not split evenly. A last global
  batch with fewer images than ranks is dropped (`usable_length`: at most N-1 images an epoch) —
  every rank must take part in every step.
- **One sync per epoch for the losses**: the summed per-sample losses and their count are
  all-reduced once (`DistContext.all_reduce_sum`), so history.csv holds the global epoch mean.
- **Rank 0 writes**: checkpoints, last.pt, history.csv, metrics.json, outputs and progress lines
  come from rank 0 only; it also runs validation and the final test pass (the other ranks wait).
- **BatchNorm**: without `--sync-bn` each rank normalises with the statistics of its own part of
  the batch (DDP copies rank 0's running statistics to every rank at each forward); with
  `--sync-bn` the statistics are those of the whole global batch (`SyncBatchNorm`, CUDA only).
- **Backend**: nccl on CUDA (rank r on `cuda:LOCAL_RANK`), gloo on the CPU.

Without WORLD_SIZE in the environment nothing here changes a run (`single()`); launch mistakes are
reported as one `ConfigError` line before any process group is created (`plan_launch`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from ..errors import ConfigError

#: Variables `torchrun` sets for every process (LOCAL_WORLD_SIZE too, read when present).
RENDEZVOUS_VARS = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
#: Communication backends; "auto" is nccl for CUDA, gloo for the CPU.
BACKENDS = ("auto", "gloo", "nccl")
#: How long a rank waits for the others (rank 0 validates and tests alone while they wait).
TIMEOUT = timedelta(minutes=60)
_HOW = "launch one run on N processes with `torchrun --nproc_per_node N -m mfjle_lib train ...`"


@dataclass(frozen=True)
class LaunchPlan:
    """What the environment and the options ask for, checked: one process or N under torchrun."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    backend: str | None = None  # None: no process group (one process)
    device: str | None = None  # the rank's device ("cuda:LOCAL_RANK", "cpu"); None: as --device says
    sync_bn: bool = False


def _int_var(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise ConfigError(f"{name}={env[name]!r} in the environment is not a whole number; {_HOW}") from None


def plan_launch(
    env: Mapping[str, str],
    device: str | None,
    batch_size: int,
    sync_bn: bool = False,
    backend: str = "auto",
    cuda_count: int | None = None,
) -> LaunchPlan:
    """Check a launch before any process group exists; every mistake is one ConfigError line.

    `env` is the process environment (torchrun's variables), `device` the --device option,
    `batch_size` the global batch, `cuda_count` the visible CUDA GPUs (asked of torch when None).
    """
    backend = backend or "auto"
    if backend not in BACKENDS:
        raise ConfigError(f"--dist-backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if "WORLD_SIZE" not in env:
        if sync_bn:
            raise ConfigError(f"--sync-bn only applies to a run on several processes; {_HOW}")
        if backend != "auto":
            raise ConfigError(f"--dist-backend only applies to a run on several processes; {_HOW}")
        return LaunchPlan()
    world = _int_var(env, "WORLD_SIZE")
    if world < 1:
        raise ConfigError(f"WORLD_SIZE={world} in the environment: it must be at least 1; {_HOW}")
    missing = [name for name in RENDEZVOUS_VARS if name not in env]
    if missing and world > 1:
        raise ConfigError(
            f"WORLD_SIZE={world} is set but {', '.join(missing)} not: {_HOW} (or unset WORLD_SIZE for one process)"
        )
    rank = _int_var(env, "RANK") if "RANK" in env else 0
    local_rank = _int_var(env, "LOCAL_RANK") if "LOCAL_RANK" in env else 0
    local_world = _int_var(env, "LOCAL_WORLD_SIZE") if "LOCAL_WORLD_SIZE" in env else world
    if not (0 <= rank < world and 0 <= local_rank < max(local_world, 1)):
        raise ConfigError(
            f"RANK={rank}, LOCAL_RANK={local_rank} do not fit WORLD_SIZE={world}, LOCAL_WORLD_SIZE={local_world}; "
            f"{_HOW}"
        )
    if batch_size % world:
        raise ConfigError(
            f"--batch-size {batch_size} is the global batch and must divide evenly over the {world} processes (each "
            f"takes batch/{world}); use a multiple of {world}"
        )
    if world == 1:  # `torchrun --nproc_per_node 1`: an ordinary run
        if sync_bn or backend != "auto":
            raise ConfigError(
                f"--sync-bn and --dist-backend only apply to a run on several processes (WORLD_SIZE is 1); {_HOW} "
                "with N > 1"
            )
        return LaunchPlan()
    if cuda_count is None:
        cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    name = device if device not in (None, "", "auto") else ("cuda" if cuda_count else "cpu")
    kind, _, index = name.partition(":")
    if kind == "cuda":
        if index:
            raise ConfigError(
                f"--device {name} names one GPU, but each of the {world} processes needs its own: pass --device cuda "
                "(rank r uses cuda:LOCAL_RANK), and CUDA_VISIBLE_DEVICES to choose the GPUs"
            )
        if local_world > cuda_count:
            raise ConfigError(
                f"{local_world} processes on this machine but {cuda_count} CUDA GPU(s) visible: use --nproc_per_node "
                f"{cuda_count} or fewer" + (", or --device cpu" if cuda_count else " (or --device cpu)")
            )
        rank_device = f"cuda:{local_rank}"
    elif kind == "cpu":
        rank_device = "cpu"
    else:
        raise ConfigError(f"--device {name}: a run on several processes needs cuda or cpu")
    chosen = backend if backend != "auto" else ("nccl" if kind == "cuda" else "gloo")
    if chosen == "nccl" and kind != "cuda":
        raise ConfigError(
            "the nccl backend needs CUDA GPUs; on the CPU use gloo (--dist-backend gloo, the default there)"
        )
    if chosen == "nccl" and not torch.distributed.is_nccl_available():
        raise ConfigError("this PyTorch build has no nccl backend: use --dist-backend gloo")
    if chosen == "gloo" and not torch.distributed.is_gloo_available():
        raise ConfigError("this PyTorch build has no gloo backend: use --dist-backend nccl on CUDA")
    if sync_bn and kind != "cuda":
        raise ConfigError(
            "--sync-bn needs CUDA (PyTorch's SyncBatchNorm runs on GPUs only); on the CPU each process normalises "
            "its own part of the batch"
        )
    return LaunchPlan(rank, local_rank, world, local_world, chosen, rank_device, sync_bn)


def part_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """[start, stop) of rank's contiguous part of n items; the first n % world_size parts get one more."""
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def usable_length(n: int, batch_size: int, world_size: int = 1) -> int:
    """Images of an epoch that form steps every rank takes part in with at least two images.

    A last global batch that cannot give every rank two images is dropped: BatchNorm in training
    mode needs more than one value per channel, and a one-image batch on a 1×1 last feature map
    (a 32-px crop) has one (JAFFE's subject split, seed 2: 97 training faces at batch 32).
    """
    tail = n % batch_size
    return n - tail if 0 < tail < 2 * world_size else n


@dataclass(frozen=True)
class DistContext:
    """This process's place in the run: rank, world size, backend, device (world_size 1: a plain run)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    device: str | None = None
    sync_bn: bool = False

    @property
    def active(self) -> bool:
        """True with several processes (a process group exists)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and prints progress."""
        return self.rank == 0

    def shard(self, indices: Any) -> Any:
        """This rank's contiguous part of a global batch (or of any sequence / tensor of indices)."""
        if not self.active:
            return indices
        start, stop = part_bounds(len(indices), self.rank, self.world_size)
        return indices[start:stop]

    def rows(self, n_global: int) -> tuple[int, int, int] | None:
        """(start, stop, n_global): where this rank's part sits in a global batch (None: one process)."""
        if not self.active:
            return None
        return (*part_bounds(n_global, self.rank, self.world_size), n_global)

    def usable(self, n: int, batch_size: int) -> int:
        """How many images of a permutation of n make up the epoch (see `usable_length`)."""
        return usable_length(n, batch_size, self.world_size if self.active else 1)

    def loss_weight(self, n_local: int, n_global: int) -> float:
        """Factor on this rank's mean loss so that DDP's average of gradients is the global-batch mean's."""
        return n_local * self.world_size / n_global if self.active else 1.0

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum `tensor` over ranks in place (one collective); unchanged with one process."""
        if self.active:
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
        return tensor

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's value of a picklable object, on every rank (e.g. a timing-based choice)."""
        if not self.active:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        """Wait for every rank (nothing with one process)."""
        if self.active:
            if self.backend == "nccl":
                torch.distributed.barrier(device_ids=[self.local_rank])
            else:
                torch.distributed.barrier()

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module to train with: DDP around `model` (SyncBatchNorm first with --sync-bn); `model` itself with one
        process.

        SyncBatchNorm conversion replaces `model`'s BatchNorm children in place and keeps the same parameter
        and buffer tensors, so an optimiser built on `model` and its state-dict keys stay valid.
        Call it after the model is final (resume loaded, local-net form set): DDP registers the
        parameters it finds now.
        """
        if not self.active:
            return model
        if self.sync_bn:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # the same root, children replaced

        ids = [self.local_rank] if self.device and self.device.startswith("cuda") else None
        return DistributedDataParallel(
            model, device_ids=ids, output_device=ids[0] if ids else None, broadcast_buffers=True
        )


def single() -> DistContext:
    """The context of an ordinary one-process run."""
    return DistContext()


def current() -> DistContext:
    """The context of a process group someone already created (else `single()`)."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return single()
    backend = dist.get_backend()
    local = int(os.environ.get("LOCAL_RANK", 0))
    device = f"cuda:{local}" if backend == "nccl" else None
    return DistContext(dist.get_rank(), dist.get_world_size(), local, backend, device)


def init_distributed(plan: LaunchPlan) -> DistContext:
    """Create the process group a checked plan describes (env:// rendezvous from torchrun's variables)."""
    if plan.world_size == 1:
        return single()
    if plan.device and plan.device.startswith("cuda"):
        torch.cuda.set_device(plan.local_rank)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(
            plan.backend, init_method="env://", rank=plan.rank, world_size=plan.world_size, timeout=TIMEOUT
        )
    return DistContext(plan.rank, plan.world_size, plan.local_rank, plan.backend, plan.device, plan.sync_bn)


def cleanup(ctx: DistContext, ok: bool = True) -> None:
    """Wait for every rank (after a clean run only: a failed rank never arrives), then end the process group."""
    if not ctx.active or not torch.distributed.is_initialized():
        return
    try:
        if ok:
            ctx.barrier()
    finally:
        torch.distributed.destroy_process_group()


@contextmanager
def launch(
    device: str | None,
    batch_size: int,
    sync_bn: bool = False,
    backend: str = "auto",
    env: Mapping[str, str] | None = None,
) -> Iterator[DistContext]:
    """`with launch(...) as ctx:` — checked plan, process group for the block, clean end."""
    plan = plan_launch(os.environ if env is None else env, device, batch_size, sync_bn, backend)
    ctx = init_distributed(plan)
    ok = False
    try:
        yield ctx
        ok = True
    finally:
        cleanup(ctx, ok)
