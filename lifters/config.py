"""Typed training configuration, loadable from YAML.

One `TrainConfig` describes a training run completely; it is saved (as plain dicts) inside every
checkpoint, so a checkpoint says what produced it. A YAML file holds any subset of the nested
sections; the rest keeps the defaults below. Unknown keys are errors (a typo must not silently
fall back to a default).

    model:  {name: simple_baseline, preset: null, overrides: {}}
    codec:  {channels: xy, box_rescale: true, depth_mode: root, d_max: 2.0, root: 0}
    data:   {train: [runs/cache/h36m_gt], train_subjects: [S1, S5, S6, S7, S8], ...}
    optim:  {epochs: 30, batch_size: 1024, lr: 1.0e-3, lr_decay: 0.95, ...}
    seed: 0
    device: auto          # cuda when present, else cpu; cuda = cuda:LOCAL_RANK under torchrun
    precision: fp32       # bf16 | fp16 (autocast; fp16 with loss scaling) | fp32
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from auglift.core.codec import CHANNEL_SETS, DEPTH_MODES, CodecConfig
from auglift.core.config_io import check_fields, read_yaml_mapping, with_overrides

from .shard_memo import DEFAULT_BUDGET_MB

# Kept here (not imported from lifters.distributed) so that reading a config never imports torch.
PRECISIONS = ("fp32", "bf16", "fp16")
DDP_SPLITS = ("batch", "shards")


@dataclass
class ModelSection:
    name: str = "simple_baseline"
    preset: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)   # model config fields, e.g. dropout


@dataclass
class DataSection:
    train: list[str] = field(default_factory=list)            # cache roots, shard paths or globs
    train_subjects: list[str] | None = None
    val: list[str] = field(default_factory=list)
    val_subjects: list[str] | None = None
    datasets: list[str] | None = None                         # keep only shards of these datasets
    pattern: str | None = None                                # glob on the shard key
    stride: int = 1                                           # frames between training windows
    flip: bool = True                                         # left/right flip augmentation (p=0.5)
    shuffle_buffer: int = 65536                               # windows held for shuffling ...
    max_buffer_mb: float = 256.0                              # ... but never more than this
    open_shards: int = 4                                      # shards interleaved at a time
    chunk_frames: int = 1024                                  # rows read from a shard at once
    num_workers: int = 0                                      # DataLoader worker processes
    memo_mb: float = DEFAULT_BUDGET_MB                        # checked shard arrays kept per process (shard_memo)
    prefetch: int = 4                                         # batches in flight per worker (or read-ahead thread)
    ddp_split: str = "batch"                                  # torchrun ranks: batch | shards (distributed.py)


@dataclass
class OptimSection:
    epochs: int = 30
    batch_size: int = 1024
    lr: float = 1.0e-3
    weight_decay: float = 1.0e-4                              # AdamW's decoupled weight decay
    lr_decay: float = 0.95                                    # x lr after every epoch (VideoPose3D)
    grad_clip: float | None = 1.0                             # max gradient norm; null = off
    max_steps: int | None = None                              # stop early (smoke runs and tests)


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    codec: CodecConfig = field(default_factory=CodecConfig)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    seed: int = 0
    device: str = "auto"                                      # auto | cpu | cuda | cuda:N
    precision: str = "fp32"                                   # fp32 | bf16 | fp16
    num_threads: int | None = None                            # torch CPU threads; None = torch's default
    out: str = "runs/train"
    val_every: int = 1                                        # epochs between validations
    eval_batch_size: int = 4096


_SECTIONS = {"model": ModelSection, "codec": CodecConfig, "data": DataSection, "optim": OptimSection}


def _build(cls, values: Mapping[str, Any], where: str):
    check_fields(cls, values, where)
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from None


def config_from_dict(d: Mapping[str, Any], where: str = "config") -> TrainConfig:
    """A TrainConfig from nested plain dicts (YAML or a checkpoint); missing keys keep defaults."""
    d = dict(d or {})
    sections = {}
    for name, cls in _SECTIONS.items():
        sections[name] = _build(cls, d.pop(name, None) or {}, f"{where}: section '{name}'")
    cfg = _build(TrainConfig, d, where)
    for name, value in sections.items():
        setattr(cfg, name, value)
    validate(cfg, where)
    return cfg


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain nested dicts/lists/scalars: safe for YAML, JSON and `torch.load(weights_only=True)`."""
    return _plain(dataclasses.asdict(cfg))


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def load_config(path: str | Path) -> TrainConfig:
    return config_from_dict(read_yaml_mapping(path, "training config"), where=str(path))


def save_config(cfg: TrainConfig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    return path


def validate(cfg: TrainConfig, where: str = "config") -> None:
    o, d = cfg.optim, cfg.data
    problems = []
    if o.epochs < 1:
        problems.append(f"optim.epochs must be >= 1, got {o.epochs}")
    if o.batch_size < 2:  # BatchNorm needs two samples per batch in training mode
        problems.append(f"optim.batch_size must be >= 2, got {o.batch_size}")
    if not o.lr > 0:
        problems.append(f"optim.lr must be > 0, got {o.lr}")
    if not 0 < o.lr_decay <= 1:
        problems.append(f"optim.lr_decay must be in (0, 1], got {o.lr_decay}")
    if o.max_steps is not None and o.max_steps < 1:
        problems.append(f"optim.max_steps must be >= 1 or null, got {o.max_steps}")
    if d.stride < 1 or d.open_shards < 1 or d.chunk_frames < 1 or d.shuffle_buffer < 1:
        problems.append("data.stride, open_shards, chunk_frames and shuffle_buffer must be >= 1")
    if cfg.num_threads is not None and cfg.num_threads < 1:
        problems.append(f"num_threads must be >= 1 or null, got {cfg.num_threads}")
    if d.num_workers < 0:
        problems.append(f"data.num_workers must be >= 0, got {d.num_workers}")
    if d.memo_mb < 0:
        problems.append(f"data.memo_mb must be >= 0, got {d.memo_mb}")
    for name in ("train", "val"):
        value = getattr(d, name)
        if isinstance(value, str):
            setattr(d, name, [value])
    for name in ("train_subjects", "val_subjects", "datasets"):
        value = getattr(d, name)
        if isinstance(value, str):
            setattr(d, name, [s for s in value.split(",") if s])
    if cfg.codec.channels not in CHANNEL_SETS:
        problems.append(f"codec.channels must be one of {list(CHANNEL_SETS)}, got {cfg.codec.channels!r}")
    if cfg.codec.depth_mode not in DEPTH_MODES:
        problems.append(f"codec.depth_mode must be one of {list(DEPTH_MODES)}, got {cfg.codec.depth_mode!r}")
    if cfg.device not in ("auto", "cpu", "cuda") and not cfg.device.startswith("cuda:"):
        problems.append(f"device must be auto, cpu, cuda or cuda:N, got {cfg.device!r}")
    if cfg.precision not in PRECISIONS:
        problems.append(f"precision must be one of {list(PRECISIONS)}, got {cfg.precision!r}")
    if d.ddp_split not in DDP_SPLITS:
        problems.append(f"data.ddp_split must be one of {list(DDP_SPLITS)}, got {d.ddp_split!r}")
    if d.prefetch < 1:
        problems.append(f"data.prefetch must be >= 1, got {d.prefetch}")
    if problems:
        raise ValueError(f"{where}: " + "; ".join(problems))


# The command line's flat option names -> TrainConfig fields (core.config_io.with_overrides).
OVERRIDE_PATHS = {
    "model": "model.name", "preset": "model.preset", "channels": "codec.channels", "train": "data.train",
    "train_subjects": "data.train_subjects", "val": "data.val", "val_subjects": "data.val_subjects",
    "num_workers": "data.num_workers", "stride": "data.stride", "flip": "data.flip", "ddp_split": "data.ddp_split",
    "epochs": "optim.epochs", "batch_size": "optim.batch_size", "lr": "optim.lr", "lr_decay": "optim.lr_decay",
    "weight_decay": "optim.weight_decay", "max_steps": "optim.max_steps", "seed": "seed", "device": "device",
    "out": "out", "num_threads": "num_threads", "precision": "precision",
}


def apply_overrides(cfg: TrainConfig, **values: Any) -> TrainConfig:
    """Command-line style overrides on top of a config; None means "not given".

    Keys: model, preset, channels, train, train_subjects, val, val_subjects, out, epochs,
    batch_size, lr, lr_decay, weight_decay, seed, device, precision, num_threads, num_workers, stride,
    flip, max_steps, ddp_split.
    Lists may be given as comma-separated strings.
    """
    overrides = {}
    for name, value in values.items():
        if name not in OVERRIDE_PATHS:
            raise ValueError(f"unknown override {name!r}; known: {sorted(OVERRIDE_PATHS)}")
        if name in ("train_subjects", "val_subjects") and isinstance(value, str):
            value = [s.strip() for s in value.split(",") if s.strip()]
        if name in ("train", "val") and value is not None:
            value = [str(v) for v in ([value] if isinstance(value, str) else value)]
        overrides[OVERRIDE_PATHS[name]] = value
    cfg = with_overrides(cfg, overrides)
    validate(cfg)
    return cfg
