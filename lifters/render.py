"""Rendered output of `auglift lift`: 2D skeletons over the frames beside the lifted 3D skeleton.

Drawing is OpenCV on numpy frames (one frame in a few ms, against ~100 ms for a matplotlib
figure), and videos are encoded with PyAV (H.264 when the FFmpeg build has it, MPEG-4 Part 2
otherwise). Poses are H36M-17: 2D in pixels, 3D root-relative millimetres in the camera frame
(x right, y down, z forward), shown from a fixed viewpoint turned 30 degrees about the
vertical axis and 15 degrees down, so that depth reads as sideways displacement.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import av
import cv2
import numpy as np

from auglift.core.skeleton import H36M17_LEFT, H36M17_PARENTS

LEFT_RGB = (31, 119, 180)           # matplotlib's blue and red, as lifters/plot.py draws them
RIGHT_RGB = (214, 39, 40)
PANEL_BG = (245, 245, 245)
VIEW_YAW, VIEW_PITCH = np.radians(30.0), np.radians(15.0)
MIN_CONFIDENCE = 0.3                # 2D joints below this are drawn hollow: the detector doubts them


def _colour(joint: int) -> tuple[int, int, int]:
    return LEFT_RGB if joint in H36M17_LEFT else RIGHT_RGB


def draw_skeleton_2d(frame: np.ndarray, keypoints: np.ndarray, confidence: np.ndarray | None = None) -> np.ndarray:
    """A copy of `(H, W, 3)` RGB `frame` with the `(17, 2)` pixel skeleton drawn; NaN joints skipped."""
    out = np.ascontiguousarray(frame).copy()
    scale = max(1, round(max(out.shape[:2]) / 400))
    kp = np.asarray(keypoints, np.float64)
    conf = np.ones(len(kp)) if confidence is None else np.asarray(confidence, np.float64)
    for j, parent in enumerate(H36M17_PARENTS):
        if parent >= 0 and np.isfinite(kp[[j, parent]]).all():
            cv2.line(out, _pt(kp[j]), _pt(kp[parent]), _colour(j), 2 * scale, cv2.LINE_AA)
    for j in range(len(kp)):
        if np.isfinite(kp[j]).all():
            filled = -1 if conf[j] >= MIN_CONFIDENCE else scale
            cv2.circle(out, _pt(kp[j]), 3 * scale, _colour(j), filled, cv2.LINE_AA)
    return out


def view_3d(poses_mm: np.ndarray) -> np.ndarray:
    """`(..., 17, 3)` camera-frame poses -> `(..., 17, 2)` screen coordinates (x right, y down), mm."""
    p = np.asarray(poses_mm, np.float64)
    cy, sy, cp, sp = np.cos(VIEW_YAW), np.sin(VIEW_YAW), np.cos(VIEW_PITCH), np.sin(VIEW_PITCH)
    x = cy * p[..., 0] - sy * p[..., 2]
    z = sy * p[..., 0] + cy * p[..., 2]
    y = cp * p[..., 1] - sp * z
    return np.stack([x, y], axis=-1)


def draw_skeleton_3d(pose_mm: np.ndarray | None, size: int, extent_mm: float = 1000.0,
                     label: str = "") -> np.ndarray:
    """`(size, size, 3)` RGB panel with the root-relative 3D pose; None or NaN gives an empty panel."""
    panel = np.full((size, size, 3), PANEL_BG, np.uint8)
    if label:
        cv2.putText(panel, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (60, 60, 60), 1, cv2.LINE_AA)
    if pose_mm is None or not np.isfinite(pose_mm).all():
        cv2.putText(panel, "no person", (size // 2 - 45, size // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (120, 120, 120), 1, cv2.LINE_AA)
        return panel
    xy = view_3d(pose_mm) * (0.45 * size / extent_mm) + size / 2.0
    scale = max(1, size // 300)
    for j, parent in enumerate(H36M17_PARENTS):
        if parent >= 0:
            cv2.line(panel, _pt(xy[j]), _pt(xy[parent]), _colour(j), 2 * scale, cv2.LINE_AA)
    for j in range(len(xy)):
        cv2.circle(panel, _pt(xy[j]), 3 * scale, _colour(j), -1, cv2.LINE_AA)
    return panel


def compose(frame: np.ndarray, keypoints: np.ndarray, confidence: np.ndarray, pose_mm: np.ndarray | None,
            extent_mm: float, label: str = "") -> np.ndarray:
    """One output frame: the 2D overlay at the frame's height, the 3D panel beside it (even sizes)."""
    left = draw_skeleton_2d(frame, keypoints, confidence)
    h = left.shape[0]
    right = draw_skeleton_3d(pose_mm, h, extent_mm, label)
    out = np.concatenate([left, right], axis=1)
    return out[: out.shape[0] // 2 * 2, : out.shape[1] // 2 * 2]


def pose_extent(poses_mm: np.ndarray) -> float:
    """Half-width (mm) that fits every finite pose of a sequence in the 3D panel, at least 800 mm."""
    flat = view_3d(poses_mm)
    finite = flat[np.isfinite(flat).all(-1)]
    return max(800.0, float(np.abs(finite).max()) * 1.1) if finite.size else 1000.0


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float) -> int:
    """Encode `(H, W, 3)` RGB frames (all one size) to an MP4; returns the number of frames written."""
    path = Path(path)
    n = 0
    with av.open(str(path), mode="w") as container:
        stream = None
        for frame in frames:
            if stream is None:
                codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
                stream = container.add_stream(codec, rate=_rate(fps))
                stream.width, stream.height = frame.shape[1], frame.shape[0]
                stream.pix_fmt = "yuv420p"
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
            n += 1
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    if n == 0:
        path.unlink(missing_ok=True)
        raise ValueError(f"{path}: no frames to write")
    return n


def contact_sheet(frames: list[np.ndarray], columns: int = 4, width: int = 1600) -> np.ndarray:
    """Tile up to `columns * rows` composed frames into one RGB image `width` pixels wide."""
    if not frames:
        raise ValueError("a contact sheet needs at least one frame")
    columns = min(columns, len(frames))
    tile_w = width // columns
    tiles = [cv2.resize(f, (tile_w, max(2, round(f.shape[0] * tile_w / f.shape[1]))), interpolation=cv2.INTER_AREA)
             for f in frames]
    tile_h = max(t.shape[0] for t in tiles)
    rows = -(-len(tiles) // columns)
    sheet = np.full((rows * tile_h, columns * tile_w, 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * tile_h : r * tile_h + t.shape[0], c * tile_w : (c + 1) * tile_w] = t
    return sheet


def sample_indices(n: int, count: int = 8) -> list[int]:
    """Up to `count` frame indices spread evenly over a sequence of n frames."""
    return sorted(set(np.linspace(0, n - 1, min(n, count)).round().astype(int).tolist()))


def blank_frames(n: int, image_size) -> Iterator[np.ndarray]:
    """Grey stand-ins for frames that are not at hand (a cache whose source files are gone)."""
    w, h = int(image_size[0]), int(image_size[1])
    for _ in range(n):
        yield np.full((h, w, 3), 90, np.uint8)


def _pt(p) -> tuple[int, int]:
    return int(round(float(p[0]))), int(round(float(p[1])))


def _rate(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001) if fps and fps > 0 else Fraction(10)
