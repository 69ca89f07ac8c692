"""Occlusion-aware depth and visibility from a coarse capsule body, traced per pixel ray.

Nothing here makes a full depth image. For each keypoint only the pixels of its sampling disc
(radius r, the pixels `sample_keypoint_depth` would read) are traced, analytically, against a
body made of capsules along the H36M-17 bones. Those patch values then go through the same
sampler as real depth maps, so a joint behind another body part reads the occluder's depth, as
in the paper.

Geometry is in camera space, metres. A pixel's ray is t * (x, y, 1) with (x, y) its undistorted
normalised coordinates, so the hit parameter t *is* the depth along the optical axis.

Definitions (the tests check these):
- each joint j has a depth below the skin, r_j (`BodyModel.joint_depth`): its *front* is at
  z_j - r_j. A joint inside a limb has the limb's radius; the nose sits near the face surface.
- a disc pixel (around the joint's true projection) is *occluded* when the first surface on its
  ray lies in front of the joint's front by more than `occlusion_margin_mm`; disc pixels outside
  the image are not visible either (truncation). Visibility is the visible fraction of the disc.
- the depth read at a keypoint is the min over its disc of the first-hit depths, so a visible
  joint reads its own surface, z_j - r_j for a limb seen side-on (a few mm less where the
  surface inside the disc bulges towards the camera), and an occluded joint reads the occluder.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from auglift.core.codec import disc_offsets, sample_keypoint_depth
from auglift.core.skeleton import H36M17_JOINTS, NUM_JOINTS

# Points the capsules run between: the 17 joints, then two derived ones.
# chest_top: 65% of the way from spine to thorax, so the chest's rounded top ends near the
# thorax instead of bulging over the neck and shoulders; head_centre: 60% of the way from
# thorax to head top, behind the nose (H36M's nose sits ~70 mm in front of that axis), so the
# head hides the nose when seen from behind.
_DERIVED = {"chest_top": (7, 8, 0.65), "head_centre": (8, 10, 0.6)}
_POINTS = H36M17_JOINTS + tuple(_DERIVED)

# (end, end, BodyModel field) for every capsule; a sphere is a capsule with equal ends.
_CAPSULES = (
    ("pelvis", "r_hip", "pelvis_hip"), ("pelvis", "l_hip", "pelvis_hip"),
    ("r_hip", "r_knee", "thigh"), ("l_hip", "l_knee", "thigh"),
    ("r_knee", "r_ankle", "shin"), ("l_knee", "l_ankle", "shin"),
    ("pelvis", "spine", "abdomen"), ("spine", "chest_top", "chest"),
    ("thorax", "head_centre", "neck"), ("head_centre", "head_centre", "head"),
    ("thorax", "r_shoulder", "shoulder"), ("thorax", "l_shoulder", "shoulder"),
    ("r_shoulder", "r_elbow", "upper_arm"), ("l_shoulder", "l_elbow", "upper_arm"),
    ("r_elbow", "r_wrist", "forearm"), ("l_elbow", "l_wrist", "forearm"),
    ("r_hip", "r_shoulder", "torso_side"), ("l_hip", "l_shoulder", "torso_side"),
)

# How deep each joint lies below the surface facing the camera, mm (H36M-17 order): the radius
# of the limb around it, or for the thorax the chest's top, for nose and head top the head's.
_JOINT_DEPTH = (120.0, 90.0, 75.0, 50.0, 90.0, 75.0, 50.0, 120.0, 80.0, 60.0, 70.0,
                60.0, 45.0, 35.0, 60.0, 45.0, 35.0)


@dataclass(frozen=True)
class BodyModel:
    """Capsule radii in mm (an average adult) and each joint's depth below the skin."""

    pelvis_hip: float = 90.0
    thigh: float = 75.0
    shin: float = 50.0
    abdomen: float = 120.0      # pelvis - spine
    chest: float = 120.0        # spine - chest_top
    neck: float = 50.0          # thorax - head_centre
    head: float = 95.0          # sphere at head_centre
    shoulder: float = 55.0      # thorax - shoulder
    upper_arm: float = 45.0
    forearm: float = 35.0
    torso_side: float = 55.0    # hip - shoulder, each side: the torso as wide as the shoulders
    joint_depth: tuple[float, ...] = _JOINT_DEPTH

    def __post_init__(self):
        if len(self.joint_depth) != NUM_JOINTS:
            raise ValueError(f"joint_depth needs {NUM_JOINTS} values, got {len(self.joint_depth)}")

    def capsules(self) -> tuple[np.ndarray, np.ndarray]:
        """`(C, 2)` indices into `points()` and `(C,)` radii in mm."""
        idx = {name: i for i, name in enumerate(_POINTS)}
        pairs = np.asarray([(idx[a], idx[b]) for a, b, _ in _CAPSULES], np.int64)
        return pairs, np.asarray([getattr(self, part) for _, _, part in _CAPSULES], np.float64)

    @staticmethod
    def points(joints: np.ndarray) -> np.ndarray:
        """`(..., 17, 3)` joints -> `(..., 19, 3)` capsule end points (joints, then derived)."""
        extra = [(1 - w) * joints[..., a, :] + w * joints[..., b, :] for a, b, w in _DERIVED.values()]
        return np.concatenate([joints, np.stack(extra, axis=-2)], axis=-2)


# ------------------------------------------------------------------------------ pixel rays
def undistort(uv: np.ndarray, f, c, k=None, p=None, iterations: int = 6) -> np.ndarray:
    """Pixels `(..., 2)` -> undistorted normalised coordinates `(..., 2)` (inverse of
    `pipeline.camera.project`'s H36M distortion, by fixed-point iteration)."""
    xy_d = (np.asarray(uv, np.float64) - np.asarray(c, np.float64).ravel()) / np.asarray(f, np.float64).ravel()
    k = np.zeros(3) if k is None else np.asarray(k, np.float64).ravel()
    p = np.zeros(2) if p is None else np.asarray(p, np.float64).ravel()
    if not (k.any() or p.any()):
        return xy_d
    xy = xy_d.copy()
    pp = np.array([p[1], p[0]])
    for _ in range(iterations):
        r2 = np.sum(xy**2, axis=-1, keepdims=True)
        radial = 1 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
        tan = p[0] * xy[..., 1:2] + p[1] * xy[..., 0:1]
        xy = (xy_d - r2 * pp) / (radial + tan)
    return xy


@functools.lru_cache(maxsize=8)
def _offsets_xy(radius: int) -> np.ndarray:
    off = disc_offsets(radius)
    return np.ascontiguousarray(off[:, ::-1]).astype(np.float64)  # (P, 2) as (dx, dy)


def disc_rays(keypoints: np.ndarray, radius: int, cam, image_size) -> tuple[np.ndarray, np.ndarray]:
    """Rays through the disc pixels of each keypoint, exactly the pixels the sampler reads.

    keypoints `(..., 2)` px -> directions `(..., P, 3)` (z = 1) and `(..., P)` bool: pixel
    inside the image. Like the sampler, the centre is the rounded keypoint and pixels past the
    border are clamped onto it (their rays still count as outside for visibility).
    """
    W, H = int(image_size[0]), int(image_size[1])
    centre = np.rint(np.nan_to_num(np.asarray(keypoints, np.float64), nan=-1e6))
    centre = np.clip(centre, -1e6, 1e6)
    pix = centre[..., None, :] + _offsets_xy(int(radius))
    inside = (pix[..., 0] >= 0) & (pix[..., 0] <= W - 1) & (pix[..., 1] >= 0) & (pix[..., 1] <= H - 1)
    pix = np.clip(pix, 0, [W - 1, H - 1])
    if (np.any(cam.k) or np.any(cam.p)) and W * H <= _MAX_TABLE_PIXELS:
        ipix = pix.astype(np.int64)
        return _pixel_rays(*_camera_key(cam, W, H))[ipix[..., 1] * W + ipix[..., 0]], inside
    xy = undistort(pix, cam.f, cam.c, cam.k, cam.p)
    return np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], axis=-1), inside


_MAX_TABLE_PIXELS = 2_100_000   # ~50 MB of rays: up to 1080p gets a per-camera table


def _camera_key(cam, W: int, H: int) -> tuple:
    return (tuple(np.asarray(cam.f, float).ravel()), tuple(np.asarray(cam.c, float).ravel()),
            tuple(np.asarray(cam.k, float).ravel()), tuple(np.asarray(cam.p, float).ravel()), W, H)


@functools.lru_cache(maxsize=8)
def _pixel_rays(f, c, k, p, W: int, H: int) -> np.ndarray:
    """`(H * W, 3)` ray direction (z = 1) of every pixel centre: undistorting once per camera is
    much cheaper than once per disc pixel."""
    ys, xs = np.mgrid[0:H, 0:W]
    xy = undistort(np.stack([xs.ravel(), ys.ravel()], -1).astype(np.float64), f, c, k, p)
    return np.concatenate([xy, np.ones((W * H, 1))], axis=-1)


# ------------------------------------------------------------------------- ray - capsule
def ray_capsule_depth(D: np.ndarray, A: np.ndarray, B: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Depth of the first hit of rays t*D (D_z = 1) with capsules [A, B] of radius r; inf if none.

    D `(N, P, 3)`, A and B `(N, 3)`, r `(N,)` -> `(N, P)`. The capsule is the union of a finite
    cylinder and two end spheres, so its first hit is the nearest of the three first hits.
    Misses are carried as NaN (the sqrt of a negative discriminant) and dropped by fmin.
    """
    Dx, Dy = D[..., 0], D[..., 1]
    ba = B - A
    baba = (ba * ba).sum(-1)[:, None]
    AA = (A * A).sum(-1)[:, None]
    BB = (B * B).sum(-1)[:, None]
    Aba = (A * ba).sum(-1)[:, None]
    r2 = (r * r)[:, None]
    DD = Dx * Dx + Dy * Dy + 1.0
    DA = Dx * A[:, 0:1] + Dy * A[:, 1:2] + A[:, 2:3]
    Dba = Dx * ba[:, 0:1] + Dy * ba[:, 1:2] + ba[:, 2:3]
    with np.errstate(invalid="ignore", divide="ignore"):
        # infinite cylinder: a t^2 - 2 b t + c = 0, first root, kept where it lies between the caps
        a = baba * DD - Dba * Dba
        b = baba * DA - Aba * Dba
        c = baba * (AA - r2) - Aba * Aba
        t = (b - np.sqrt(b * b - a * c)) / a
        y = t * Dba - Aba
        t[~((y >= 0) & (y <= baba) & (t > 0))] = np.nan
        for DS, SS in ((DA, AA), (DA + Dba, BB)):   # the end spheres
            ts = (DS - np.sqrt(DS * DS - DD * (SS - r2))) / DD
            ts[ts <= 0] = np.nan
            t = np.fmin(t, ts)
    t[np.isnan(t)] = np.inf
    return t


def _candidates(D: np.ndarray, A: np.ndarray, B: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Conservative `(F, K, C)` mask of (disc, capsule) pairs whose images can overlap.

    A sphere of radius r at S projects within r * sqrt(1 + |s|^2) / (S_z - r) of s = S_xy / S_z
    (normalised coordinates), and a capsule within that distance of its projected axis. Capsules
    reaching the camera plane are always kept.
    """
    q = D[..., :2].mean(axis=-2)                        # (F, K, 2) disc centres
    spread = np.linalg.norm(D[..., :2] - q[..., None, :], axis=-1).max(-1)  # (F, K)
    zmin = np.minimum(A[..., 2], B[..., 2]) - r        # (F, C)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = A[..., :2] / A[..., 2:3]
        b = B[..., :2] / B[..., 2:3]
        s2 = np.maximum((a**2).sum(-1), (b**2).sum(-1))
        rho = r * np.sqrt(1 + s2) / zmin
        ab = b - a
        w = q[:, :, None, :] - a[:, None]                # (F, K, C, 2)
        u = np.clip((w * ab[:, None]).sum(-1) / np.maximum((ab**2).sum(-1), 1e-18)[:, None], 0, 1)
        dist = np.linalg.norm(w - u[..., None] * ab[:, None], axis=-1)
        near = dist <= rho[:, None] + spread[..., None] + 1e-9
    return near | ~(zmin > 1e-6)[:, None] | ~np.isfinite(dist)


def _trace_min(D, A, B, r, pairs_mask) -> np.ndarray:
    """`(F, K, P)` nearest hit over the candidate capsules in `pairs_mask` (inf = miss)."""
    F, K, P, _ = D.shape
    out = np.full((F * K, P), np.inf)
    fi, ki, ci = np.nonzero(pairs_mask)
    if fi.size:
        t = ray_capsule_depth(D[fi, ki], A[fi, ci], B[fi, ci], r[ci])
        # nonzero lists pairs in (frame, keypoint) order, so each disc's candidates are adjacent
        disc = fi * K + ki
        starts = np.flatnonzero(np.r_[True, disc[1:] != disc[:-1]])
        out[disc[starts]] = np.minimum.reduceat(t, starts, axis=0)
    return out.reshape(F, K, P)


def first_hit_depth(joints_m: np.ndarray, D: np.ndarray, body: BodyModel) -> np.ndarray:
    """`(F, K, P)` depth of the first body surface on each ray (inf where a ray misses).

    joints_m `(F, 17, 3)` camera metres; D `(F, K, P, 3)` rays from `disc_rays`.
    """
    pairs, radii = body.capsules()
    pts = body.points(joints_m)
    A, B, r = pts[:, pairs[:, 0]], pts[:, pairs[:, 1]], radii / 1000.0
    return _trace_min(D, A, B, r, _candidates(D, A, B, r))


def visibility(joints_3d_cam: np.ndarray, uv_true: np.ndarray, cam, image_size, body: BodyModel,
               radius: int = 3, occlusion_margin_mm: float = 30.0) -> np.ndarray:
    """`(F, 17)` visible fraction of each joint's disc around its true projection `uv_true`."""
    J = np.asarray(joints_3d_cam, np.float64) / 1000.0
    D, inside = disc_rays(uv_true, radius, cam, image_size)
    t = first_hit_depth(J, D, body)
    front = J[..., 2] - (np.asarray(body.joint_depth) + occlusion_margin_mm) / 1000.0
    vis = (inside & ~(t < front[..., None])).mean(axis=-1)
    vis[~np.isfinite(uv_true).all(-1) | ~(J[..., 2] > 0)] = 0.0
    return vis


def keypoint_depth(joints_3d_cam: np.ndarray, keypoints: np.ndarray, cam, image_size,
                   body: BodyModel, radius: int = 3, background_offset_m: float | None = 2.5,
                   return_valid: bool = False):
    """`(F, K)` depth in metres read at `keypoints` (px, `(F, K, 2)`) off the rendered body.

    Each keypoint's disc is traced and handed to `sample_keypoint_depth` as a small patch, so the
    result is the min over the disc, as for a real depth map. Rays missing the body see a wall
    `background_offset_m` behind the pelvis; with None they see nothing, and a disc that sees
    nothing reads the joint's own depth.
    """
    J = np.asarray(joints_3d_cam, np.float64) / 1000.0
    F, K = keypoints.shape[:2]
    D, _ = disc_rays(keypoints, radius, cam, image_size)
    t = first_hit_depth(J, D, body)
    if background_offset_m is not None:
        t = np.minimum(t, (J[:, 0, 2] + background_offset_m)[:, None, None])
    t[~np.isfinite(t)] = np.nan
    size = 2 * int(radius) + 1
    off = disc_offsets(radius) + int(radius)
    patches = np.full((F * K, size, size), np.nan)
    patches[:, off[:, 0], off[:, 1]] = t.reshape(F * K, -1)
    centre = np.full((F * K, 1, 2), float(radius))
    depth = sample_keypoint_depth(patches, centre, radius).reshape(F, K)
    if background_offset_m is None:
        depth = np.where(np.isnan(depth), J[..., 2].astype(np.float32), depth)
    W, H = int(image_size[0]), int(image_size[1])
    kp = np.asarray(keypoints, np.float64)
    cxy = np.rint(kp)
    valid = np.isfinite(kp).all(-1) & (cxy[..., 0] >= 0) & (cxy[..., 0] < W) & (cxy[..., 1] >= 0) & (cxy[..., 1] < H)
    depth = np.where(valid, depth, np.nan).astype(np.float32)
    return (depth, valid) if return_valid else depth
