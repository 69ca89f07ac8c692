"""`auglift train`: train a lifter on cached cue shards (also under torchrun)."""
from __future__ import annotations

from pathlib import Path

import click

from auglift.commands.common import one_line
from auglift.lifters.config import TrainConfig, apply_overrides
from auglift.lifters.config import load_config as load_train_config
from auglift.lifters.train import train


@click.command("train")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML TrainConfig (see lifters/configs/); the options below override it.")
@click.option("--model", help="Lifter: simple_baseline, videopose3d, poseformer, motionbert.")
@click.option("--preset", help="Model size preset (see lifters/models/__init__.py).")
@click.option("--channels", type=click.Choice(["xy", "xyc", "xycd", "xyo", "xyd"]), help="Cue channel set.")
@click.option("--train", "train_specs", multiple=True, help="Cache root, shard or glob (repeatable).")
@click.option("--train-subjects", help="Comma-separated subjects to train on, e.g. S1,S5,S6,S7,S8.")
@click.option("--val", "val_specs", multiple=True, help="Validation cache root, shard or glob (repeatable).")
@click.option("--val-subjects", help="Comma-separated validation subjects.")
@click.option("--out", help="Run directory for checkpoints (last.pt, best.pt) and history.")
@click.option("--epochs", type=click.IntRange(min=1))
@click.option("--batch-size", type=click.IntRange(min=2))
@click.option("--lr", type=float)
@click.option("--lr-decay", type=float, help="Learning-rate factor applied after every epoch.")
@click.option("--seed", type=int)
@click.option("--device", help="auto (default: CUDA when present), cpu, cuda or cuda:N (cuda = cuda:LOCAL_RANK "
                                "under torchrun).")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]),
              help="Mixed precision (autocast; fp16 with loss scaling). Default fp32.")
@click.option("--ddp-split", type=click.Choice(["batch", "shards"]),
              help="Under torchrun: every rank slices the same global batch (exact, default) or reads its own shards.")
@click.option("--threads", type=click.IntRange(min=1), help="Torch CPU threads (1 is fastest on a busy CPU).")
@click.option("--num-workers", type=click.IntRange(min=0), help="DataLoader worker processes.")
@click.option("--stride", type=click.IntRange(min=1), help="Frames between training windows.")
@click.option("--flip/--no-flip", default=None, help="Left/right flip augmentation.")
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop after this many optimiser steps.")
@click.option("--resume", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Continue from a checkpoint (last.pt) at its next epoch.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train_cmd(config_path, model, preset, channels, train_specs, train_subjects, val_specs, val_subjects, out,
              epochs, batch_size, lr, lr_decay, seed, device, precision, ddp_split, threads, num_workers, stride, flip,
              max_steps, resume, quiet) -> None:
    """Train a lifter on cached cue shards (streamed), writing checkpoints under --out.

    Data-parallel: `torchrun --nproc_per_node N -m auglift.cli train ...` (pipeline/CLUSTER.md)."""
    try:
        cfg = load_train_config(config_path) if config_path else TrainConfig()
        cfg = apply_overrides(cfg, model=model, preset=preset, channels=channels, train=list(train_specs),
                              train_subjects=train_subjects, val=list(val_specs), val_subjects=val_subjects,
                              out=out, epochs=epochs, batch_size=batch_size, lr=lr, lr_decay=lr_decay, seed=seed,
                              device=device, num_threads=threads, num_workers=num_workers, stride=stride,
                              flip=flip, max_steps=max_steps, precision=precision, ddp_split=ddp_split)
        result = train(cfg, resume=resume, progress=not quiet, log=click.echo)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        raise click.ClickException(one_line(e)) from None
    click.echo(f"checkpoints: {result.last} {result.best}")
