"""SimpleBaseline (Martinez, Hossain, Romero, Little: "A simple yet effective baseline for 3d
human pose estimation", ICCV 2017).

A single-frame MLP: the K x C keypoint vector goes through a linear layer to `width` units,
`num_blocks` residual blocks of two (Linear, BatchNorm, ReLU, Dropout) layers each, and a
linear layer to K x 3. The paper's network (width 1024, 2 blocks, dropout 0.5) has ~4-5 M
parameters. Its max-norm weight constraint is a training detail left to the trainer.

Frames are independent, so the receptive field is 1 and `predicts == "center"`: an input
`(B, T, K, C)` gives `(B, T, K, 3)`, one pose per frame (with T = 1 that is the centre frame).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .layers import LifterModule, check_input


@dataclass
class SimpleBaselineConfig:
    in_channels: int = 2
    num_joints: int = 17
    width: int = 1024
    num_blocks: int = 2
    dropout: float = 0.5
    bn_momentum: float = 0.1

    def __post_init__(self) -> None:
        if self.in_channels < 1 or self.num_joints < 1 or self.width < 1 or self.num_blocks < 0:
            raise ValueError(f"invalid SimpleBaseline config: {self}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"SimpleBaseline dropout must be in [0, 1), got {self.dropout}")

    @property
    def receptive_field(self) -> int:
        return 1

    @property
    def predicts(self) -> str:
        return "center"


def _dense(width: int, dropout: float, momentum: float) -> list[nn.Module]:
    return [nn.Linear(width, width), nn.BatchNorm1d(width, momentum=momentum), nn.ReLU(inplace=True),
            nn.Dropout(dropout)]


class ResidualBlock(nn.Module):
    def __init__(self, width: int, dropout: float, momentum: float) -> None:
        super().__init__()
        self.layers = nn.Sequential(*_dense(width, dropout, momentum), *_dense(width, dropout, momentum))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class SimpleBaseline(LifterModule):
    name = "simple_baseline"
    config_class = SimpleBaselineConfig

    def __init__(self, config: SimpleBaselineConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.input = nn.Linear(c.num_joints * c.in_channels, c.width)
        self.stem = nn.Sequential(nn.BatchNorm1d(c.width, momentum=c.bn_momentum), nn.ReLU(inplace=True),
                                  nn.Dropout(c.dropout))
        self.blocks = nn.Sequential(*[ResidualBlock(c.width, c.dropout, c.bn_momentum)
                                      for _ in range(c.num_blocks)])
        self.output = nn.Linear(c.width, c.num_joints * 3)
        for m in self.modules():
            # Kaiming init as in the paper's reference implementation (ReLU network).
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        # The reference implementation regresses z-scored coordinates; ours regresses metres, so a
        # Kaiming-sized output layer would start at ~1 m per coordinate and spend the first
        # thousands of steps shrinking it. Start near zero (the mean root-relative pose) instead.
        nn.init.normal_(self.output.weight, std=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.config.num_joints, self.config.in_channels, self.name)
        b, t, k, _ = x.shape
        h = self.stem(self.input(x.reshape(b * t, -1)))
        out = self.output(self.blocks(h))
        return out.reshape(b, t, k, 3)
