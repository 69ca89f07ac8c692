"""Virtual cameras: new views of the same motion (perspective augmentation), and 2D for corpora
that have no cameras at all.

A virtual camera stands at a random azimuth, elevation and distance around the sequence's mean
pelvis position and looks at it; it has no lens distortion. Distance is measured from the
farthest the pelvis gets from that mean in the ground plane, so a subject walking around the
room never reaches the camera.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from auglift.core.camera import Camera, look_at


@dataclass(frozen=True)
class VirtualCameraConfig:
    """Ranges the virtual cameras are drawn from (uniformly). Angles in degrees, distance in
    metres beyond the subject's walking radius, focal length in px.

    `up` is the world's up axis; None estimates it from the skeleton (mean pelvis -> thorax
    direction). If more than `max_off_image` of the joint positions fall outside the image the
    focal length is shrunk until they fit.
    """

    num_views: int = 0
    azimuth_deg: tuple[float, float] = (0.0, 360.0)
    elevation_deg: tuple[float, float] = (-5.0, 30.0)
    distance_m: tuple[float, float] = (3.0, 6.5)
    focal_px: tuple[float, float] = (900.0, 1600.0)
    principal_jitter_px: float = 15.0
    roll_deg: tuple[float, float] = (-3.0, 3.0)
    image_size: tuple[int, int] = (1000, 1000)
    up: tuple[float, float, float] | None = None
    max_off_image: float = 0.01

    def __post_init__(self):
        if self.num_views < 0:
            raise ValueError(f"views.num_views must be >= 0, got {self.num_views}")
        if not 0 < self.distance_m[0] <= self.distance_m[1]:
            raise ValueError(f"views.distance_m must be 0 < low <= high, got {self.distance_m}")
        if not 0 < self.focal_px[0] <= self.focal_px[1]:
            raise ValueError(f"views.focal_px must be 0 < low <= high, got {self.focal_px}")


def estimate_up(joints_world: np.ndarray) -> np.ndarray:
    """Unit up vector: the mean pelvis -> thorax direction (people are mostly upright)."""
    v = joints_world[:, 8] - joints_world[:, 0]
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    up = np.nanmean(v, axis=0)
    norm = np.linalg.norm(up)
    if not np.isfinite(norm) or norm < 1e-6:
        raise ValueError("cannot estimate the up direction from this sequence; set views.up")
    return up / norm


def sample_virtual_camera(joints_world: np.ndarray, cfg: VirtualCameraConfig,
                          rng: np.random.Generator, name: str) -> Camera:
    """One random camera looking at the sequence's mean pelvis. joints_world `(T, 17, 3)` mm."""
    J = np.asarray(joints_world, np.float64)
    up = estimate_up(J) if cfg.up is None else np.asarray(cfg.up, np.float64) / np.linalg.norm(cfg.up)
    pelvis = J[:, 0]
    target = np.nanmean(pelvis, axis=0)
    off = pelvis - target
    off -= (off @ up)[:, None] * up
    radius = float(np.nanmax(np.linalg.norm(off, axis=-1)))
    # any horizontal basis will do: the azimuth is uniform
    e1 = np.cross(up, [1.0, 0.0, 0.0])
    if np.linalg.norm(e1) < 1e-6:
        e1 = np.cross(up, [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    az, el, roll = (np.deg2rad(rng.uniform(*r)) for r in (cfg.azimuth_deg, cfg.elevation_deg, cfg.roll_deg))
    dist = rng.uniform(*cfg.distance_m) * 1000.0 + radius
    focal = rng.uniform(*cfg.focal_px)
    W, H = int(cfg.image_size[0]), int(cfg.image_size[1])
    centre = np.array([W / 2.0, H / 2.0]) + rng.uniform(-cfg.principal_jitter_px, cfg.principal_jitter_px, 2)
    direction = np.cos(el) * (np.cos(az) * e1 + np.sin(az) * e2) + np.sin(el) * up
    eye = target + dist * direction
    R = look_at(eye, target, up)
    cr, sr = np.cos(roll), np.sin(roll)
    R = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]]) @ R
    cam = Camera(R=R, T=eye, f=np.array([focal, focal]), c=centre, width=W, height=H, name=name)
    X = cam.world_to_camera(J)
    for _ in range(20):
        uv = cam.project(X, distort=False)
        off_image = ~((uv[..., 0] >= 0) & (uv[..., 0] <= W - 1) & (uv[..., 1] >= 0) & (uv[..., 1] <= H - 1))
        if off_image.mean() <= cfg.max_off_image:
            break
        cam.f = cam.f * 0.85
    return cam
