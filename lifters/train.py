"""Train a lifter on cached cue shards, streaming windows from disk.

Optimisation follows VideoPose3D / SimpleBaseline: Adam-style updates (here AdamW, decoupled
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

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from auglift.cache.store import stray_pid_temps

from .checkpoint import build_from_checkpoint, check_resumable, load_checkpoint, model_record, save_checkpoint
from .config import TrainConfig, config_from_dict, config_to_dict, save_config
from .data import ShardInfo, WindowDataset, WindowSpec, check_depth_inputs, fit_codec, resolve_shards
from .distributed import Runtime, shard_split_steps, unwrap
from .evaluate import score
from .metrics import mpjpe_loss
from .models import build_model
from .predict import predict


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


def train(cfg: TrainConfig, resume: str | Path | None = None, progress: bool = True,
          log: Callable[[str], None] = print, budget_s: float | None = None) -> TrainResult:
    """Train as `cfg` says (see the module docstring); returns where the checkpoints went.

    `budget_s`: seconds of training, counted from the first training step (after the data are
    set up); when they are spent the run stops at the next step as `max_steps` would stop it
    (checkpointed, resumable): training in sittings of a fixed length."""
    rt = Runtime.start(cfg.device, cfg.precision, cfg.data.ddp_split)
    device = rt.device
    out = Path(cfg.out)
    ckpt, d_run = None, cfg.data
    if resume is not None:
        ckpt = load_checkpoint(resume)
        check_resumable(ckpt, resume)
        saved = config_from_dict(ckpt["config"], where=f"{resume}: config")
        # A resumed run keeps its data/model/codec; only the schedule length and output may change.
        saved.optim.epochs, saved.out, saved.device = cfg.optim.epochs, cfg.out, cfg.device
        saved.num_threads, saved.data.num_workers = cfg.num_threads, cfg.data.num_workers
        saved.optim.max_steps = cfg.optim.max_steps
        saved.precision, saved.data.ddp_split, saved.data.prefetch = cfg.precision, d_run.ddp_split, d_run.prefetch
        cfg = saved
    if cfg.num_threads:
        # On a shared CPU, fewer intra-op threads than cores avoids OpenMP spin-waiting (on a
        # loaded 2-core machine 1 thread ran SimpleBaseline ~6x faster than 2).
        torch.set_num_threads(cfg.num_threads)
    if not cfg.data.train:
        raise ValueError("no training data: set data.train (--train) to a cache root, shard or glob")
    torch.manual_seed(cfg.seed)
    d, o = cfg.data, cfg.optim
    train_infos = resolve_shards(d.train, d.train_subjects, d.datasets, d.pattern)
    val_infos = resolve_shards(d.val, d.val_subjects, d.datasets, d.pattern) if d.val else []
    check_depth_inputs(train_infos + val_infos, cfg.codec.channels)
    num_joints = train_infos[0].num_keypoints
    if ckpt is not None:
        model, codec = build_from_checkpoint(ckpt, device)
        model.train()
    else:
        codec = fit_codec(train_infos, cfg.codec)

        model = build_model(cfg.model.name, codec.in_channels, num_joints, cfg.model.preset,
                            **cfg.model.overrides).to(device)
    net = rt.wrap(model)   # what trains (DDP when distributed); `model` is what is saved
    model = unwrap(net)
    optimizer = torch.optim.AdamW(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=o.lr_decay)
    start_epoch, step, history = 0, 0, []
    best = {"metric": "val_mpjpe_mm" if val_infos else "train_loss_mm", "value": math.inf, "epoch": None}
    skip, cut_loss, resume_rng = 0, 0.0, None  # batches of a cut epoch already trained on
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        start_epoch, step = int(ckpt["epochs_done"]), int(ckpt["step"])
        history, best = list(ckpt["history"]), dict(ckpt["best"])
        skip, cut_loss = int(ckpt.get("epoch_steps", 0)), float(ckpt.get("epoch_loss_sum", 0.0))
        if skip and history and not history[-1].get("complete", True):
            history.pop()  # the cut epoch's record is replaced when the epoch completes
        # With batches to skip, the RNG state is restored after skipping them: creating the
        # loader's iterator draws from it, as it did before the cut.
        resume_rng = ckpt["torch_rng"]
        if not skip:
            torch.set_rng_state(resume_rng)
        if ckpt.get("scaler") and rt.scaler.is_enabled():
            rt.scaler.load_state_dict(ckpt["scaler"])
    if rt.rank:  # dropout masks differ per rank; rank 0 keeps the one-process random stream
        torch.manual_seed(cfg.seed * 1009 + rt.rank)
    window = WindowSpec.for_model(model, train=True, stride=d.stride)
    rank, world = rt.dataset_rank()
    local_batch = rt.loader_batch(o.batch_size)
    dataset = WindowDataset(train_infos, codec, window, shuffle=True, flip=0.5 if d.flip else 0.0,
                            batch_size=local_batch, drop_last=True, seed=cfg.seed,
                            shuffle_buffer=d.shuffle_buffer, max_buffer_mb=d.max_buffer_mb,
                            open_shards=d.open_shards, chunk_frames=d.chunk_frames, rank=rank, world_size=world)
    # Pinned host memory lets batches copy to the GPU asynchronously (non_blocking below); workers
    # keep `prefetch` batches each in flight so the GPU is not waiting on shard reads.
    extra = {"prefetch_factor": d.prefetch} if d.num_workers else {}
    loader = DataLoader(dataset, batch_size=None, num_workers=d.num_workers,
                        pin_memory=device.type == "cuda", **extra)
    steps_per_epoch = dataset.num_windows() // o.batch_size
    if world > 1:
        steps_per_epoch = shard_split_steps(dataset, world, d.num_workers, local_batch)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: --out must be a directory (a run directory), but it is a file")
    out.mkdir(parents=True, exist_ok=True)
    if not rt.is_main:
        log = _silent
    else:
        for tmp in stray_pid_temps(out):
            try:
                tmp.unlink()
                log(f"deleted {tmp}, a checkpoint temporary of an interrupted run")
            except OSError as e:
                log(f"warning: cannot delete {tmp}, a checkpoint temporary of an interrupted run: {e.strerror}")
        save_config(cfg, out / "config.yaml")
    base = {"config": config_to_dict(cfg), "model": model_record(model, cfg.model.name, cfg.model.preset),
            "codec": codec.state_dict(), "train_shards": shard_summary(train_infos)}
    log(f"training {cfg.model.name} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, "
        f"channels {codec.config.channels}) on {len(train_infos)} shards / {dataset.num_windows()} windows, "
        f"{steps_per_epoch} steps per epoch, device {device}, {cfg.precision}"
        + (f", {rt.world_size} processes ({rt.split} split)" if rt.distributed else ""))
    last, best_path = out / "last.pt", out / "best.pt"
    stop, stop_at = False, None
    for epoch in range(start_epoch, o.epochs):
        dataset.set_epoch(epoch)
        if world > 1:
            steps_per_epoch = shard_split_steps(dataset, world, d.num_workers, local_batch)
        net.train()
        t0, loss_sum, n_batches, recent = time.time(), cut_loss, skip, 0.0
        cut_loss = 0.0
        bar = loader
        if progress:
            bar = tqdm(loader, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{o.epochs}", leave=False,
                       disable=not rt.is_main)
        for batch in bar:
            if skip:  # resuming a cut epoch: these batches were trained on before the cut
                skip -= 1
                if not skip:
                    torch.set_rng_state(resume_rng)
                continue
            if stop_at is None and budget_s is not None:
                stop_at = time.time() + budget_s
            batch, factor = rt.local(batch)
            inputs = batch["inputs"].to(device, non_blocking=True)
            target = batch["target"].to(device, non_blocking=True)
            with rt.autocast():
                pred = net(inputs)
            loss = mpjpe_loss(pred.float(), target, batch["valid"].to(device)) * factor
            optimizer.zero_grad(set_to_none=True)
            rt.step(loss, model, optimizer, o.grad_clip)
            step += 1
            value = rt.mean(float(loss.detach()))
            loss_sum += value
            recent = value if n_batches == 0 else 0.95 * recent + 0.05 * value
            n_batches += 1
            if progress and n_batches % 20 == 0:
                bar.set_postfix(loss_mm=f"{1000 * recent:.1f}")  # smoothed over the last ~20 steps
            if (o.max_steps is not None and step >= o.max_steps) or (stop_at is not None and time.time() >= stop_at):
                stop = True
                break
            if n_batches == steps_per_epoch:  # "shards" split: the smallest rank's batches are done
                break
        if n_batches == 0:
            raise RuntimeError(f"epoch {epoch}: no training batch (fewer windows than batch size {o.batch_size}?)")
        done = not stop or n_batches == steps_per_epoch
        record = {"epoch": epoch + 1, "step": step, "lr": optimizer.param_groups[0]["lr"],
                  "train_loss_mm": 1000.0 * loss_sum / n_batches, "seconds": round(time.time() - t0, 1),
                  "complete": done}
        if done:
            scheduler.step()
        if rt.is_main and val_infos and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == o.epochs or stop):
            record["val_mpjpe_mm"] = _validate(model, codec, val_infos, cfg, device)
        history.append(record)
        value = record.get(best["metric"])
        improved = value is not None and value < best["value"]
        if improved:
            best = {"metric": best["metric"], "value": float(value), "epoch": epoch + 1}
        payload = {**base, "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
                   "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
                   "epochs_done": epoch + 1 if done else epoch, "step": step, "history": history, "best": best,
                   "epoch_steps": 0 if done else n_batches, "epoch_loss_sum": 0.0 if done else loss_sum}
        if rt.scaler.is_enabled():
            payload["scaler"] = rt.scaler.state_dict()
        if rt.is_main:
            # best before last: a run killed between the two redoes this epoch and rewrites best.pt
            # the same, while the other order could leave a best.pt older than last.pt's record.
            if improved or not best_path.exists():
                save_checkpoint(payload, best_path)
            save_checkpoint(payload, last)
            (out / "history.json").write_text(json.dumps(history, indent=1))
        log("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
        if stop:
            break
    rt.barrier()   # no rank returns (and reads the checkpoint) before rank 0 has written it
    rt.close()
    return TrainResult(out, last, best_path, history)


def _silent(_: str) -> None:
    """The log of ranks other than 0."""
