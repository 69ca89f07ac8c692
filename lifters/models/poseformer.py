"""PoseFormer (Zheng, Wu, Chen, Shen, Yang, Ding: "3D human pose estimation with spatial and
temporal transformers", ICCV 2021).

Per frame, a spatial transformer attends over the K joints, each embedded from its C input
channels to `embed_dim` (32 in the paper) with a learned joint position embedding. The K
joint features of a frame are concatenated into one token of size K x embed_dim (544 for 17
joints), and a temporal transformer attends over the frames with a learned frame position
embedding. A learned weighted mean over frames (a 1x1 convolution with the frames as input
channels) gives one token, which a LayerNorm + linear head maps to K x 3. The 81-frame paper
model has ~9.6 M parameters.

`predicts == "center"`: the input must have exactly T = frames = receptive_field frames (the
position embedding is per frame); the output is `(B, 1, K, 3)` for the centre frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .layers import LifterModule, TransformerBlock, check_input, drop_path_schedule, init_transformer_weights


@dataclass
class PoseFormerConfig:
    in_channels: int = 2
    num_joints: int = 17
    frames: int = 81
    embed_dim: int = 32          # per joint; the temporal width is num_joints * embed_dim
    spatial_depth: int = 4
    temporal_depth: int = 4
    num_heads: int = 8
    mlp_ratio: float = 2.0
    dropout: float = 0.0
    attn_dropout: float = 0.0
    drop_path: float = 0.1

    def __post_init__(self) -> None:
        if self.frames < 1 or self.frames % 2 == 0:
            raise ValueError(f"PoseFormer frames must be odd (a centre frame exists), got {self.frames}")
        if self.embed_dim % self.num_heads or (self.embed_dim * self.num_joints) % self.num_heads:
            raise ValueError(f"PoseFormer embed_dim {self.embed_dim} (x{self.num_joints} joints) "
                             f"is not divisible by num_heads {self.num_heads}")
        if self.in_channels < 1 or self.num_joints < 1:
            raise ValueError(f"invalid PoseFormer config: {self}")

    @property
    def receptive_field(self) -> int:
        return self.frames

    @property
    def predicts(self) -> str:
        return "center"


class PoseFormer(LifterModule):
    name = "poseformer"
    config_class = PoseFormerConfig

    def __init__(self, config: PoseFormerConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        temporal_dim = c.embed_dim * c.num_joints
        self.joint_embed = nn.Linear(c.in_channels, c.embed_dim)
        self.spatial_pos = nn.Parameter(torch.zeros(1, c.num_joints, c.embed_dim))
        self.temporal_pos = nn.Parameter(torch.zeros(1, c.frames, temporal_dim))
        self.pos_drop = nn.Dropout(c.dropout)
        # One stochastic-depth schedule over both stacks, as in the paper's code.
        rates = drop_path_schedule(c.drop_path, c.spatial_depth + c.temporal_depth)
        self.spatial_blocks = nn.ModuleList(
            TransformerBlock(c.embed_dim, c.num_heads, c.mlp_ratio, c.dropout, c.attn_dropout, r)
            for r in rates[:c.spatial_depth])
        self.spatial_norm = nn.LayerNorm(c.embed_dim)
        self.temporal_blocks = nn.ModuleList(
            TransformerBlock(temporal_dim, c.num_heads, c.mlp_ratio, c.dropout, c.attn_dropout, r)
            for r in rates[c.spatial_depth:])
        self.temporal_norm = nn.LayerNorm(temporal_dim)
        self.weighted_mean = nn.Conv1d(c.frames, 1, kernel_size=1)
        self.head = nn.Sequential(nn.LayerNorm(temporal_dim), nn.Linear(temporal_dim, c.num_joints * 3))
        self.apply(init_transformer_weights)
        nn.init.trunc_normal_(self.spatial_pos, std=0.02)
        nn.init.trunc_normal_(self.temporal_pos, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        check_input(x, c.num_joints, c.in_channels, self.name)
        b, t, k, _ = x.shape
        if t != c.frames:
            raise ValueError(f"{self.name}: built for exactly {c.frames} frames, got T={t}")
        h = self.pos_drop(self.joint_embed(x.reshape(b * t, k, -1)) + self.spatial_pos)
        for blk in self.spatial_blocks:
            h = blk(h)
        h = self.spatial_norm(h).reshape(b, t, k * c.embed_dim)
        h = self.pos_drop(h + self.temporal_pos)
        for blk in self.temporal_blocks:
            h = blk(h)
        h = self.weighted_mean(self.temporal_norm(h))  # (B, 1, K*embed_dim)
        return self.head(h).reshape(b, 1, k, 3)
