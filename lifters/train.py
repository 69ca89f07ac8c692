"""Train a lifter on cached cue shards, streaming windows from disk.

Optimisation follows VideoPose3D / SimpleBaseline: Adam-style updates (here fused AdamW, decoupled
weight decay), learning rate 1e-3 multiplied by `lr_decay` (0.95) after every epoch, MPJPE loss
on root-relative 3D in metres, left/right flip augmentation. Gradient-norm clipping guards the
first steps of the transformer lifters.

Outputs under `out/`: `last.pt` (after every epoch), `best.pt` (lowest validation MPJPE, or
lowest training loss without a validation set), `config.yaml`, `history.json`.
Resuming (`resume=last.pt`) continues at the next epoch with the saved weights, optimiser,
scheduler and RNG state, and gives the same weights as an uninterrupted run on CPU. A run cut
short inside an epoch (`max_steps`) resumes at the step where it stopped: the epoch's batches
already trained on are read again in the same order and skipped. Temporaries of checkpoints
whose writer died (`.last.pt.<pid>.tmp`) are deleted at the start, and logged.

Device, mixed precision and data-parallel ranks (under `torchrun`) are `lifters.distributed`'s:
`device: auto` trains on CUDA when present; rank 0 alone writes the outputs above; a checkpoint
resumes under any number of processes.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from auglift.cache.temps import stray_pid_temps

from .checkpoint import build_from_checkpoint, check_resumable, load_checkpoint, model_record, save_checkpoint
from .config import TrainConfig, config_from_dict, config_to_dict, save_config
from .data import WindowDataset, WindowSpec
from .shards import ShardInfo, check_depth_inputs, fit_codec, resolve_shards
from .distributed import Runtime, shard_split_steps, unwrap
from .evaluate import score
from .metrics import mpjpe_loss
from .models import build_model
from .predict import predict
from .read_ahead import read_ahead


@dataclass
class TrainResult:
    out: Path
    last: Path
    best: Path
    history: list[dict[str, Any]] = field(default_factory=list)


def shard_summary(infos: list[ShardInfo]) -> dict[str, Any]:
    """What a checkpoint records about its training shards (for provenance and eval checks)."""
    return {"count": len(infos), "frames": int(sum(i.n_frames for i in infos)),
            "keys": [i.key for i in infos],
            "config_hashes": sorted({i.config_hash for i in infos}),
            "depth_kinds": sorted({i.depth_kind for i in infos}),
            "skeletons": sorted({i.skeleton for i in infos}),
            "datasets": sorted({i.dataset for i in infos}),
            "subjects": sorted({i.subject for i in infos})}


def _validate(model, codec, infos, cfg: TrainConfig, device) -> float:
    res = score(predict(model, codec, infos, cfg.eval_batch_size, str(device)))
    model.train()
    return float(res["mpjpe"])


@dataclass
class _Progress:
    """Where a run stands: what a checkpoint restores and the epoch loop advances."""

    best: dict[str, Any]
    start_epoch: int = 0
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    skip: int = 0                      # batches of a cut epoch already trained on
    cut_loss: float = 0.0              # their summed loss
    resume_rng: torch.Tensor | None = None
    stop_at: float | None = None       # wall-clock end of a `budget_s` sitting


def _resumed_config(cfg: TrainConfig, ckpt: dict, resume) -> TrainConfig:
    """The saved run's config: a resumed run keeps its data/model/codec; only the schedule length,
    output, device, precision and loader settings may change."""
    saved = config_from_dict(ckpt["config"], where=f"{resume}: config")
    saved.optim.epochs, saved.out, saved.device = cfg.optim.epochs, cfg.out, cfg.device
    saved.num_threads, saved.data.num_workers, saved.data.memo_mb = cfg.num_threads, cfg.data.num_workers, cfg.data.memo_mb
    saved.optim.max_steps = cfg.optim.max_steps
    d_run = cfg.data
    saved.precision, saved.data.ddp_split, saved.data.prefetch = cfg.precision, d_run.ddp_split, d_run.prefetch
    return saved


def _restore(ckpt: dict | None, optimizer, scheduler, rt: Runtime, best_metric: str) -> _Progress:
    """A fresh run's progress, or a checkpoint's with optimiser, scheduler, scaler and RNG state."""
    progress = _Progress(best={"metric": best_metric, "value": math.inf, "epoch": None})
    if ckpt is None:
        return progress
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    progress = _Progress(best=dict(ckpt["best"]), start_epoch=int(ckpt["epochs_done"]), step=int(ckpt["step"]),
                         history=list(ckpt["history"]), skip=int(ckpt.get("epoch_steps", 0)),
                         cut_loss=float(ckpt.get("epoch_loss_sum", 0.0)), resume_rng=ckpt["torch_rng"])
    if progress.skip and progress.history and not progress.history[-1].get("complete", True):
        progress.history.pop()  # the cut epoch's record is replaced when the epoch completes
    # With batches to skip, the RNG state is restored after skipping them: creating the
    # loader's iterator draws from it, as it did before the cut.
    if not progress.skip:
        torch.set_rng_state(progress.resume_rng)
    if ckpt.get("scaler") and rt.scaler.is_enabled():
        rt.scaler.load_state_dict(ckpt["scaler"])
    return progress


def _window_loader(cfg: TrainConfig, model, codec, infos: list[ShardInfo], rt: Runtime):
    """(dataset, DataLoader) of shuffled, flip-augmented training windows for this rank."""
    d = cfg.data
    rank, world = rt.dataset_rank()
    dataset = WindowDataset(infos, codec, WindowSpec.for_model(model, train=True, stride=d.stride), shuffle=True,
                            flip=0.5 if d.flip else 0.0, batch_size=rt.loader_batch(cfg.optim.batch_size),
                            drop_last=True, seed=cfg.seed, shuffle_buffer=d.shuffle_buffer,
                            max_buffer_mb=d.max_buffer_mb, open_shards=d.open_shards, chunk_frames=d.chunk_frames,
                            rank=rank, world_size=world, memo_mb=d.memo_mb)
    # Pinned host memory lets batches copy to the GPU asynchronously (non_blocking below); workers
    # keep `prefetch` batches each in flight so the GPU is not waiting on shard reads.
    extra = {"prefetch_factor": d.prefetch} if d.num_workers else {}
    loader = DataLoader(dataset, batch_size=None, num_workers=d.num_workers,
                        pin_memory=rt.device.type == "cuda", **extra)
    return dataset, loader


def _epoch_batches(loader: DataLoader, cfg: TrainConfig, device: torch.device):
    """A context giving one epoch's batches: read ahead by a thread when the training process
    loads them itself (`num_workers: 0`), else the loader's worker processes already do."""
    if cfg.data.num_workers:
        return contextlib.nullcontext(loader)
    setup = (lambda: torch.cuda.set_device(device)) if device.type == "cuda" else None
    return read_ahead(loader, cfg.data.prefetch, setup)


def _steps_per_epoch(dataset, cfg: TrainConfig, rt: Runtime) -> int:
    _, world = rt.dataset_rank()
    if world > 1:
        return shard_split_steps(dataset, world, cfg.data.num_workers, rt.loader_batch(cfg.optim.batch_size))
    return dataset.num_windows() // cfg.optim.batch_size


def _prepare_out(out: Path, cfg: TrainConfig, rt: Runtime, log) -> None:
    """Make the run directory; rank 0 deletes dead writers' temporaries and writes config.yaml."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: --out must be a directory (a run directory), but it is a file")
    out.mkdir(parents=True, exist_ok=True)
    if not rt.is_main:
        return
    for tmp in stray_pid_temps(out):
        try:
            tmp.unlink()
            log(f"deleted {tmp}, a checkpoint temporary of an interrupted run")
        except OSError as e:
            log(f"warning: cannot delete {tmp}, a checkpoint temporary of an interrupted run: {e.strerror}")
    save_config(cfg, out / "config.yaml")


def _train_epoch(net, model, optimizer, batches, rt: Runtime, cfg: TrainConfig, pr: _Progress,
                 steps_per_epoch: int, budget_s: float | None, bar) -> tuple[float, int, bool]:
    """One epoch's steps: (summed loss, batches, whether max_steps or the budget stopped it)."""
    device, loss_sum, n_batches, recent = rt.device, pr.cut_loss, pr.skip, 0.0
    pr.cut_loss = 0.0
    for batch in batches:
        if pr.skip:  # resuming a cut epoch: these batches were trained on before the cut
            pr.skip -= 1
            if not pr.skip:
                torch.set_rng_state(pr.resume_rng)
            continue
        if pr.stop_at is None and budget_s is not None:
            pr.stop_at = time.time() + budget_s
        batch, factor = rt.local(batch)
        inputs = batch["inputs"].to(device, non_blocking=True)
        target = batch["target"].to(device, non_blocking=True)
        with rt.autocast():
            pred = net(inputs)
        loss = mpjpe_loss(pred.float(), target, batch["valid"].to(device)) * factor
        optimizer.zero_grad(set_to_none=True)
        rt.step(loss, model, optimizer, cfg.optim.grad_clip)
        pr.step += 1
        value = rt.mean(float(loss.detach()))
        loss_sum += value
        recent = value if n_batches == 0 else 0.95 * recent + 0.05 * value
        n_batches += 1
        if bar is not None and n_batches % 20 == 0:
            bar.set_postfix(loss_mm=f"{1000 * recent:.1f}")  # smoothed over the last ~20 steps
        max_steps = cfg.optim.max_steps
        if (max_steps is not None and pr.step >= max_steps) or (pr.stop_at is not None and time.time() >= pr.stop_at):
            return loss_sum, n_batches, True
        if n_batches == steps_per_epoch:  # "shards" split: the smallest rank's batches are done
            break
    return loss_sum, n_batches, False


def _save_epoch(out: Path, payload: dict, improved: bool, history: list, rt: Runtime) -> None:
    if not rt.is_main:
        return
    best_path = out / "best.pt"
    # best before last: a run killed between the two redoes this epoch and rewrites best.pt
    # the same, while the other order could leave a best.pt older than last.pt's record.
    if improved or not best_path.exists():
        save_checkpoint(payload, best_path)
    save_checkpoint(payload, out / "last.pt")
    (out / "history.json").write_text(json.dumps(history, indent=1))


@dataclass
class _Run:
    """What every epoch's end needs: the trained objects and the checkpoint's fixed part."""

    cfg: TrainConfig
    rt: Runtime
    model: torch.nn.Module
    codec: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    val_infos: list[ShardInfo]
    base: dict[str, Any]


def _end_epoch(epoch: int, stop: bool, loss_sum: float, n_batches: int, steps_per_epoch: int, t0: float,
               run: _Run, pr: _Progress, log) -> None:
    """Record the epoch, validate, keep the best, write the checkpoints (rank 0)."""
    model, optimizer, scheduler, rt, cfg = run.model, run.optimizer, run.scheduler, run.rt, run.cfg
    done = not stop or n_batches == steps_per_epoch
    record = {"epoch": epoch + 1, "step": pr.step, "lr": optimizer.param_groups[0]["lr"],
              "train_loss_mm": 1000.0 * loss_sum / n_batches, "seconds": round(time.time() - t0, 1),
              "complete": done}
    if done:
        scheduler.step()
    if rt.is_main and run.val_infos and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.optim.epochs or stop):
        record["val_mpjpe_mm"] = _validate(model, run.codec, run.val_infos, cfg, rt.device)
    pr.history.append(record)
    value = record.get(pr.best["metric"])
    improved = value is not None and value < pr.best["value"]
    if improved:
        pr.best = {"metric": pr.best["metric"], "value": float(value), "epoch": epoch + 1}
    payload = {**run.base, "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
               "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
               "epochs_done": epoch + 1 if done else epoch, "step": pr.step, "history": pr.history,
               "best": pr.best, "epoch_steps": 0 if done else n_batches,
               "epoch_loss_sum": 0.0 if done else loss_sum}
    if rt.scaler.is_enabled():
        payload["scaler"] = rt.scaler.state_dict()
    _save_epoch(Path(cfg.out), payload, improved, pr.history, rt)
    log("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))


def _build(cfg: TrainConfig, ckpt: dict | None, device):
    """(model, codec, training shards, validation shards), seeded by `cfg.seed`."""
    if cfg.num_threads:
        # On a shared CPU, fewer intra-op threads than cores avoids OpenMP spin-waiting (on a
        # loaded 2-core machine 1 thread ran SimpleBaseline ~6x faster than 2).
        torch.set_num_threads(cfg.num_threads)
    if not cfg.data.train:
        raise ValueError("no training data: set data.train (--train) to a cache root, shard or glob")
    torch.manual_seed(cfg.seed)
    d = cfg.data
    train_infos = resolve_shards(d.train, d.train_subjects, d.datasets, d.pattern)
    val_infos = resolve_shards(d.val, d.val_subjects, d.datasets, d.pattern) if d.val else []
    check_depth_inputs(train_infos + val_infos, cfg.codec.channels)
    if ckpt is not None:
        model, codec = build_from_checkpoint(ckpt, device)
        model.train()
    else:
        codec = fit_codec(train_infos, cfg.codec)
        model = build_model(cfg.model.name, codec.in_channels, train_infos[0].num_keypoints, cfg.model.preset,
                            **cfg.model.overrides).to(device)
    return model, codec, train_infos, val_infos


def _adamw(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW as `cfg.optim` says, fused into one kernel per step on CPU and CUDA: torch's default
    per-parameter loop is a visible share of a small lifter's step (results/benchmarks.md,
    bench_train). A resumed checkpoint keeps the kind it was saved with (the optimiser's saved
    settings win when it is loaded)."""
    o = cfg.optim
    return torch.optim.AdamW(model.parameters(), lr=o.lr, weight_decay=o.weight_decay,
                             fused=True if device.type in ("cpu", "cuda") else None)


def train(cfg: TrainConfig, resume: str | Path | None = None, progress: bool = True,
          log: Callable[[str], None] = print, budget_s: float | None = None) -> TrainResult:
    """Train as `cfg` says (see the module docstring); returns where the checkpoints went.

    `budget_s`: seconds of training, counted from the first training step (after the data are
    set up); when they are spent the run stops at the next step as `max_steps` would stop it
    (checkpointed, resumable): training in sittings of a fixed length."""
    rt = Runtime.start(cfg.device, cfg.precision, cfg.data.ddp_split)
    ckpt = None
    if resume is not None:
        ckpt = load_checkpoint(resume)
        check_resumable(ckpt, resume)
        cfg = _resumed_config(cfg, ckpt, resume)
    model, codec, train_infos, val_infos = _build(cfg, ckpt, rt.device)
    net = rt.wrap(model)   # what trains (DDP when distributed); `model` is what is saved
    model = unwrap(net)
    o = cfg.optim
    optimizer = _adamw(model, cfg, rt.device)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=o.lr_decay)
    pr = _restore(ckpt, optimizer, scheduler, rt, "val_mpjpe_mm" if val_infos else "train_loss_mm")
    if rt.rank:  # dropout masks differ per rank; rank 0 keeps the one-process random stream
        torch.manual_seed(cfg.seed * 1009 + rt.rank)
    dataset, loader = _window_loader(cfg, model, codec, train_infos, rt)
    steps_per_epoch = _steps_per_epoch(dataset, cfg, rt)
    out = Path(cfg.out)
    log = log if rt.is_main else _silent
    _prepare_out(out, cfg, rt, log)
    run = _Run(cfg, rt, model, codec, optimizer, scheduler, val_infos,
               {"config": config_to_dict(cfg), "model": model_record(model, cfg.model.name, cfg.model.preset),
                "codec": codec.state_dict(), "train_shards": shard_summary(train_infos)})
    log(f"training {cfg.model.name} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, "
        f"channels {codec.config.channels}) on {len(train_infos)} shards / {dataset.num_windows()} windows, "
        f"{steps_per_epoch} steps per epoch, device {rt.device}, {cfg.precision}"
        + (f", {rt.world_size} processes ({rt.split} split)" if rt.distributed else ""))
    for epoch in range(pr.start_epoch, o.epochs):
        dataset.set_epoch(epoch)
        steps_per_epoch = _steps_per_epoch(dataset, cfg, rt)
        net.train()
        t0, bar = time.time(), None
        with _epoch_batches(loader, cfg, rt.device) as batches:
            if progress:
                bar = tqdm(batches, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{o.epochs}", leave=False,
                           disable=not rt.is_main)
            loss_sum, n_batches, stop = _train_epoch(net, model, optimizer, bar if bar is not None else batches, rt,
                                                     cfg, pr, steps_per_epoch, budget_s, bar)
        if n_batches == 0:
            raise RuntimeError(f"epoch {epoch}: no training batch (fewer windows than batch size {o.batch_size}?)")
        _end_epoch(epoch, stop, loss_sum, n_batches, steps_per_epoch, t0, run, pr, log)
        if stop:
            break
    rt.barrier()   # no rank returns (and reads the checkpoint) before rank 0 has written it
    rt.close()
    return TrainResult(out, out / "last.pt", out / "best.pt", pr.history)


def _silent(_: str) -> None:
    """The log of ranks other than 0."""
