"""Depth Anything V2 Small on the CPU: ONNX Runtime fp32 and int8 against torch, ms per frame.

    python bench/bench_depth.py [--size 518] [--threads 1] [--repeats 3] [--rounds 2] [--profile]

The V2 Small architecture (DINOv2-S + DPT head, 24.8 M parameters) is built from its
configuration with RANDOM weights (none can be installed offline): the times are valid for the
architecture, its output is meaningless. One frame of `size` x `size` per call (batch 1, as
precompute's --batch-size 1), the same intra-op thread count for every backend. The ONNX graphs
are exported and quantised first (not timed: done once per model and frame shape). Backends run
in alternating rounds so that load from other processes affects all alike; each figure is the
median over all timed calls. Target: int8 >= 2x torch. Each call's process CPU time is printed
beside its wall time (at one thread they agree on an idle machine; on a shared one the CPU time
moves less with other jobs' load). Also prints each ONNX backend's agreement with torch on the
timed input (max abs error / max |depth|). `--profile`: where each ONNX backend's frame goes, from
onnxruntime's profiler (one more call each), in groups: the ViT's projections and MLP (MatMul /
Gemm with constant weights), the attention products (Q K^T, weights x V), Softmax, convolutions
(patch embedding and the DPT head), the rest; with the int8 graph's speed-up per group.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]

from auglift.pipeline.depth.onnx_runtime import OnnxDepthModel  # noqa: E402
from auglift.studies.latency import depth_anything_v2_small  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=518, help="input side in pixels (a multiple of 14)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per backend per round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--profile", action="store_true", help="also print where each ONNX backend's time goes")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = depth_anything_v2_small(args.size)
    x = torch.randn(1, 3, args.size, args.size)
    with tempfile.TemporaryDirectory() as tmp:
        onnx = {q or "fp32": OnnxDepthModel(model, "bench", tmp, q, args.threads) for q in (None, "int8")}
        t0 = time.perf_counter()
        outs = {k: m(x.numpy()) for k, m in onnx.items()}            # export + quantise + first call
        print(f"Depth Anything V2 Small (RANDOM weights) at {args.size} px, batch 1, {args.threads} thread(s); "
              f"export + quantisation {time.perf_counter() - t0:.0f} s; load average {os.getloadavg()[0]:.1f}")
        with torch.inference_mode():
            ref = model(pixel_values=x).predicted_depth.numpy()
        calls = {"torch": lambda: _torch_call(model, x), **{f"onnx {k}": (lambda m=m: m(x.numpy()))
                                                            for k, m in onnx.items()}}
        times: dict[str, list[float]] = {k: [] for k in calls}
        cpu: dict[str, list[float]] = {k: [] for k in calls}
        for r in range(args.rounds):
            for name in (list(calls) if r % 2 == 0 else list(calls)[::-1]):
                for _ in range(args.repeats):
                    t, c = time.perf_counter(), time.process_time()
                    calls[name]()
                    times[name].append(1000 * (time.perf_counter() - t))
                    cpu[name].append(1000 * (time.process_time() - c))
        groups = {k: op_groups(m, x.numpy(), Path(tmp)) for k, m in onnx.items()} if args.profile else None
    med = {k: float(np.median(v)) for k, v in times.items()}
    mcpu = {k: float(np.median(v)) for k, v in cpu.items()}
    for name, ms in med.items():
        err = "" if name == "torch" else (f"  error vs torch {np.abs(outs[name[5:]] - ref).max() / np.abs(ref).max():.1e}")
        print(f"{name:>10}: {ms:8.0f} ms/frame  ({med['torch'] / ms:.2f}x torch); CPU {mcpu[name]:6.0f} ms "
              f"({mcpu['torch'] / mcpu[name]:.2f}x){err}")
    print(f"int8 speed-up over torch {med['torch'] / med['onnx int8']:.2f}x (target >= 2; CPU time "
          f"{mcpu['torch'] / mcpu['onnx int8']:.2f}x); load average at the end {os.getloadavg()[0]:.1f}")
    if groups:
        print_groups(groups)


GROUPS = ("projections + MLP", "attention products", "Softmax", "Conv", "rest")


def op_group(op: str, node: str) -> str:
    """The group of one profiled kernel (see the module docstring)."""
    if "MatMul" in op or op == "Gemm":
        # the exporter names the two attention products ".../attention/MatMul" and ".../MatMul_1"
        return "attention products" if re.search(r"/attention/MatMul(_1)?(_|$)", node) else "projections + MLP"
    return op if op in ("Softmax", "Conv") else "rest"


def op_groups(model: OnnxDepthModel, x: np.ndarray, tmp: Path) -> dict[str, float]:
    """ms per group of `model`'s kernels in the second of two profiled calls for `x` (the first
    call's allocations and weight prepacking are left out)."""
    prefix = str(tmp / f"profile-{model.quantize or 'fp32'}")
    session = model.new_session(x.shape[2], x.shape[3], profile_prefix=prefix)
    for _ in range(2):
        session.run(None, {"pixel_values": x})
    events = json.loads(Path(session.end_profiling()).read_text())
    last_run = max(e["ts"] for e in events if e.get("name") == "model_run")
    ms: dict[str, float] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= last_run:
            ms[op_group(e["args"]["op_name"], e["name"])] += e["dur"] / 1000
    return dict(ms)


def print_groups(groups: dict[str, dict[str, float]]) -> None:
    fp32, int8 = groups["fp32"], groups["int8"]
    print("where a frame goes (onnxruntime profiler, ms):")
    print(f"{'group':>20} {'fp32':>8} {'int8':>8}  int8 speed-up")
    for g in GROUPS:
        a, b = fp32.get(g, 0.0), int8.get(g, 0.0)
        print(f"{g:>20} {a:8.0f} {b:8.0f}  {a / b if b else float('nan'):.2f}x")
    a, b = sum(fp32.values()), sum(int8.values())
    print(f"{'all kernels':>20} {a:8.0f} {b:8.0f}  {a / b:.2f}x")


def _torch_call(model, x):
    with torch.inference_mode():
        return model(pixel_values=x).predicted_depth


if __name__ == "__main__":
    main()
