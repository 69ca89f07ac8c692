"""Study 6 (paper Section 4.4): per-frame latency of each AugLift stage on this machine.

Three stages are timed one frame at a time (batch 1, as a live system would run them), after
warm-up, as the median over repeats:

- the 2D detector: MediaPipe BlazePose (the weights embedded in mediapipe) on the real sample
  frames, through the project's detector backend;
- the depth model: the Depth Anything v2 *Small* architecture (DINOv2-S backbone + DPT head,
  24.8 M parameters) at the paper's 518 x 518 input. No pretrained weights can be installed
  offline, so it is built from its configuration with RANDOM weights: the time is valid for the
  architecture (the same operations on the same shapes), its output is meaningless;
- the lifters with xy (2 channels) and xycd (4 channels) input, at the papers' sizes.

A GPU is not used even when present (set `device` in the full config to time one).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from auglift.lifters.models import build_model, count_parameters
from auglift.lifters.provenance import load_avg
from auglift.pipeline.detect import build_detector

from .common import StudyResult, md_table
from .paper import anchor, sources_note

TITLE = "Latency per frame (paper Section 4.4)"
# The paper's stage (its own model, on a GPU) beside each of ours: anchor key and its model's name.
PAPER_STAGES = {"detector": ("latency_detector_ms", "HRNet-W48"), "depth": ("latency_depth_ms", "Depth Anything v2 Small"),
                "lifter": ("latency_lifter_ms", "MotionBERT")}


def paper_cell(stage: str) -> str:
    """The paper's per-frame GPU time of `stage`, naming its model (not always ours)."""
    key, model = PAPER_STAGES[stage]
    return f"{anchor(key).cell()} ({model}, GPU)"
TRAINS = False   # no lifter training: the task grid runs it with the pages (grid.py)


@dataclass
class Config:
    warmup: int = 2
    repeats: int = 10
    depth_input: int = 518                     # the paper's Depth Anything input side
    lifters: tuple[tuple[str, str], ...] = (("simple_baseline", "paper"), ("videopose3d", "vp3d-27"),
                                            ("videopose3d", "vp3d-243"))
    device: str = "cpu"

    @classmethod
    def for_size(cls, size: str) -> "Config":
        return cls() if size == "small" else cls(warmup=5, repeats=50)


def data_description(ctx, cfg: Config) -> dict:
    return {"frames": f"{ctx.data_root}/samples/*.jpg (8 real frames: 4 H36M, 4 MPI-INF-3DHP)",
            "depth weights": "RANDOM (architecture timing only)"}


def time_call(fn: Callable[[], object], warmup: int, repeats: int) -> list[float]:
    """Wall times in milliseconds of `repeats` calls after `warmup` untimed calls."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(1000.0 * (time.perf_counter() - t0))
    return out


def stats_ms(times: list[float]) -> dict[str, float]:
    arr = np.asarray(times, np.float64)
    return {"median_ms": float(np.median(arr)), "p90_ms": float(np.percentile(arr, 90)),
            "mean_ms": float(arr.mean()), "fps": float(1000.0 / np.median(arr)), "n": int(arr.size)}


def depth_anything_v2_small(input_size: int = 518):
    """Depth Anything v2 Small, built from its configuration (RANDOM weights)."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    backbone = Dinov2Config(hidden_size=384, num_attention_heads=6, num_hidden_layers=12, patch_size=14,
                            image_size=input_size, out_features=["stage3", "stage6", "stage9", "stage12"],
                            out_indices=[3, 6, 9, 12], reshape_hidden_states=False)
    cfg = DepthAnythingConfig(backbone_config=backbone, fusion_hidden_size=64, head_hidden_size=32,
                              neck_hidden_sizes=[48, 96, 192, 384], reassemble_hidden_size=384,
                              reassemble_factors=[4, 2, 1, 0.5], patch_size=14, depth_estimation_type="relative")
    return DepthAnythingForDepthEstimation(cfg).eval()


def time_depth(cfg: Config) -> dict:
    import torch

    model = depth_anything_v2_small(cfg.depth_input).to(cfg.device)
    x = torch.randn(1, 3, cfg.depth_input, cfg.depth_input, device=cfg.device)
    params = sum(p.numel() for p in model.parameters())

    def call():
        with torch.inference_mode():
            model(pixel_values=x).predicted_depth.cpu()

    return {**stats_ms(time_call(call, cfg.warmup, cfg.repeats)), "params_m": params / 1e6}


def time_lifters(cfg: Config) -> list[dict]:
    import torch

    rows = []
    for name, preset in cfg.lifters:
        for channels in ("xy", "xycd"):
            model = build_model(name, len(channels), preset=preset).to(cfg.device).eval()
            x = torch.randn(1, model.receptive_field, 17, len(channels), device=cfg.device)

            def call():
                with torch.inference_mode():
                    model(x).cpu()

            rows.append({"model": name, "preset": preset, "channels": channels,
                         "frames_in": int(model.receptive_field), "params_m": count_parameters(model) / 1e6,
                         **stats_ms(time_call(call, cfg.warmup, cfg.repeats))})
    return rows


def sample_images(data_root: Path) -> list[Path]:
    images = sorted((Path(data_root) / "samples").glob("*.jpg"))
    if not images:
        raise FileNotFoundError(f"{data_root}/samples: no .jpg sample frames found")
    return images


def time_detector(ctx, cfg: Config) -> dict:
    """BlazePose through the project's detector backend, one frame at a time on the samples."""
    import cv2

    frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sample_images(ctx.data_root)]
    detector = build_detector("mediapipe")
    times: list[float] = []
    found = 0
    try:
        for _ in range(cfg.warmup):
            detector(frames[0][None])
        for _ in range(cfg.repeats):
            for f in frames:
                t0 = time.perf_counter()
                det = detector(f[None])
                times.append(1000.0 * (time.perf_counter() - t0))
                found += int(det.found.sum())
    finally:
        detector.close()
    sizes = sorted({f"{f.shape[1]}x{f.shape[0]}" for f in frames})
    return {**stats_ms(times), "image_sizes": sizes, "person_found_rate": found / max(len(times), 1)}


def paper_share() -> str:
    """The depth model's share of the paper's own detector + depth + lifter time, as a sentence."""
    ms = {stage: anchor(key).value for stage, (key, _) in PAPER_STAGES.items()}
    total = sum(ms.values())
    return (f"In the paper (GPU) the three stages take {ms['detector']:g} + {ms['depth']:g} + {ms['lifter']:g} = "
            f"{total:.1f} ms/frame, the depth model {ms['depth'] / total * 100:.0f}% of it.")


def run(ctx, cfg: Config) -> StudyResult:
    import torch

    res = StudyResult("latency", TITLE,
                      "Per-frame wall time of each AugLift stage on this machine, batch 1, median after "
                      "warm-up. The depth model has RANDOM weights (no pretrained weights can be installed "
                      "offline): its time is valid for the architecture, not its output. The Paper column "
                      "gives the paper's own per-frame GPU time of the same stage, with its model (HRNet-W48 and "
                      "MotionBERT are not our detector and lifters; Depth Anything v2 Small is our depth "
                      "architecture); ours are CPU times.")
    rows, data = [], {"threads": torch.get_num_threads(), "device": cfg.device, "load_avg_1min_before": load_avg()}
    try:
        det = time_detector(ctx, cfg)
        data["detector"] = det
        rows.append(["2D detector: MediaPipe BlazePose (embedded weights)", ", ".join(det["image_sizes"]),
                     det["median_ms"], det["p90_ms"], det["fps"], paper_cell("detector")])
    except Exception as e:  # the detector backend may be missing; the other timings still stand
        res.complete = False
        data["detector"] = {"error": f"{type(e).__name__}: {e}"}
        rows.append(["2D detector: MediaPipe BlazePose", "not run", None, None, None, paper_cell("detector")])
        res.add("Detector not timed", f"The detector could not run here: `{type(e).__name__}: {e}`.")
    dep = time_depth(cfg)
    data["depth"] = dep
    rows.append([f"depth: Depth Anything v2 Small architecture ({dep['params_m']:.1f} M params, RANDOM weights)",
                 f"{cfg.depth_input}x{cfg.depth_input}", dep["median_ms"], dep["p90_ms"], dep["fps"], paper_cell("depth")])
    lif = time_lifters(cfg)
    data["lifters"] = lif
    for r in lif:
        rows.append([f"lifter: {r['model']} [{r['preset']}] {r['channels']} ({r['params_m']:.2f} M params)",
                     f"{r['frames_in']} x 17 x {len(r['channels'])}", r["median_ms"], r["p90_ms"], r["fps"],
                     paper_cell("lifter")])
    res.add("Per-frame latency", md_table(["Stage", "Input", "Median ms", "p90 ms", "Frames/s", "Paper"], rows,
                                          numeric_from=2))
    overhead = [r for r in lif if r["channels"] == "xycd"]
    det_ms = data["detector"].get("median_ms")
    if det_ms is not None and overhead:
        base = det_ms + min(r["median_ms"] for r in lif if r["channels"] == "xy")
        full = det_ms + dep["median_ms"] + min(r["median_ms"] for r in overhead)
        data["pipeline_ms"] = {"xy": base, "xycd": full}
        res.add("What AugLift adds", f"Detector + fastest lifter: {base:.1f} ms/frame with xy, {full:.1f} ms/frame "
                f"with xycd (the depth model is {dep['median_ms'] / full * 100:.0f}% of it). Widening the lifter's "
                "input from 2 to 4 channels costs next to nothing; the depth model dominates, as the paper says "
                "qualitatively. On a GPU the depth model is far cheaper; these are CPU numbers. "
                + paper_share())
    load, before = load_avg(), data["load_avg_1min_before"]
    data["load_avg_1min_after"] = load
    note = (f"Timed with torch using {data['threads']} threads on {os.cpu_count()} CPUs; 1-minute load average "
            f"{before} before the run (other processes) and {load} at its end (this run's threads included).")
    # Only the load before the run says whether other processes competed: at the end it counts this run.
    if before is not None and before > 0.5 * (os.cpu_count() or 1):
        note += (" Other processes were competing for the CPU during this run, so these times are upper bounds; "
                 "rerun `auglift study run latency` on an idle machine for clean numbers.")
    res.add("Conditions", note)
    res.add("Paper numbers", sources_note([key for key, _ in PAPER_STAGES.values()]))
    res.data = data
    return res
