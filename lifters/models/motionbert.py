"""MotionBERT's DSTformer (Zhu, Ma, Liu, Liu, Wu, Wang: "MotionBERT: A unified perspective on
learning human motion representations", ICCV 2023).

Every joint of every frame is a token: its C input channels are embedded to `dim`, plus a
learned joint (spatial) and frame (temporal) position embedding. Each of `depth` layers runs
two streams on the same input:
  S-T stream: spatial attention (over joints, per frame) + MLP, then temporal attention (over
              frames, per joint) + MLP;
  T-S stream: the same four sub-blocks in the other order;
and fuses them per token with adaptive weights: a linear layer on the concatenated stream
outputs gives two logits, softmax -> (a_st, a_ts), output a_st * x_st + a_ts * x_ts. The
final LayerNorm feeds a "representation" layer (Linear to `dim_rep` + tanh) and a linear head
to 3D. The paper's model (dim 512, depth 5, 8 heads, MLP ratio 2, dim_rep 512) has ~42 M
parameters; "lite" (dim 256, MLP ratio 4) ~16 M.

`predicts == "all"` (sequence to sequence): `(B, T, K, C)` -> `(B, T, K, 3)` for any
T <= frames (= receptive_field, the length of the frame position embedding).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .layers import Attention, DropPath, LifterModule, Mlp, check_input, drop_path_schedule, init_transformer_weights


@dataclass
class MotionBERTConfig:
    in_channels: int = 2
    num_joints: int = 17
    frames: int = 243
    dim: int = 512
    depth: int = 5
    num_heads: int = 8
    mlp_ratio: float = 2.0
    dim_rep: int = 512
    dropout: float = 0.0
    attn_dropout: float = 0.0
    drop_path: float = 0.0

    def __post_init__(self) -> None:
        if self.dim % self.num_heads:
            raise ValueError(f"MotionBERT dim {self.dim} is not divisible by num_heads {self.num_heads}")
        if self.in_channels < 1 or self.num_joints < 1 or self.frames < 1 or self.depth < 1:
            raise ValueError(f"invalid MotionBERT config: {self}")

    @property
    def receptive_field(self) -> int:
        return self.frames

    @property
    def predicts(self) -> str:
        return "all"


class _AxisBlock(nn.Module):
    """Pre-norm attention + MLP along one axis of `(B, T, K, dim)`: joints or frames."""

    def __init__(self, axis: str, c: MotionBERTConfig, drop_path: float) -> None:
        super().__init__()
        self.axis = axis
        self.norm1 = nn.LayerNorm(c.dim)
        self.attn = Attention(c.dim, c.num_heads, c.attn_dropout, c.dropout)
        self.norm2 = nn.LayerNorm(c.dim)
        self.mlp = Mlp(c.dim, int(c.dim * c.mlp_ratio), c.dropout)
        self.drop_path = DropPath(drop_path)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        b, t, k, d = x.shape
        if self.axis == "spatial":
            return self.attn(x.reshape(b * t, k, d)).reshape(b, t, k, d)
        y = self.attn(x.transpose(1, 2).reshape(b * k, t, d))
        return y.reshape(b, k, t, d).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self._attend(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class _DualStreamLayer(nn.Module):
    def __init__(self, c: MotionBERTConfig, drop_path: float) -> None:
        super().__init__()
        self.st = nn.ModuleList([_AxisBlock("spatial", c, drop_path), _AxisBlock("temporal", c, drop_path)])
        self.ts = nn.ModuleList([_AxisBlock("temporal", c, drop_path), _AxisBlock("spatial", c, drop_path)])
        self.fuse = nn.Linear(2 * c.dim, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_st = self.st[1](self.st[0](x))
        x_ts = self.ts[1](self.ts[0](x))
        alpha = torch.softmax(self.fuse(torch.cat([x_st, x_ts], dim=-1)), dim=-1)
        return alpha[..., :1] * x_st + alpha[..., 1:] * x_ts


class MotionBERT(LifterModule):
    name = "motionbert"
    config_class = MotionBERTConfig

    def __init__(self, config: MotionBERTConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.joint_embed = nn.Linear(c.in_channels, c.dim)
        self.spatial_pos = nn.Parameter(torch.zeros(1, 1, c.num_joints, c.dim))
        self.temporal_pos = nn.Parameter(torch.zeros(1, c.frames, 1, c.dim))
        self.pos_drop = nn.Dropout(c.dropout)
        self.layers = nn.ModuleList(_DualStreamLayer(c, r) for r in drop_path_schedule(c.drop_path, c.depth))
        self.norm = nn.LayerNorm(c.dim)
        self.pre_logits = nn.Sequential(nn.Linear(c.dim, c.dim_rep), nn.Tanh())
        self.head = nn.Linear(c.dim_rep, 3)
        self.apply(init_transformer_weights)
        nn.init.trunc_normal_(self.spatial_pos, std=0.02)
        nn.init.trunc_normal_(self.temporal_pos, std=0.02)
        for layer in self.layers:
            # Start from an even blend of the two streams and let training tilt it.
            nn.init.zeros_(layer.fuse.weight)
            nn.init.constant_(layer.fuse.bias, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        check_input(x, c.num_joints, c.in_channels, self.name)
        t = x.shape[1]
        if t > c.frames:
            raise ValueError(f"{self.name}: built for at most {c.frames} frames, got T={t}")
        h = self.pos_drop(self.joint_embed(x) + self.spatial_pos + self.temporal_pos[:, :t])
        for layer in self.layers:
            h = layer(h)
        return self.head(self.pre_logits(self.norm(h)))
