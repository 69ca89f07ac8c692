"""Lifter registry: the four networks by name, with named size presets.

Every lifter maps `(B, T, K, C)` keypoint cues (C = 2..4: xy, xyc, xycd, xyo) to root-relative
3D `(B, T_out, K, 3)` and exposes `receptive_field` (input frames per prediction) and
`predicts` ("center": one pose per receptive-field window; "all": one per input frame). Only
the input layer depends on `in_channels`.

    model = build_model("videopose3d", in_channels=4, preset="vp3d-27")
    cfg = build_config("motionbert", in_channels=3, preset="small")  # no weights allocated
    again = build_model("poseformer", **dataclasses.asdict(model_of_checkpoint.config))

A model's `config` dataclass, as a dict, rebuilds it exactly (that is what checkpoints save).
Config defaults are the paper's sizes, so `preset=None` and `preset="paper"` agree.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from auglift.core.config_io import registered

# name -> "module:class" (relative to this package; core.config_io.registered). Each class names
# its config dataclass in `config_class`.
MODELS: dict[str, str] = {
    "simple_baseline": "simple_baseline:SimpleBaseline",
    "videopose3d": "videopose3d:VideoPose3D",
    "poseformer": "poseformer:PoseFormer",
    "motionbert": "motionbert:MotionBERT",
}


def model_class(name: str) -> type[nn.Module]:
    return registered(MODELS, __name__, name, "lifter")

# Per model: preset name -> config fields. "paper" = the size each paper reports; "small" =
# a tiny network for tests and CPU smoke runs; the rest are the papers' frame counts.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "simple_baseline": {
        "paper": {},
        "small": {"width": 64, "num_blocks": 1, "dropout": 0.1},
    },
    "videopose3d": {
        "paper": {"filter_widths": (3, 3, 3, 3, 3)},
        "small": {"filter_widths": (3, 3), "channels": 64, "dropout": 0.1},
        # The single-frame variant keeps the 27-frame model's depth with 1-wide filters, so it
        # differs from vp3d-27 only in seeing one frame.
        "vp3d-1": {"filter_widths": (1, 1, 1)},
        "vp3d-9": {"filter_widths": (3, 3)},
        "vp3d-27": {"filter_widths": (3, 3, 3)},
        "vp3d-81": {"filter_widths": (3, 3, 3, 3)},
        "vp3d-243": {"filter_widths": (3, 3, 3, 3, 3)},
    },
    "poseformer": {
        "paper": {"frames": 81},
        "small": {"frames": 9, "embed_dim": 8, "spatial_depth": 1, "temporal_depth": 1,
                  "num_heads": 2, "drop_path": 0.0},
        "poseformer-9": {"frames": 9},
        "poseformer-27": {"frames": 27},
        "poseformer-81": {"frames": 81},
    },
    "motionbert": {
        "paper": {"frames": 243},
        "lite": {"frames": 243, "dim": 256, "mlp_ratio": 4.0},
        "small": {"frames": 9, "dim": 32, "depth": 1, "num_heads": 2, "dim_rep": 32},
        "motionbert-9": {"frames": 9},
        "motionbert-27": {"frames": 27},
        "motionbert-243": {"frames": 243},
    },
}


def build_config(name: str, in_channels: int = 2, num_joints: int = 17, preset: str | None = None,
                 **overrides: Any):
    """The config dataclass for `name`: class defaults, then `preset`, then `overrides`."""
    config_cls = model_class(name).config_class
    fields: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS[name]:
            raise ValueError(f"unknown preset {preset!r} for {name}; known: {sorted(PRESETS[name])}")
        fields.update(PRESETS[name][preset])
    fields.update(overrides)
    fields.update(in_channels=in_channels, num_joints=num_joints)
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"{name} has no config field(s) {unknown}; fields: {sorted(known)}")
    return config_cls(**fields)


def build_model(name: str, in_channels: int = 2, num_joints: int = 17, preset: str | None = None,
                **overrides: Any) -> nn.Module:
    """Build lifter `name` (see MODELS) for `in_channels` input cues per joint."""
    config = build_config(name, in_channels, num_joints, preset, **overrides)
    return model_class(name)(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "MODELS", "PRESETS", "build_config", "build_model", "count_parameters",
    "SimpleBaseline", "SimpleBaselineConfig", "VideoPose3D", "VideoPose3DConfig",
    "PoseFormer", "PoseFormerConfig", "MotionBERT", "MotionBERTConfig",
]
