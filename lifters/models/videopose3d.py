"""VideoPose3D temporal convolutional model (Pavllo, Feichtenhofer, Grangier, Auli: "3D human
pose estimation in video with temporal convolutions and semi-supervised training", CVPR 2019).

The K x C keypoints of each frame are the channels of a 1D convolution over time. A first
convolution of width W0 is followed by residual blocks, each a dilated convolution (width Wi,
dilation W0*...*W(i-1)) and a 1x1 convolution, both with BatchNorm, ReLU and dropout; the
residual is the input sliced to the centre of the block's output. The receptive field is the
product of the filter widths: (3, 3, 3) -> 27, (3, 3, 3, 3, 3) -> 243. With 1024 channels the
243-frame model has ~17 M parameters (16.95 M in the paper).

`predicts == "center"`: an input of T = receptive_field frames gives `(B, 1, K, 3)`, the pose
of the centre frame. Longer inputs give `(B, T - receptive_field + 1, K, 3)`, output i being the
centre frame of input window [i, i + receptive_field), which is how whole sequences are
evaluated (pad the sequence by receptive_field // 2 on each side for one pose per frame).

When T equals the receptive field the model runs the paper's "optimised training" form: the
dilated convolutions become strided ones (stride = filter width), which computes only the frames
the centre output needs. Same weights, same result in eval mode; BatchNorm statistics in train
mode differ, exactly as in the paper (train strided, evaluate dilated).
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

import torch
from torch import nn

from .layers import LifterModule, check_input


@dataclass
class VideoPose3DConfig:
    in_channels: int = 2
    num_joints: int = 17
    filter_widths: tuple[int, ...] = (3, 3, 3, 3, 3)
    channels: int = 1024
    dropout: float = 0.25
    bn_momentum: float = 0.1

    def __post_init__(self) -> None:
        self.filter_widths = tuple(int(w) for w in self.filter_widths)
        if not self.filter_widths or any(w < 1 or w % 2 == 0 for w in self.filter_widths):
            raise ValueError(f"VideoPose3D filter widths must be odd and >= 1, got {self.filter_widths}")
        if self.in_channels < 1 or self.num_joints < 1 or self.channels < 1:
            raise ValueError(f"invalid VideoPose3D config: {self}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"VideoPose3D dropout must be in [0, 1), got {self.dropout}")

    @property
    def receptive_field(self) -> int:
        return prod(self.filter_widths)

    @property
    def predicts(self) -> str:
        return "center"


class VideoPose3D(LifterModule):
    name = "videopose3d"
    config_class = VideoPose3DConfig

    def __init__(self, config: VideoPose3DConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        fw = c.filter_widths
        self.expand_conv = nn.Conv1d(c.num_joints * c.in_channels, c.channels, fw[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(c.channels, momentum=c.bn_momentum)
        self.drop = nn.Dropout(c.dropout)
        self.relu = nn.ReLU(inplace=True)
        self.block_convs = nn.ModuleList()
        self.block_bns = nn.ModuleList()
        self.dilations: list[int] = []
        dilation = fw[0]
        for width in fw[1:]:
            self.dilations.append(dilation)
            # Registered as dilated convs; the strided path reuses their weights (strided_conv).
            self.block_convs.append(nn.Conv1d(c.channels, c.channels, width, dilation=dilation, bias=False))
            self.block_convs.append(nn.Conv1d(c.channels, c.channels, 1, bias=False))
            self.block_bns.append(nn.BatchNorm1d(c.channels, momentum=c.bn_momentum))
            self.block_bns.append(nn.BatchNorm1d(c.channels, momentum=c.bn_momentum))
            dilation *= width
        self.shrink = nn.Conv1d(c.channels, c.num_joints * 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        check_input(x, c.num_joints, c.in_channels, self.name)
        b, t, k, _ = x.shape
        rf = self.receptive_field
        if t < rf:
            raise ValueError(f"{self.name}: needs at least receptive_field={rf} frames, got T={t}")
        strided = t == rf
        h = x.reshape(b, t, -1).transpose(1, 2)  # (B, K*C, T)
        fw = c.filter_widths
        h = strided_conv(h, self.expand_conv.weight) if strided else self.expand_conv(h)
        h = self.drop(self.relu(self.expand_bn(h)))
        for i, width in enumerate(fw[1:]):
            conv, conv1 = self.block_convs[2 * i], self.block_convs[2 * i + 1]
            bn, bn1 = self.block_bns[2 * i], self.block_bns[2 * i + 1]
            if strided:
                # Frames are already spaced by the dilation: group them by `width` instead.
                res = h[:, :, width // 2::width]
                y = strided_conv(h, conv.weight)
            else:
                pad = (width - 1) * self.dilations[i] // 2
                res = h[:, :, pad:h.shape[2] - pad]
                y = conv(h)
            y = self.drop(self.relu(bn(y)))
            y = self.drop(self.relu(bn1(strided_conv(y, conv1.weight) if strided else conv1(y))))
            h = res + y
        out = self.shrink(h)  # (B, K*3, T_out)
        return out.transpose(1, 2).reshape(b, -1, k, 3)


def strided_conv(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """`conv1d(h, weight, stride=width)` without bias for h (B, C, T) with T a multiple of the
    filter width (1x1 convolutions included), as one matrix product over the non-overlapping
    groups of `width` frames.

    Same result up to float rounding; written so because PyTorch's CPU conv1d is 4-8x slower than
    the matmul on the optimised-training shapes (T of 3 or 9, 1024 channels; bench/bench_vp3d_step.py)."""
    b, cin, t = h.shape
    cout, _, width = weight.shape
    groups = h.reshape(b, cin, t // width, width).transpose(1, 2).reshape(b * (t // width), cin * width)
    y = groups @ weight.reshape(cout, cin * width).t()
    return y.reshape(b, t // width, cout).transpose(1, 2)
