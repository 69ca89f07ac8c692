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

Resume, conflicts and the expected-keys record follow the producers' shared policy
(pipeline/produce.py): a shard that verifies and carries this builder's config hash is kept.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from auglift.cache import config_hash, key_for, open_shard, shard_path, write_shard
from auglift.pipeline.produce import CONFLICT, WRITE, after_race, conflict_error, decide, write_expected_keys
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


def build_gt_shards(dataset: str, data_root: str | Path, out: str | Path, *, subjects=None,
                    split: str | None = None, actions=None, backend: str = "zarr", overwrite: bool = False,
                    log: Callable[[str], None] | None = print) -> dict:
    """Write one GT shard per sequence and camera of `dataset` under `out`; returns a summary.

    `actions`: optional glob patterns on action names; `overwrite`: replace shards made with
    another configuration (otherwise they fail). Raises after the loop if any failed,
    naming each failed sequence (the good shards stay written).
    """

    t0 = time.perf_counter()
    adapter, refs = select_sequences(dataset, data_root, split, subjects, actions)
    chash = config_hash(gt_config(dataset))
    counts = {"written": 0, "kept": 0, "failed": 0}
    frames, errors = 0, []
    keys = [key_for(dataset, ref.subject, ref.action, ref.camera) for ref in refs]
    Path(out).mkdir(parents=True, exist_ok=True)
    write_expected_keys(out, dataset, keys)
    for i, (ref, key) in enumerate(zip(refs, keys)):
        path = shard_path(out, key, backend)
        try:
            decision = decide(path, chash, overwrite)
            if decision.action == CONFLICT:
                raise conflict_error(path, decision)
            written = False
            if decision.action == WRITE:
                seq = adapter.load(ref)
                arrays = gt_arrays(seq.joints_3d_cam, seq.cam, seq.frame_index)
                attrs = gt_attrs(dataset, str(ref.subject), str(ref.action), str(ref.camera), seq.cam,
                                 seq.image_size, seq.fps, chash)
                try:
                    write_shard(out, key, arrays, attrs, backend=backend, overwrite=decision.overwrite)
                    written = True
                except FileExistsError as e:  # another run committed this key meanwhile
                    after_race(path, chash, e)
            if written:
                counts["written"] += 1
                frames += len(arrays["frame_index"])
            else:
                with open_shard(path) as s:
                    counts["kept"] += 1
                    frames += s.n_frames
        except Exception as e:  # one bad sequence must not stop the others; reported below
            counts["failed"] += 1
            errors.append(f"{key}: {type(e).__name__}: {e}")
        if log and ((i + 1) % 50 == 0 or i + 1 == len(refs)):
            log(f"[{i + 1}/{len(refs)}] {counts}")
    summary = {"dataset": dataset, "out": str(out), "config_hash": chash, "shards": counts, "frames": frames,
               "seconds": round(time.perf_counter() - t0, 1), "errors": errors}
    if errors:
        raise RuntimeError(f"{len(errors)} GT shard(s) failed:\n  " + "\n  ".join(errors))
    return summary
