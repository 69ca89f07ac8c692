"""Ground-truth 2D shards: mocap 3D projected through the dataset's real cameras.

This is the "GT 2D" input of SimpleBaseline-style experiments (Martinez et al. train and test on
2D keypoints projected from the 3D ground truth). One shard per (subject, action, camera), read
through the dataset adapter (`pipeline.sources`):

- keypoints_2d: GT camera-space joints projected with the camera's intrinsics and its
  distortion (Human3.6M model); provenance "ground_truth".
- confidence: the constant 1.0 (GT keypoints are always "detected"); provenance "ground_truth".
- depth: the GT joints' camera z in metres; provenance "ground_truth", depth kind "metric".
  This is an ORACLE cue (exact depth at exact keypoints), which no deployed system has; the
  depth backend is named "ground_truth-oracle" so that it cannot be mistaken for a model.
- joints_3d_cam: the GT in mm; bbox: the keypoints' extent; frame_index: the source frames.

The shards are written through the producers' runner (pipeline/runner.py, inline), so resume,
conflicts and the expected-keys record follow the one shared policy (pipeline/produce.py): a
shard that verifies and carries this builder's config hash is kept.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from auglift.cache import config_hash, key_for, open_shard, write_shard
from auglift.pipeline.produce import Decision
from auglift.pipeline.runner import FAILED, KEPT, WRITTEN, JobResult, Producer, progress_log, run, tally
from auglift.pipeline.sources.base import select_sequences

GT_BUILDER_VERSION = "1"


def gt_config(dataset: str) -> dict:
    """What determines a GT shard's content (hashed into its `config_hash`)."""
    return {"builder": "pipeline.gt_shards", "version": GT_BUILDER_VERSION, "dataset": dataset,
            "keypoints": "projected ground truth, with lens distortion", "depth": "ground-truth camera z, metres"}


def gt_arrays(joints_3d_cam: np.ndarray, cam, frame_index) -> dict[str, np.ndarray]:
    """Shard arrays for one sequence: joints `(T, 17, 3)` camera mm, `cam` a pipeline.camera.Camera."""
    joints = np.asarray(joints_3d_cam, np.float64)
    if joints.ndim != 3 or joints.shape[-1] != 3 or not np.isfinite(joints).all():
        raise ValueError(f"ground-truth joints must be finite (T, K, 3), got shape {joints.shape}")
    if (joints[..., 2] <= 0).any():
        raise ValueError("ground-truth joints behind the camera (z <= 0): wrong camera or units?")
    kp = cam.project(joints, distort=True)
    n, k = joints.shape[:2]
    return {
        "keypoints_2d": kp.astype(np.float32),
        "confidence": np.ones((n, k), np.float32),
        "depth": (joints[..., 2] / 1000.0).astype(np.float32),
        "frame_index": np.asarray(frame_index, np.int64),
        "bbox": np.concatenate([kp.min(axis=1), kp.max(axis=1)], axis=1).astype(np.float32),
        "joints_3d_cam": joints.astype(np.float32),
    }


def gt_attrs(dataset: str, subject: str, action: str, camera: str, cam, image_size, fps, chash: str) -> dict:
    return {
        "dataset": dataset, "subject": subject, "action": action, "camera": camera,
        "image_size": [int(v) for v in image_size], "intrinsics": cam.intrinsics(),
        "fps": float(fps) if fps else None, "skeleton": "h36m17", "config_hash": chash,
        "detector": {"name": "ground_truth", "version": GT_BUILDER_VERSION,
                     "params": {"confidence_constant": 1.0, "distortion": True}},
        "depth_backend": {"name": "ground_truth-oracle", "version": GT_BUILDER_VERSION,
                          "params": {"oracle": True, "unit": "m"}, "kind": "metric"},
        "provenance": {"keypoints_2d": "ground_truth", "confidence": "ground_truth", "depth": "ground_truth",
                       "joints_3d_cam": "ground_truth"},
    }


@dataclass(frozen=True)
class GtJob:
    key: str
    ref: object          # the adapter's SequenceRef


@dataclass
class GtProducer(Producer):
    """GT shards as a producer of pipeline/runner.py: one job per (subject, action, camera)."""
    adapter: object
    dataset: str
    out: str
    backend: str
    config_hash: str
    overwrite: bool = False
    name = "build-gt"

    def write(self, job: GtJob, decision: Decision) -> JobResult:
        ref = job.ref
        seq = self.adapter.load(ref)
        arrays = gt_arrays(seq.joints_3d_cam, seq.cam, seq.frame_index)
        attrs = gt_attrs(self.dataset, str(ref.subject), str(ref.action), str(ref.camera), seq.cam,
                         seq.image_size, seq.fps, self.config_hash)
        write_shard(self.out, job.key, arrays, attrs, backend=self.backend, overwrite=decision.overwrite)
        return JobResult(job.key, WRITTEN, len(arrays["frame_index"]), note=decision.note)

    def kept(self, job: GtJob, path: Path, note: str) -> JobResult:
        with open_shard(path) as s:
            return JobResult(job.key, KEPT, s.n_frames, note=note)

    def failed(self, job: GtJob, error: BaseException) -> JobResult:
        return JobResult(job.key, FAILED, error=f"{job.key}: {type(error).__name__}: {error}")


def build_gt_shards(dataset: str, data_root: str | Path, out: str | Path, *, subjects=None,
                    split: str | None = None, actions=None, backend: str = "zarr", overwrite: bool = False,
                    log: Callable[[str], None] | None = print) -> dict:
    """Write one GT shard per sequence and camera of `dataset` under `out`; returns a summary.

    `actions`: optional glob patterns on action names; `overwrite`: replace shards made with
    another configuration (otherwise they fail). Raises after the run if any failed,
    naming each failed sequence (the good shards stay written).
    """

    t0 = time.perf_counter()
    adapter, refs = select_sequences(dataset, data_root, split, subjects, actions)
    chash = config_hash(gt_config(dataset))
    jobs = [GtJob(key_for(dataset, ref.subject, ref.action, ref.camera), ref) for ref in refs]
    producer = GtProducer(adapter, dataset, str(out), backend, chash, overwrite)
    results = run(producer, jobs, on_result=progress_log(log, len(jobs))).results
    errors = [r.error for r in results if r.status == FAILED]
    summary = {"dataset": dataset, "out": str(out), "config_hash": chash, "shards": tally(results),
               "frames": sum(r.n_frames for r in results), "seconds": round(time.perf_counter() - t0, 1),
               "errors": errors}
    if errors:
        raise RuntimeError(f"{len(errors)} GT shard(s) failed:\n  " + "\n  ".join(errors))
    return summary
