"""Shared builders for the cache tests (no tests here).

`synthetic_sequence` renders a walking H36M-17 skeleton through a Human3.6M-like pinhole camera,
with missed detections, zero-confidence keypoints and NaN depth, so the arrays look like what
the pipeline writes. `h36m_sequence` builds the same arrays from the real Human3.6M data.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from auglift.cache import config_hash, key_for
from auglift.core.camera import project, world_to_camera
from auglift.core.skeleton import H36M32_TO_17, to_h36m17

F = (1145.0, 1143.8)
C = (512.5, 515.5)

# A standing H36M-17 pose in camera axes (x right, y down, z forward), millimetres, pelvis at 0.
REST_POSE = np.array([
    [0, 0, 0], [-130, 0, 0], [-130, 440, 20], [-130, 870, 0], [130, 0, 0], [130, 440, 20],
    [130, 870, 0], [0, -230, 0], [0, -480, 0], [0, -560, -30], [0, -680, 0], [170, -450, 0],
    [200, -200, 10], [220, 30, 30], [-170, -450, 0], [-200, -200, 10], [-220, 30, 30],
], np.float64)


def synthetic_sequence(n: int = 300, seed: int = 0, frame_step: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    root = np.concatenate([-900 + 6.0 * t, 30 * np.sin(t / 4), 4500 + 400 * np.sin(t / 50)], axis=1)
    swing = np.zeros((n, 17, 3))
    swing[:, [2, 3, 13, 16], 2] = 150 * np.sin(t / 3)   # right leg and left arm forward
    swing[:, [5, 6, 12, 15], 2] = -150 * np.sin(t / 3)
    joints = root[:, None, :] + REST_POSE[None] + swing + rng.normal(0, 5, (n, 17, 3))
    kp = project(joints, F, C) + rng.normal(0, 3, (n, 17, 2))
    conf = np.clip(rng.normal(0.85, 0.1, (n, 17)), 0.05, 1.0)
    conf[rng.random((n, 17)) < 0.05] = 0.0            # occluded: score 0, coordinates kept
    missed = slice(n // 7, n // 7 + 5)                 # a run of frames with no person found
    conf[missed] = 0.0
    kp[missed] = np.nan
    depth = joints[..., 2] / 1000.0 + rng.normal(0, 0.05, (n, 17))
    depth[(conf == 0) | (rng.random((n, 17)) < 0.1)] = np.nan
    bbox = _boxes(kp)
    return {
        "keypoints_2d": kp.astype(np.float32),
        "confidence": conf.astype(np.float32),
        "depth": depth.astype(np.float32),
        "frame_index": np.arange(n, dtype=np.int64) * frame_step + 3,
        "bbox": bbox.astype(np.float32),
        "joints_3d_cam": joints.astype(np.float32),
    }


def _boxes(kp: np.ndarray) -> np.ndarray:
    box = np.full((len(kp), 4), np.nan)
    seen = np.isfinite(kp).all(axis=(1, 2))
    box[seen, :2] = kp[seen].min(axis=1) - 20
    box[seen, 2:] = kp[seen].max(axis=1) + 20
    return box


def make_attrs(dataset="h36m", subject="S1", action="Walking 1", camera="54138969",
               depth_kind="simulated_metric", **extra) -> dict:
    attrs = {
        "dataset": dataset, "subject": subject, "action": action, "camera": camera,
        "image_size": [1000, 1002],
        "intrinsics": {"f": list(F), "c": list(C), "k": [-0.2071, 0.2478, -0.0031],
                       "p": [-0.0014, -0.0010]},
        "fps": 50.0,
        "skeleton": "h36m17",
        "detector": {"name": "projected_gt", "version": None, "params": {"noise_px": 3.0}},
        "depth_backend": {"name": "gt_z", "version": "1", "params": {"noise_m": 0.05}, "kind": depth_kind},
        "config_hash": config_hash({"detector": "projected_gt", "noise_px": 3.0}),
        "provenance": {"keypoints_2d": "simulated", "confidence": "simulated",
                       "depth": "none" if depth_kind == "none" else "simulated",
                       "joints_3d_cam": "ground_truth"},
    }
    attrs.update(extra)
    return attrs


def key_of(attrs: dict) -> str:
    return key_for(attrs["dataset"], attrs["subject"], attrs["action"], attrs["camera"])


def h36m_sequence(data: Path, subject="S1", action="Walking 1", cam_index=1,
                  cam_id="54138969") -> tuple[dict[str, np.ndarray], dict]:
    """Real Human3.6M: Stacked-Hourglass 2D detections and GT 3D joints in camera mm.

    SH gives no scores, so confidence is simulated from the detection's distance to the GT
    projection; depth is the GT camera z sampled at each joint (oracle). Both are labelled so.
    """
    h36m = data / "h36m"
    with h5py.File(h36m / subject / "MyPoses" / "3D_positions" / f"{action}.h5", "r") as f:
        world = f["3D_positions"][()].T.reshape(-1, 32, 3)[:, list(H36M32_TO_17)]
    sh_name = f"{action.replace(' ', '_')}.{cam_id}.h5"
    with h5py.File(h36m / subject / "StackedHourglass" / sh_name, "r") as f:
        sh = f["poses"][()]
    with h5py.File(h36m / "cameras.h5", "r") as f:
        cam = f[f"subject{subject[1:]}/camera{cam_index}"]
        R, T = cam["R"][()].T, cam["T"][()].ravel()
        fcl, c, k, p = (cam[n][()].ravel() for n in ("f", "c", "k", "p"))
    joints = world_to_camera(world, R, T)
    kp = to_h36m17(sh, "mpii16")
    gt2d = project(joints, fcl, c, k, p)
    err = np.linalg.norm(kp - gt2d, axis=-1)
    conf = np.exp(-err / 30.0)
    depth = joints[..., 2] / 1000.0
    depth[conf < 0.2] = np.nan          # pretend the depth sampler rejects badly placed joints
    n = len(kp)
    arrays = {
        "keypoints_2d": kp.astype(np.float32),
        "confidence": conf.astype(np.float32),
        "depth": depth.astype(np.float32),
        "frame_index": np.arange(n, dtype=np.int64) * 5,   # the shared copy keeps every 5th frame
        "bbox": _boxes(kp).astype(np.float32),
        "joints_3d_cam": joints.astype(np.float32),
    }
    attrs = make_attrs(subject=subject, action=action, camera=cam_id, depth_kind="metric")
    attrs.update(
        intrinsics={"f": fcl.tolist(), "c": c.tolist(), "k": k.tolist(), "p": p.tolist()},
        detector={"name": "stacked_hourglass", "version": None, "params": {"confidence": "simulated"}},
        depth_backend={"name": "gt_camera_z", "version": None, "params": {}, "kind": "metric"},
        provenance={"keypoints_2d": "real", "confidence": "simulated", "depth": "oracle",
                    "joints_3d_cam": "ground_truth"},
    )
    return arrays, attrs
