"""The AugLift cue codec (paper, Algorithm 1, steps 2-4), vectorised over batches.

Two halves:
- *Sampling* (`sample_keypoint_depth`): what precompute and the simulator run once per frame to
  read a keypoint's depth off a depth map. Its output goes to the cache unchanged.
- *Encoding* (`CueCodec`): what turns raw cached cues into lifter inputs. It depends on the
  training set (mean box size), so it lives with the model checkpoint, never in the cache.

Functions accept numpy arrays; `sample_keypoint_depth` also accepts torch tensors so that it can
run on the GPU right after the depth model.
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

CHANNEL_SETS = ("xy", "xyc", "xycd", "xyo", "xyd")
DEPTH_MODES = ("root", "root_signed", "nearest_joint")


# --------------------------------------------------------------------------- depth sampling
def disc_offsets(radius: int) -> np.ndarray:
    """`(P, 2)` integer (dy, dx) offsets of the pixels within `radius` of a centre pixel."""
    r = int(radius)
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    inside = dy**2 + dx**2 <= r * r
    return np.stack([dy[inside], dx[inside]], axis=-1)


def sample_keypoint_depth(depth_maps, keypoints, radius: int = 3, return_valid: bool = False):
    """Min of each depth map over the disc of radius `radius` px around each keypoint.

    depth_maps `(B, H, W)`, keypoints `(B, K, 2)` as (x, y) pixels -> depth `(B, K)`.
    The keypoint's pixel is its rounded position; disc pixels past the image border are clamped
    onto it. Keypoints that are NaN or whose pixel lies outside the image give NaN (and
    `valid=False` when `return_valid`), never an exception. NaN map values are ignored; a disc
    with no finite value gives NaN. The minimum is taken because the nearest surface around a
    joint is what occludes it (the paper's occlusion-aware depth).
    """
    if _is_torch(depth_maps) or _is_torch(keypoints):
        return _sample_torch(depth_maps, keypoints, radius, return_valid)
    depth_maps = np.asarray(depth_maps)
    keypoints = np.asarray(keypoints, np.float64)
    if depth_maps.ndim != 3 or keypoints.ndim != 3 or keypoints.shape[-1] != 2:
        raise ValueError(f"expected depth (B,H,W) and keypoints (B,K,2), got {depth_maps.shape} "
                         f"and {keypoints.shape}")
    if depth_maps.shape[0] != keypoints.shape[0]:
        raise ValueError(f"batch sizes differ: {depth_maps.shape[0]} maps, {keypoints.shape[0]} poses")
    B, H, W = depth_maps.shape
    finite = np.isfinite(keypoints).all(-1)
    centre = np.rint(np.where(finite[..., None], keypoints, -1.0))
    valid = finite & (centre[..., 0] >= 0) & (centre[..., 0] < W) & (centre[..., 1] >= 0) & (centre[..., 1] < H)
    centre = np.clip(centre, -1, max(H, W)).astype(np.int64)  # far-off keypoints must not overflow
    cx, cy = centre[..., 0], centre[..., 1]
    r = int(radius)
    oy, ox = _disc_offsets_cached(r)
    # Interior keypoints take one add of precomputed flat offsets; only the few whose disc
    # crosses the border need per-axis clamping.
    base = cy * W + cx + (np.arange(B, dtype=np.int64) * (H * W))[:, None]
    idx = base[..., None] + (oy * W + ox)
    edge = (cx < r) | (cx > W - 1 - r) | (cy < r) | (cy > H - 1 - r)
    if edge.any():
        b_e = np.nonzero(edge)[0]
        ys = np.clip(cy[edge][:, None] + oy, 0, H - 1)
        xs = np.clip(cx[edge][:, None] + ox, 0, W - 1)
        idx[edge] = ys * W + xs + (b_e * (H * W))[:, None]
    flat = depth_maps.reshape(-1) if depth_maps.flags.c_contiguous else np.ascontiguousarray(depth_maps).reshape(-1)
    vals = flat[idx]
    vals[np.isnan(vals)] = np.inf
    depth = vals.min(axis=-1).astype(np.float32)
    depth[~valid | ~np.isfinite(depth)] = np.nan
    return (depth, valid) if return_valid else depth


@functools.lru_cache(maxsize=8)
def _disc_offsets_cached(radius: int) -> tuple[np.ndarray, np.ndarray]:
    off = disc_offsets(radius).astype(np.int64)
    return np.ascontiguousarray(off[:, 0]), np.ascontiguousarray(off[:, 1])


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _sample_torch(depth_maps, keypoints, radius, return_valid):
    import torch

    depth_maps = torch.as_tensor(depth_maps)
    keypoints = torch.as_tensor(keypoints, device=depth_maps.device, dtype=torch.float64)
    B, H, W = depth_maps.shape
    finite = torch.isfinite(keypoints).all(-1)
    centre = torch.round(torch.where(finite[..., None], keypoints, -1.0)).long()
    cx, cy = centre[..., 0], centre[..., 1]
    valid = finite & (cx >= 0) & (cx < W) & (cy >= 0) & (cy < H)
    off = torch.as_tensor(disc_offsets(radius), device=depth_maps.device)
    ys = (cy[..., None] + off[:, 0]).clamp(0, H - 1)
    xs = (cx[..., None] + off[:, 1]).clamp(0, W - 1)
    vals = torch.gather(depth_maps.reshape(B, H * W), 1, (ys * W + xs).reshape(B, -1)).reshape(ys.shape)
    vals = torch.where(torch.isnan(vals), torch.full_like(vals, float("inf")), vals)
    depth = vals.amin(-1).float()
    depth = torch.where(valid & torch.isfinite(depth), depth, torch.full_like(depth, float("nan")))
    return (depth, valid) if return_valid else depth


# ------------------------------------------------------------------------ per-step transforms
def normalize_screen(keypoints: np.ndarray, image_size) -> np.ndarray:
    """Pixels -> screen units: x in [-1, 1], y scaled alike (VideoPose3D's convention).

    image_size is (W, H), broadcastable against the leading axes of `keypoints`.
    """
    wh = np.asarray(image_size, np.float64)
    w, h = wh[..., 0], wh[..., 1]
    out = np.asarray(keypoints, np.float64) / w[..., None, None] * 2.0
    out[..., 0] -= 1.0
    out[..., 1] -= (h / w)[..., None]
    return out


def box_size(keypoints: np.ndarray) -> np.ndarray:
    """`(..., K, 2)` -> `(...)`: mean of the keypoints' extent in x and in y (NaN joints ignored)."""
    kp = np.asarray(keypoints, np.float64)
    with np.errstate(all="ignore"), _quiet_nan():
        extent = np.nanmax(kp, axis=-2) - np.nanmin(kp, axis=-2)
    return extent.mean(axis=-1)


def rescale_box(keypoints: np.ndarray, target_box: float) -> np.ndarray:
    """Scale each pose about its centroid so that its `box_size` becomes `target_box`.

    Poses with a degenerate box (a single valid joint, or none) are returned unchanged.
    """
    kp = np.asarray(keypoints, np.float64)
    with _quiet_nan():
        centroid = np.nanmean(kp, axis=-2, keepdims=True)
    box = box_size(kp)
    with np.errstate(all="ignore"):
        scale = np.where(np.isfinite(box) & (box > 1e-9), target_box / box, 1.0)
    return centroid + (kp - centroid) * scale[..., None, None]


def encode_confidence(confidence: np.ndarray) -> np.ndarray:
    """c in [0, 1] -> 2c - 1 in [-1, 1]; NaN (unknown) becomes -1, like an undetected joint."""
    c = np.nan_to_num(np.asarray(confidence, np.float64), nan=0.0)
    return 2.0 * np.clip(c, 0.0, 1.0) - 1.0


def relative_depth(depth: np.ndarray, mode: str = "root", root: int = 0, d_max: float = 2.0) -> np.ndarray:
    """Per-keypoint depth `(..., K)` relative to a reference joint, clipped.

    - "root" (paper, Algorithm 1): d - d_root clipped to [0, d_max]; joints nearer than the root
      become 0.
    - "root_signed": d - d_root clipped to [-d_max, d_max], keeping joints in front of the root.
    - "nearest_joint" (the authors' released code): d - min_j d_j clipped to [0, d_max].
    Unknown depth (NaN, or a NaN reference) encodes as 0.
    """
    d = np.asarray(depth, np.float64)
    with _quiet_nan():
        if mode in ("root", "root_signed"):
            ref = d[..., root : root + 1]
        elif mode == "nearest_joint":
            ref = np.nanmin(d, axis=-1, keepdims=True)
        else:
            raise ValueError(f"unknown depth mode {mode!r}; choose from {DEPTH_MODES}")
    low = -d_max if mode == "root_signed" else 0.0
    return np.nan_to_num(np.clip(d - ref, low, d_max), nan=0.0)


def relative_inverse_to_depth(inverse_depth: np.ndarray) -> np.ndarray:
    """Relative inverse depth `(..., K)` (larger = nearer, unknown scale a > 0 and shift b per frame)
    -> a scale-free depth-like value per joint (larger = farther), up to a per-frame shift.

    Each frame's values are divided by their spread (max - min over its finite joints) and
    negated, which cancels a; the shift b that is left is removed by `relative_depth`'s
    reference joint. So the encoded d channel is the same for a * v + b, whatever a > 0 and b.
    A frame whose joints all read the same (or with one finite value) gives 0 spread -> NaN.
    """
    v = np.asarray(inverse_depth, np.float64)
    with _quiet_nan(), np.errstate(all="ignore"):
        spread = np.nanmax(v, axis=-1, keepdims=True) - np.nanmin(v, axis=-1, keepdims=True)
        return np.where(spread > 1e-12, -v / spread, np.nan)


def ordinal_depth(joints_3d_cam: np.ndarray, bin_size: float, root: int = 0) -> np.ndarray:
    """ORACLE ordinal depth (paper, Appendix E) from ground-truth camera-space joints.

    Each joint is -1 (in front of the root by more than bin_size / 2), 0 (within it) or +1
    (behind). Units of `bin_size` follow `joints_3d_cam` (mm in shards).
    """
    z = np.asarray(joints_3d_cam, np.float64)[..., 2]
    dz = z - z[..., root : root + 1]
    return np.where(np.abs(dz) > bin_size / 2.0, np.sign(dz), 0.0)


class _quiet_nan:
    """Silence numpy's all-NaN-slice warnings: NaN joints are an expected input here."""

    def __enter__(self):
        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)


# ------------------------------------------------------------------------------ the codec
@dataclass
class CodecConfig:
    channels: str = "xycd"          # one of CHANNEL_SETS
    box_rescale: bool = True         # paper step 3
    depth_mode: str = "root"         # see relative_depth
    d_max: float = 2.0               # metres (the shard's depth unit)
    root: int = 0                    # pelvis in H36M-17
    ordinal_bin: float = 100.0       # mm, for the ORACLE channel of "xyo"
    # Depth family the d channel was learnt from (cache.DEPTH_FAMILIES); None until fitted on
    # training shards. "relative_inverse" is made scale- and shift-free before the usual
    # root-relative clipping; its values then span 1 per frame (no metres), within any d_max >= 1.
    depth_kind: str | None = None


@dataclass
class CueCodec:
    """Raw cached cues -> lifter input `(..., K, C)`; fit on the training set, saved with the model."""

    config: CodecConfig = field(default_factory=CodecConfig)
    mean_box: float | None = None    # mean box size of the training set, in screen units

    def __post_init__(self):
        if self.config.channels not in CHANNEL_SETS:
            raise ValueError(f"unknown channel set {self.config.channels!r}; choose from {CHANNEL_SETS}")

    @property
    def in_channels(self) -> int:
        return len(self.config.channels)

    def fit(self, batches) -> "CueCodec":
        """Mean box size over an iterable of (keypoints_2d (N,K,2) px, image_size (N,2) or (2,))."""
        total, count = 0.0, 0
        for keypoints, image_size in batches:
            box = box_size(normalize_screen(keypoints, image_size))
            box = box[np.isfinite(box) & (box > 0)]
            total += float(box.sum())
            count += box.size
        if count == 0:
            raise ValueError("cannot fit the cue codec: no frame with a valid 2D pose")
        self.mean_box = total / count
        return self

    def encode(self, keypoints_2d, image_size, confidence=None, depth=None, ordinal=None) -> np.ndarray:
        """keypoints `(..., K, 2)` px -> `(..., K, C)` float32 lifter input.

        NaN keypoints (undetected) become 0 with confidence -1, so a lifter never sees NaN.
        """
        cfg = self.config
        xy = normalize_screen(keypoints_2d, image_size)
        if cfg.box_rescale:
            if self.mean_box is None:
                raise ValueError("box rescaling needs the training set's mean box: call fit() first")
            xy = rescale_box(xy, self.mean_box)
        parts = [np.nan_to_num(xy, nan=0.0)]
        for ch in cfg.channels[2:]:
            if ch == "c":
                parts.append(encode_confidence(_need(confidence, "confidence"))[..., None])
            elif ch == "d":
                parts.append(self.encode_depth(_need(depth, "depth"))[..., None])
            elif ch == "o":
                parts.append(np.asarray(_need(ordinal, "ordinal"), np.float64)[..., None])
        return np.concatenate(parts, axis=-1).astype(np.float32)

    def encode_depth(self, depth: np.ndarray) -> np.ndarray:
        """Raw cached depth `(..., K)` of the codec's depth family -> the d channel `(..., K)`."""
        cfg = self.config
        if cfg.depth_kind == "relative_inverse":
            return relative_depth(relative_inverse_to_depth(depth), cfg.depth_mode, cfg.root, cfg.d_max)
        return relative_depth(depth, cfg.depth_mode, cfg.root, cfg.d_max)

    def state_dict(self) -> dict[str, Any]:
        return {"config": asdict(self.config), "mean_box": self.mean_box}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "CueCodec":
        return cls(CodecConfig(**state["config"]), state.get("mean_box"))


def _need(x, name):
    if x is None:
        raise ValueError(f"channel set needs {name!r} but none was given")
    return x
