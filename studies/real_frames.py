"""The real sample frames (4 H36M, 4 MPI-INF-3DHP) through the real pipeline, for the studies.

`auglift precompute` (its Python function) runs the embedded detector (MediaPipe BlazePose) and
depth backend (BlazePose landmark z, kind "landmark_z") over `<data>/samples`, writing one
single-frame shard per image with its ground-truth 3D. Lifters trained on SIMULATED cues are
then scored on these REAL cues. The study lifters learnt simulated metric depth, so for inputs
with a depth channel the depth kind differs from training: we evaluate anyway and say so.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from auglift.cache import open_shard
from auglift.lifters.checkpoint import build_from_checkpoint, load_checkpoint
from auglift.lifters.shards import resolve_shards
from auglift.lifters.evaluate import Predictions, predict, score
from auglift.pipeline.precompute import PrecomputeConfig, default_root, run_precompute

SAMPLE_PATTERNS = {"3dhp": "samples/3dhp-*", "h36m": "samples/h36m-*", None: None}


@dataclass
class RealEval:
    ok: bool
    reason: str = ""
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)   # label -> evaluate.score result
    frames: list[dict[str, Any]] = field(default_factory=list)         # per frame: key, found, mpjpe per label
    depth_kind: str = ""
    cache: str = ""

    def as_dict(self) -> dict:
        return {"ok": self.ok, "reason": self.reason, "depth_kind": self.depth_kind, "cache": self.cache,
                "frames": self.frames}


def sample_cache(ctx, detector: str = "mediapipe", depth: str = "landmark-z") -> Path:
    """Precompute the sample frames once into `cache/samples_real` (resumed if already there)."""

    out = ctx.work / "cache" / "samples_real"
    cfg = PrecomputeConfig(detector=detector, depth=depth, workers=0)
    report, _ = run_precompute("samples", default_root("samples", ctx.data_root), out, cfg, progress=False, log=None)
    if report["failures"]:
        f = report["failures"][0]
        raise RuntimeError(f"precompute of the sample frames failed for {len(report['failures'])} frame(s), e.g. "
                           f"{f['key']}: {f['message']}")
    return out


def predict_frames(checkpoint: str | Path, shards) -> tuple[np.ndarray, np.ndarray]:
    """(pred, gt) `(N, 17, 3)` mm root-relative, one row per single-frame shard."""

    model, codec = build_from_checkpoint(load_checkpoint(checkpoint))
    preds = predict(model, codec, shards)
    return np.concatenate(preds.pred), np.concatenate(preds.gt)


def evaluate_samples(ctx, checkpoints: Mapping[str, str | Path], dataset: str | None = "3dhp") -> RealEval:
    """Score each checkpoint on the real sample frames of `dataset` ("3dhp", "h36m" or None: all).

    Frames where the detector found nobody are listed but left out of the metrics (their input
    is all "undetected", which no lifter can use).
    """

    ctx.needs_checkpoints()

    try:
        root = sample_cache(ctx)
        shards = resolve_shards(str(root))
    except Exception as e:  # no detector / no samples: the caller reports the column as not run
        return RealEval(False, f"{type(e).__name__}: {e}")
    pattern = SAMPLE_PATTERNS[dataset]
    if pattern is not None:
        shards = [s for s in shards if fnmatch.fnmatchcase(s.key, pattern)]
    found = []
    for s in shards:
        with open_shard(s.path) as sh:
            found.append(bool(np.isfinite(sh.read("bbox")).all()))
    used = [s for s, f in zip(shards, found) if f]
    if not used:
        return RealEval(False, f"the detector found nobody in any {dataset} sample frame", cache=str(root))
    out = RealEval(True, depth_kind="/".join(sorted({s.depth_kind for s in shards})), cache=str(root))
    out.frames = [{"key": s.key, "person_found": f} for s, f in zip(shards, found)]
    for label, ckpt in checkpoints.items():
        pred, gt = predict_frames(ckpt, used)
        per = iter(np.linalg.norm(pred - gt, axis=-1).mean(-1))
        for row, f in zip(out.frames, found):
            row[label] = float(next(per)) if f else None
        out.metrics[label] = score(Predictions(list(used), list(pred[:, None]), list(gt[:, None])))
    return out
