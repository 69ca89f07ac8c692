"""Lifter checkpoints: plain data only, loaded with `torch.load(weights_only=True)`.

A checkpoint is a dict of plain types (str, int, float, bool, None, lists, tuples, dicts) and
tensors, so loading it never unpickles code. It carries everything needed to use the model on
new shards and to know what it was trained on:

    format, version, auglift_version
    config        the full TrainConfig as nested dicts
    model         {name, preset, in_channels, num_joints, config (the model's dataclass fields),
                   receptive_field, predicts}
    codec         CueCodec.state_dict() (channel set, box statistics)
    train_shards  {count, frames, keys, config_hashes, depth_kinds, datasets, subjects}
    state_dict    model weights (+ BatchNorm statistics)
    optimizer, scheduler, torch_rng, epochs_done, step, history, best   (for resuming)
    scaler                                                               (fp16 runs: the loss scale)
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from auglift.core.codec import CueCodec
from auglift.core.config_io import writing
from auglift.lifters.models import build_model

FORMAT = "auglift-lifter"
VERSION = 1
# What `load_checkpoint` requires (evaluate / show / lift), and what resuming needs on top.
REQUIRED_KEYS = {"model": dict, "codec": dict, "train_shards": dict, "state_dict": dict}
REQUIRED_MODEL_KEYS = ("name", "in_channels", "num_joints", "config", "receptive_field", "predicts")
RESUME_KEYS = ("config", "optimizer", "scheduler", "torch_rng", "epochs_done", "step", "history", "best")


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write atomically (temporary file + rename): a crash never leaves a truncated checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with writing(tmp):  # e.g. a full disk: the error names the file, the old checkpoint stays
            torch.save({"format": FORMAT, "version": VERSION, **payload}, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint without executing pickled code; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: not a loadable auglift checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path}: not an auglift lifter checkpoint (no format={FORMAT!r})")
    if ckpt.get("version") != VERSION:
        raise ValueError(f"{path}: checkpoint version {ckpt.get('version')!r}; this auglift reads {VERSION}")
    lacking = [k for k, t in REQUIRED_KEYS.items() if not isinstance(ckpt.get(k), t)]
    lacking += [f"model.{k}" for k in REQUIRED_MODEL_KEYS if "model" not in lacking and k not in ckpt["model"]]
    if lacking:
        raise ValueError(f"{path}: checkpoint lacks {lacking} (truncated, or not written by auglift train)")
    return ckpt


def check_resumable(ckpt: dict[str, Any], path: str | os.PathLike) -> None:
    """Raise naming the file when a loaded checkpoint lacks what resuming needs."""
    lacking = [k for k in RESUME_KEYS if k not in ckpt]
    if lacking:
        raise ValueError(f"{path}: cannot resume from this checkpoint: it lacks {lacking}")


def model_record(model, name: str, preset: str | None) -> dict[str, Any]:
    cfg = dataclasses.asdict(model.config)
    return {"name": name, "preset": preset, "in_channels": int(cfg["in_channels"]),
            "num_joints": int(cfg["num_joints"]), "config": cfg,
            "receptive_field": int(model.receptive_field), "predicts": str(model.predicts)}


def build_from_checkpoint(ckpt: dict[str, Any], device: str | torch.device = "cpu"):
    """(model in eval mode with its weights, fitted CueCodec) from a loaded checkpoint."""

    rec = dict(ckpt["model"])
    fields = {k: v for k, v in rec["config"].items() if k not in ("in_channels", "num_joints")}
    model = build_model(rec["name"], rec["in_channels"], rec["num_joints"], **fields)
    model.load_state_dict(ckpt["state_dict"])
    codec = CueCodec.from_state_dict(ckpt["codec"])
    if codec.in_channels != rec["in_channels"]:
        raise ValueError(f"checkpoint codec has {codec.in_channels} channels but the model expects "
                         f"{rec['in_channels']}")
    return model.to(device).eval(), codec


def describe(ckpt: dict[str, Any]) -> str:
    """Default row label: model, preset and channel set, e.g. 'simple_baseline xy'."""
    m = ckpt["model"]
    preset = f" [{m['preset']}]" if m.get("preset") else ""
    return f"{m['name']}{preset} {ckpt['codec']['config']['channels']}"
