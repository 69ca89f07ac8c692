"""Where and how a training run computes: device, mixed precision and data-parallel ranks.

`Runtime.start(device, precision, split)` reads the `torchrun` environment (RANK, WORLD_SIZE,
LOCAL_RANK). With WORLD_SIZE > 1 it joins the process group (NCCL on CUDA, gloo on the CPU) and
the model is wrapped in DistributedDataParallel; with one process nothing changes.

Two ways to split the data across ranks (`data.ddp_split`):

- "batch" (default): every rank streams the same global batches (the dataset is built as for
  one process, same seed) and trains on the strided slice `rank::world_size` of each. The loss
  is normalised by the *global* number of valid target frames, which every rank can count
  because it holds the whole batch, and BatchNorm statistics are all-reduced across ranks
  (SyncBatchNorm on CUDA, `GlobalBatchNorm` below on the CPU), so N processes compute the
  gradient of exactly the one-process loss: the same weights up to float rounding, and a
  checkpoint resumes under any world size. Each rank reads and encodes every window, which
  costs CPU, not GPU time; the right choice while the data pipeline keeps up.
- "shards": the dataset's own rank split; each rank reads only its shards, with batch
  `batch_size // world_size`, and every rank stops after the smallest rank's number of full
  batches (so no rank waits forever in an all-reduce). Statistically, not exactly, the
  one-process run.

Dropout masks are drawn per rank, so runs with dropout are not bit-comparable across world
sizes (they never are on GPUs). Checkpoints, config and history are written by rank 0 only.
"""
from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .config import DDP_SPLITS, PRECISIONS

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto`: this rank's CUDA device when CUDA is present, else the CPU. `cuda` under torchrun
    means `cuda:LOCAL_RANK`."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available; use --device cpu or auto")
    if name == "cuda":
        name = f"cuda:{local_rank}"
    return torch.device(name)


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics cover the batch of every rank (gloo or NCCL).

    torch's SyncBatchNorm refuses CPU tensors; this one all-reduces (differentiably) the sums it
    needs: first the per-channel sum and count, then the centred sum of squares (two passes, as
    accurate as BatchNorm's own). Same parameters and buffers as BatchNorm, so checkpoints load
    into the plain model. Outside training or without a process group it is plain BatchNorm.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {x.dim()}D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        shape = [1, c] + [1] * (x.dim() - 2)
        count = x.new_full((1,), float(x.numel() // c))
        sums = all_reduce(torch.cat([x.sum(dims), count]))
        n = sums[c]
        mean = sums[:c] / n
        centred = x - mean.view(shape)
        var = all_reduce((centred * centred).sum(dims)) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1).clamp_min(1)), alpha=m)
        y = centred * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm of `module` made cross-rank: SyncBatchNorm on CUDA, GlobalBatchNorm on CPU."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        out = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats).to(device)
        out.load_state_dict(module.state_dict())
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, sync_batchnorm(child, device))
    return out


@dataclass
class Runtime:
    """One training process's device, precision and place among the ranks."""

    device: torch.device
    precision: str = "fp32"
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    split: str = "batch"
    scaler: Any = None

    @classmethod
    def start(cls, device: str, precision: str = "fp32", split: str = "batch") -> "Runtime":
        """Read the torchrun environment, pick the device, join the process group if WORLD_SIZE > 1."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        if split not in DDP_SPLITS:
            raise ValueError(f"data.ddp_split must be one of {list(DDP_SPLITS)}, got {split!r}")
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
        dev = resolve_device(device, local)
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        if world > 1 and not dist.is_initialized():
            # Rank 0 validates and writes checkpoints while the others wait in their next
            # collective: allow that longer than NCCL's 10-minute default.
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", timeout=datetime.timedelta(hours=2))
        rt = cls(dev, precision, rank if world > 1 else 0, world, local if world > 1 else 0, split)
        # fp16 needs loss scaling (its exponent range underflows small gradients); bf16 does not.
        rt.scaler = torch.amp.GradScaler(dev.type, enabled=precision == "fp16")
        return rt

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, config, history and logs."""
        return self.rank == 0

    def dataset_rank(self) -> tuple[int, int]:
        """(rank, world_size) to build the WindowDataset with (see the module docstring)."""
        return (self.rank, self.world_size) if self.split == "shards" else (0, 1)

    def loader_batch(self, batch_size: int) -> int:
        """Windows per batch the dataset cuts on this rank."""
        return max(2, batch_size // self.world_size) if self.split == "shards" and self.distributed else batch_size

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model as this process trains it (DDP with cross-rank BatchNorm when distributed)."""
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = sync_batchnorm(model, self.device)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(model, device_ids=ids)

    def local(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], float]:
        """(this rank's part of a loaded batch, the loss factor that makes the ranks' mean gradient
        the gradient of the global batch's loss)."""
        if not self.distributed or self.split == "shards":
            return batch, 1.0
        total = float(batch["valid"].sum().clamp_min(1))
        mine = {k: v[self.rank :: self.world_size] for k, v in batch.items()}
        return mine, self.world_size * float(mine["valid"].sum().clamp_min(1)) / total

    def autocast(self):
        """Mixed precision for the forward pass (a no-op context for fp32)."""
        dtype = _DTYPES[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def step(self, loss: torch.Tensor, model: nn.Module, optimizer, grad_clip: float | None) -> None:
        """Backward (loss-scaled for fp16), gradient clipping on true gradients, optimiser step."""
        self.scaler.scale(loss).backward()
        if grad_clip:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        self.scaler.step(optimizer)
        self.scaler.update()

    def mean(self, value: float) -> float:
        """The mean of a per-rank number over the ranks (the global loss, for the history)."""
        if not self.distributed:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t) / self.world_size

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a DDP wrapper."""
    return model.module if hasattr(model, "module") else model


def shard_split_steps(dataset, world_size: int, num_workers: int, batch_size: int) -> int:
    """Full batches the smallest rank gets this epoch under the "shards" split: every rank stops
    there, so none waits in an all-reduce another will never join."""
    steps = []
    workers = max(1, num_workers)
    for r in range(world_size):
        total = 0
        for w in range(workers):
            idx = dataset.split_order(w, workers, rank=r, world_size=world_size)
            total += sum(len(dataset.window.anchors(dataset.shards[i].n_frames)) for i in idx) // batch_size
        steps.append(total)
    return min(steps)
