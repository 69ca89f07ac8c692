"""GPU check: the figures to measure whenever a GPU machine is at hand, in one short run.

    python bench/gpu_check.py [--out results.json]        # on the GPU machine
    python bench/gpu_check.py --tiny                       # dry run on a CPU (tiny sizes)

Prints the device name, then
1. depth stage (precompute): Depth Anything V2 Small, RANDOM weights (built from its
   configuration; nothing is downloaded), through auglift's depth backend (image processor, model
   at 518 px, resize back to the frame), on 1000 x 1000 frames at batch 1, 8 and 32: frames/s;
2. training: `lifters.train.train` on SimpleBaseline (paper size), batch 1024, fp32 against bf16
   and fp16 autocast, from a SIMULATED-shape Zarr cache written here (random poses: the shared
   data is not on the GPU machine; throughput does not depend on the values): samples/s of the
   training loop (a W + S step run minus a W step run, as bench/bench_train.py).
Needs no data files. `--out` also writes the figures as JSON.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]

from bench_train import loop_seconds  # noqa: E402

from auglift.lifters.config import config_from_dict  # noqa: E402
from auglift.lifters.train import train  # noqa: E402


def save_depth_model(path: Path, size: int, tiny: bool) -> Path:
    """A Depth Anything V2 Small (or, --tiny, a tiny one) with random weights, saved like a hub checkpoint."""
    from transformers import DPTImageProcessor

    from auglift.studies.latency import depth_anything_v2_small

    torch.manual_seed(0)
    model = depth_anything_v2_small(size)
    if tiny:  # four backbone layers instead of twelve: the same code path, seconds on a CPU
        from transformers import Dinov2Config

        b = model.config.backbone_config
        model.config.backbone_config = Dinov2Config(
            hidden_size=b.hidden_size, num_attention_heads=b.num_attention_heads, num_hidden_layers=4,
            patch_size=b.patch_size, image_size=size, out_features=["stage1", "stage2", "stage3", "stage4"],
            reshape_hidden_states=False)
        model = type(model)(model.config).eval()
    model.save_pretrained(path)
    DPTImageProcessor(size={"height": size, "width": size}, keep_aspect_ratio=True, ensure_multiple_of=14,
                      do_pad=False, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]
                      ).save_pretrained(path)
    return path


def depth_rates(model_dir: Path, device: str, batches: list[int], repeats: int) -> dict[int, float]:
    from auglift.pipeline.depth import build_depth

    backend = build_depth("depth-anything", model=str(model_dir), device=device)
    frames = np.random.default_rng(0).integers(0, 255, (max(batches), 1000, 1000, 3), dtype=np.uint8)
    rates = {}
    for b in batches:
        backend.maps(frames[:b])                                   # warm-up (cuDNN autotune, allocator)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            backend.maps(frames[:b]).cpu()
        _sync(device)
        rates[b] = b * repeats / (time.perf_counter() - t0)
    return rates


def synthetic_cache(root: Path, shards: int, frames: int) -> Path:
    """Shards with the shapes of real ones (17 joints, 2D + confidence + depth + 3D), random poses."""
    from auglift.cache import write_shard

    rng = np.random.default_rng(0)
    for s in range(shards):
        j = rng.normal(0, 250, (frames, 17, 3)).astype(np.float32) + np.array([0, 0, 4500], np.float32)
        arrays = {"keypoints_2d": (j[..., :2] / j[..., 2:] * 1100 + 500).astype(np.float32),
                  "confidence": rng.uniform(0.5, 1, (frames, 17)).astype(np.float32),
                  "depth": (j[..., 2] / 1000).astype(np.float32),
                  "bbox": np.tile(np.array([0, 0, 999, 999], np.float32), (frames, 1)),
                  "frame_index": np.arange(frames), "joints_3d_cam": j}
        attrs = {"dataset": "h36m", "subject": "S1", "action": f"Random {s}", "camera": "c0",
                 "image_size": [1000, 1000], "intrinsics": None, "fps": 50.0, "skeleton": "h36m17",
                 "config_hash": "gpu-check", "detector": {"name": "simulated", "version": "1", "params": {}},
                 "depth_backend": {"name": "simulated", "version": "1", "params": {}, "kind": "metric"},
                 "provenance": {"keypoints_2d": "simulated", "confidence": "simulated", "depth": "simulated"}}
        write_shard(root, f"h36m/S1/Random_{s}/c0", arrays, attrs)
    return root


def train_rate(cache: Path, out: Path, device: str, precision: str, args) -> float:
    secs = []
    for steps in (args.warmup, args.warmup + args.steps):
        cfg = config_from_dict({
            "model": {"name": "simple_baseline", "preset": "small" if args.tiny else None},
            "codec": {"channels": "xycd"},
            "data": {"train": [str(cache)], "num_workers": args.num_workers},
            "optim": {"epochs": 1, "batch_size": args.batch, "max_steps": steps},
            "out": str(out / f"{precision}-{steps}"), "device": device, "precision": precision})
        secs.append(loop_seconds(train(cfg, progress=False, log=lambda s: None).history))
    if secs[1] - secs[0] < 0.5:  # the dry run's steps are this short; a GPU run's must not be
        if not args.tiny:
            raise SystemExit(f"gpu_check: {args.steps} timed {precision} steps took {secs[1] - secs[0]:.1f} s, "
                             "too short to time at train's 0.1 s resolution; raise the steps and the cache size")
        return float("nan")
    return args.batch * args.steps / (secs[1] - secs[0])


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="dry run: tiny model and sizes (CPU)")
    ap.add_argument("--out", help="also write the figures here as JSON")
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    name = torch.cuda.get_device_name(0) if cuda else "CPU (no CUDA)"
    size, batches = (98, [1, 2]) if args.tiny else (518, [1, 8, 32])
    # Enough timed steps that the difference of two runs is seconds long: `train` records each
    # epoch's time to 0.1 s, and one epoch of the cache must hold warm-up + timed steps.
    args.batch, args.steps, args.warmup = (64, 24, 2) if args.tiny else (1024, 200, 10)
    shards, frames = (2, 1024) if args.tiny else (16, 16384)
    args.num_workers = 0 if args.tiny else 4
    print(f"device: {name}; torch {torch.__version__}" + (" (dry run, tiny sizes)" if args.tiny else ""))
    figures: dict = {"device": name, "torch": torch.__version__, "tiny": args.tiny}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = save_depth_model(tmp / "Depth-Anything-V2-Small-random", size, args.tiny)
        rates = depth_rates(model_dir, device, batches, repeats=1 if args.tiny else 5)
        figures["depth_frames_per_s"] = rates
        print("depth stage, Depth Anything V2 Small (random weights) at %d px, 1000x1000 frames: " % size +
              ", ".join(f"batch {b}: {r:.1f} frames/s" for b, r in rates.items()))
        cache = synthetic_cache(tmp / "cache", shards=shards, frames=frames)
        precisions = ["fp32", "bf16"] + (["fp16"] if cuda else [])
        figures["train_samples_per_s"] = {p: train_rate(cache, tmp / "runs", device, p, args) for p in precisions}
        fp32 = figures["train_samples_per_s"]["fp32"]
        print(f"training SimpleBaseline, batch {args.batch}: " + ", ".join(
            f"{p} {r:.0f} samples/s ({r / fp32:.2f}x fp32)" for p, r in figures["train_samples_per_s"].items()))
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
