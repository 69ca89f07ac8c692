"""One sequence seen by one camera -> the arrays and attributes of a simulated shard."""
from __future__ import annotations

import dataclasses
import warnings
import zlib

import numpy as np

from auglift.cache import ordinal_array_name
from auglift.cache.schema import FORMAT_VERSION
from auglift.core.codec import ordinal_depth

from .config import SIMULATOR_VERSION, SimulateConfig
from .noise import add_detector_noise, apply_depth_model, simulate_confidence, simulate_landmark_z
from .render import keypoint_depth, visibility


def shard_rng(seed: int, key: str, stream: int = 0) -> np.random.Generator:
    """Generator for one shard: depends on the seed and the shard key only, never on the order
    or the process in which shards are made."""
    return np.random.default_rng([int(seed), zlib.crc32(key.encode()), int(stream)])


def simulate_view(joints_3d_cam: np.ndarray, cam, image_size, cfg: SimulateConfig,
                  rng: np.random.Generator, keypoints_2d: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Simulated cues for `(T, 17, 3)` camera-space joints in mm seen through `cam`.

    With `keypoints_2d` (real detections, `(T, 17, 2)` px) those are kept and only confidence
    and depth are simulated; otherwise the 2D keypoints are the projected ground truth plus
    detector noise. Returns shard arrays: keypoints_2d, confidence, depth, depth_valid, bbox,
    joints_3d_cam and the ORACLE ordinal_<bin>mm, plus `visibility` (not meant for the shard).
    """
    J = np.asarray(joints_3d_cam, np.float64)
    if J.ndim != 3 or J.shape[1:] != (17, 3):
        raise ValueError(f"joints_3d_cam must be (T, 17, 3), got {J.shape}")
    if not np.isfinite(J).all():
        bad = np.argwhere(~np.isfinite(J).all(-1))[0]
        raise ValueError(f"joints_3d_cam is not finite at row {bad[0]}, joint {bad[1]}")
    W, H = int(image_size[0]), int(image_size[1])
    T = len(J)
    uv_true = cam.project(J)
    steps = range(0, T, cfg.batch_frames)
    vis = np.concatenate([
        visibility(J[s:s + cfg.batch_frames], uv_true[s:s + cfg.batch_frames], cam, (W, H), cfg.body,
                   cfg.radius, cfg.occlusion_margin_mm) for s in steps])
    # The noise is drawn even when real detections replace it, so that depth and confidence
    # draws are the same in both modes.
    noisy, _ = add_detector_noise(uv_true, vis, rng, cfg.noise)
    if keypoints_2d is not None:
        kp = np.asarray(keypoints_2d, np.float64)
        if kp.shape != (T, 17, 2):
            raise ValueError(f"keypoints_2d must be ({T}, 17, 2) like the 3D joints, got {kp.shape}")
    else:
        kp = noisy
    depth, depth_valid = _simulated_depth(J, kp, cam, (W, H), cfg, rng)
    centre = np.rint(uv_true)
    on_image = np.isfinite(uv_true).all(-1) & (centre[..., 0] >= 0) & (centre[..., 0] <= W - 1) & (
        centre[..., 1] >= 0) & (centre[..., 1] <= H - 1)
    confidence = simulate_confidence(vis, on_image & np.isfinite(kp).all(-1), rng, cfg.confidence)
    out = {
        "keypoints_2d": kp.astype(np.float32),
        "confidence": confidence,
        "depth": depth,
        "depth_valid": depth_valid,
        "bbox": person_box(uv_true, (W, H)),
        "joints_3d_cam": J.astype(np.float32),
    }
    for b in cfg.ordinal_bins_mm:
        out[ordinal_array_name(b)] = ordinal_depth(J, b).astype(np.float32)
    out["visibility"] = vis.astype(np.float32)
    return out


def _simulated_depth(J: np.ndarray, kp: np.ndarray, cam, image_size, cfg: SimulateConfig,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(depth (T, 17), depth_valid (T, 17)) of the configured depth kind."""
    if cfg.depth.mode == "landmark_z":
        depth = simulate_landmark_z(J, rng, cfg.depth)
        valid = np.isfinite(kp).all(-1)
        depth[~valid] = np.nan
        return depth, valid
    steps = range(0, len(J), cfg.batch_frames)
    parts = [keypoint_depth(J[s:s + cfg.batch_frames], kp[s:s + cfg.batch_frames], cam, image_size, cfg.body,
                            cfg.radius, cfg.background_offset_m, return_valid=True) for s in steps]
    depth = np.concatenate([p[0] for p in parts])
    valid = np.concatenate([p[1] for p in parts])
    return apply_depth_model(depth, rng, cfg.depth), valid


def person_box(uv: np.ndarray, image_size, pad: float = 0.1) -> np.ndarray:
    """`(T, 4)` x0, y0, x1, y1: the true joints' box grown by `pad` of its size per side (a good
    person detector covers the body, not just the joint centres), clipped to the image; all
    NaN where no joint is on the image."""
    W, H = image_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames are handled below
        lo = np.nanmin(uv, axis=1)
        hi = np.nanmax(uv, axis=1)
    size = hi - lo
    box = np.concatenate([lo - pad * size, hi + pad * size], axis=-1)
    box = np.clip(box, 0, [W - 1, H - 1, W - 1, H - 1])
    empty = ~np.isfinite(box).all(-1) | (hi[:, 0] < 0) | (hi[:, 1] < 0) | (lo[:, 0] > W - 1) | (lo[:, 1] > H - 1)
    box[empty] = np.nan
    return box.astype(np.float32)


def shard_attrs(cfg: SimulateConfig, *, dataset: str, subject: str, action: str, camera: str,
                cam, image_size, fps, config_hash: str, real_keypoints: bool,
                virtual: bool) -> dict:
    """Shard attributes (cache/FORMAT.md section 3), every simulated cue labelled as such."""
    asdict = dataclasses.asdict
    ordinals = {ordinal_array_name(b): "oracle" for b in cfg.ordinal_bins_mm}
    return {
        "format_version": FORMAT_VERSION,
        "dataset": str(dataset), "subject": str(subject), "action": str(action), "camera": str(camera),
        "image_size": [int(image_size[0]), int(image_size[1])],
        "intrinsics": cam.intrinsics(),
        "extrinsics": {"R": np.asarray(cam.R, float).tolist(), "T": np.asarray(cam.T, float).ravel().tolist()},
        "fps": fps,
        "skeleton": "h36m17",
        "simulated": True,
        "virtual_camera": bool(virtual),
        "seed": int(cfg.seed),
        "detector": {
            "name": "simulated", "version": SIMULATOR_VERSION,
            "params": {"keypoints_2d": "dataset detections" if real_keypoints else "projected ground truth + noise",
                       "noise": asdict(cfg.noise), "confidence": asdict(cfg.confidence),
                       "radius": cfg.radius, "occlusion_margin_mm": cfg.occlusion_margin_mm},
        },
        "depth_backend": {
            "name": "simulated-landmark-z" if cfg.depth.mode == "landmark_z" else "simulated-capsules",
            "version": SIMULATOR_VERSION,
            "params": {"body": asdict(cfg.body), "radius": cfg.radius,
                       "background_offset_m": cfg.background_offset_m, "noise": asdict(cfg.depth)},
            "kind": cfg.depth.kind,
        },
        "config_hash": config_hash,
        "ordinal_bins_mm": list(cfg.ordinal_bins_mm),
        "provenance": {
            "keypoints_2d": "real" if real_keypoints else "simulated",
            "confidence": "simulated", "depth": "simulated", "depth_valid": "simulated",
            "bbox": "simulated", "joints_3d_cam": "ground_truth", "ordinal": "oracle", **ordinals,
        },
    }
