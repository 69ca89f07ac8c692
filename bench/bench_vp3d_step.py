"""VideoPose3D optimised-training step: the matrix-product convolution against conv1d, one run.

    python bench/bench_vp3d_step.py [--preset vp3d-27] [--batch 256] [--steps 5] [--threads 1]

(a) auglift: a training step (forward, MPJPE-like loss, backward, Adam) of VideoPose3D on
    windows of exactly its receptive field, the form every training uses; its strided
    convolutions run as `videopose3d.strided_conv` (a matrix product over frame groups).
(b) reference: the same model, weights and inputs, with those convolutions run as
    `torch.nn.functional.conv1d(..., stride=width)` (how the model ran before, and how
    VideoPose3D's own optimised model does it with nn.Conv1d).
Prints ms/step of each, their ratio (b)/(a) (> 1: ours is faster), and the largest difference
between the two forwards in eval mode (float rounding only).
"""
from __future__ import annotations

import argparse
import time

import torch

from auglift.lifters.models import build_model
from auglift.lifters.models import videopose3d


def conv1d_strided(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.conv1d(h, weight, stride=weight.shape[2])


def step_ms(model, x: torch.Tensor, steps: int) -> float:
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for i in range(steps + 1):
        if i == 1:   # the first step warms allocators and kernels
            t0 = time.perf_counter()
        loss = model(x).square().sum(-1).sqrt().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return 1000 * (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="vp3d-27")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model("videopose3d", in_channels=4, preset=args.preset)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(args.batch, model.receptive_field, 17, 4)
    ours = videopose3d.strided_conv
    rows = {}
    for label, conv in (("(a) auglift strided_conv", ours), ("(b) reference conv1d", conv1d_strided)):
        videopose3d.strided_conv = conv
        model.load_state_dict(state)
        rows[label] = step_ms(model.train(), x, args.steps)
        model.load_state_dict(state)
        with torch.no_grad():
            rows[label + " eval"] = model.eval()(x[:8])
    videopose3d.strided_conv = ours
    (a, b) = (rows["(a) auglift strided_conv"], rows["(b) reference conv1d"])
    diff = (rows["(a) auglift strided_conv eval"] - rows["(b) reference conv1d eval"]).abs().max().item()
    print(f"VideoPose3D {args.preset}, batch {args.batch}, {args.threads} thread(s), {args.steps} timed steps")
    print(f"(a) auglift strided_conv : {a:8.1f} ms/step")
    print(f"(b) reference conv1d     : {b:8.1f} ms/step")
    print(f"ratio (b)/(a)            : {b / a:8.3f}   (max |a - b| of the eval forwards: {diff:.2e} m)")


if __name__ == "__main__":
    main()
