"""Pinhole cameras with Human3.6M-style distortion, and world <-> camera transforms.

Conventions: `R` maps world axes to camera axes, `T` is the camera centre in world
coordinates, so X_cam = R (X_world - T). Units follow the inputs (mm for H36M, m elsewhere).
The distortion is the one Human3.6M's own code applies (3 radial terms k, 2 tangential p, with
H36M's tangential formula), which differs slightly from OpenCV's.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Camera:
    R: np.ndarray                      # (3, 3) world -> camera rotation
    T: np.ndarray                      # (3,) camera centre in world coordinates
    f: np.ndarray                      # (2,) focal lengths, px
    c: np.ndarray                      # (2,) principal point, px
    k: np.ndarray = field(default_factory=lambda: np.zeros(3))  # radial distortion
    p: np.ndarray = field(default_factory=lambda: np.zeros(2))  # tangential distortion
    width: int = 0
    height: int = 0
    name: str = ""

    def world_to_camera(self, X: np.ndarray) -> np.ndarray:
        return world_to_camera(X, self.R, self.T)

    def camera_to_world(self, X: np.ndarray) -> np.ndarray:
        return camera_to_world(X, self.R, self.T)

    def project(self, X_cam: np.ndarray, distort: bool = True) -> np.ndarray:
        return project(X_cam, self.f, self.c, self.k if distort else None, self.p if distort else None)

    def intrinsics(self) -> dict:
        """JSON-friendly intrinsics, the form stored in shard attributes."""
        return {"f": np.asarray(self.f, float).tolist(), "c": np.asarray(self.c, float).tolist(),
                "k": np.asarray(self.k, float).tolist(), "p": np.asarray(self.p, float).tolist()}


def world_to_camera(X: np.ndarray, R: np.ndarray, T: np.ndarray) -> np.ndarray:
    """`(..., 3)` world points -> camera coordinates."""
    return (np.asarray(X) - np.asarray(T)) @ np.asarray(R).T


def camera_to_world(X: np.ndarray, R: np.ndarray, T: np.ndarray) -> np.ndarray:
    return np.asarray(X) @ np.asarray(R) + np.asarray(T)


def project(X_cam: np.ndarray, f, c, k=None, p=None) -> np.ndarray:
    """`(..., 3)` camera-space points -> `(..., 2)` pixels, with optional H36M distortion.

    Points at or behind the camera plane (z <= 0) project to NaN rather than to a mirrored
    image position.
    """
    X_cam = np.asarray(X_cam, np.float64)
    z = X_cam[..., 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = np.where(z > 0, X_cam[..., :2] / z, np.nan)
    if k is not None or p is not None:
        k = np.zeros(3) if k is None else np.asarray(k, np.float64).ravel()
        p = np.zeros(2) if p is None else np.asarray(p, np.float64).ravel()
        r2 = np.sum(xy**2, axis=-1, keepdims=True)
        radial = 1 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
        tan = p[0] * xy[..., 1:2] + p[1] * xy[..., 0:1]
        xy = xy * (radial + tan) + r2 * np.array([p[1], p[0]])
    return xy * np.asarray(f, np.float64).ravel() + np.asarray(c, np.float64).ravel()


def unproject(uv: np.ndarray, depth: np.ndarray, f, c) -> np.ndarray:
    """Undistorted pixels `(..., 2)` at camera depth `(...)` -> camera points `(..., 3)`."""
    uv = np.asarray(uv, np.float64)
    depth = np.asarray(depth, np.float64)[..., None]
    xy = (uv - np.asarray(c, np.float64).ravel()) / np.asarray(f, np.float64).ravel()
    return np.concatenate([xy * depth, depth], axis=-1)


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Rotation (world -> camera) for a camera at `eye` looking at `target`.

    Camera axes: x right, y down, z forward (the image convention used everywhere here).
    """
    eye, target, up = (np.asarray(a, np.float64) for a in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-8:  # looking straight along `up`: any perpendicular will do
        x = np.cross(z, np.array([1.0, 0.0, 0.0]))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z])
