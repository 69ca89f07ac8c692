"""Figures of lifted poses: 3D prediction against ground truth, optionally beside the image.

Poses are `(K, 3)` in camera coordinates (x right, y down, z forward; any unit), drawn with the
vertical axis up (-y) and depth (z) going into the plot. matplotlib is imported lazily and
drawn through the Agg canvas directly, so no global backend is changed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from auglift.core.config_io import writing
from auglift.core.skeleton import H36M17_LEFT, H36M17_PARENTS

GT_COLOR = "#2b2b2b"
LEFT_COLOR = "#1f77b4"
RIGHT_COLOR = "#d62728"


def _bone_color(joint: int, num_joints: int) -> str:
    # Left/right colours only mean something for the H36M-17 layout.
    if num_joints == len(H36M17_PARENTS):
        return LEFT_COLOR if joint in H36M17_LEFT else RIGHT_COLOR
    return RIGHT_COLOR


def _check_pose(pose, parents: Sequence[int], what: str) -> np.ndarray:
    pose = np.asarray(pose, np.float64)
    if pose.ndim != 2 or pose.shape[1] != 3 or pose.shape[0] != len(parents):
        raise ValueError(f"{what}: expected ({len(parents)}, 3) for {len(parents)} parents, got {pose.shape}")
    return pose


def _draw_3d(ax, pred: np.ndarray | None, gt: np.ndarray | None, parents: Sequence[int]) -> None:
    # Plot axes (x, depth, up) = camera (x, z, -y), centred on the ground-truth (or predicted) root.
    ref = gt if gt is not None else pred
    centre = ref[0] if ref is not None else np.zeros(3)

    def view(p: np.ndarray) -> np.ndarray:
        q = p - centre
        return np.stack([q[:, 0], q[:, 2], -q[:, 1]], axis=1)

    radius = 1.0
    for pose, is_gt in ((gt, True), (pred, False)):
        if pose is None:
            continue
        v = view(pose)
        radius = max(radius, float(np.nanmax(np.abs(v))))
        for j, parent in enumerate(parents):
            if parent < 0:
                continue
            seg = v[[parent, j]]
            ax.plot(seg[:, 0], seg[:, 1], seg[:, 2], lw=3 if is_gt else 2,
                    color=GT_COLOR if is_gt else _bone_color(j, len(parents)),
                    alpha=0.45 if is_gt else 1.0)
    ax.set_xlim(-radius, radius)
    ax.set_ylim(-radius, radius)
    ax.set_zlim(-radius, radius)
    ax.set_box_aspect((1, 1, 1))
    ax.view_init(elev=15.0, azim=-70.0)
    ax.text2D(0.02, 0.02, "grey: ground truth, colour: prediction", transform=ax.transAxes, fontsize=7)
    ax.set_xticklabels([])
    ax.set_yticklabels([])
    ax.set_zticklabels([])


def _save(fig, path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    with writing(path):
        fig.savefig(path, format="png", dpi=100)
    return path


def plot_poses_3d(pred, gt, parents: Sequence[int] = H36M17_PARENTS, path="pose.png",
                  title: str | None = None) -> Path:
    """One 3D view: ground truth in translucent grey, prediction coloured left/right."""
    from matplotlib.figure import Figure

    pred = _check_pose(pred, parents, "prediction")
    gt = _check_pose(gt, parents, "ground truth")
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot(1, 1, 1, projection="3d")
    _draw_3d(ax, pred, gt, parents)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_frames(preds, gts, images=None, keypoints_2d=None, path="frames.png",
                parents: Sequence[int] = H36M17_PARENTS, titles: Sequence[str] | None = None) -> Path:
    """A grid like the AugLift paper's Figure 4: one row per frame, the image with its 2D
    keypoints on the left (when `images` or `keypoints_2d` is given), 3D GT vs prediction right.

    preds, gts: `(F, K, 3)`; images: F arrays `(H, W, 3)` (uint8 or float in [0, 1]) or None;
    keypoints_2d: `(F, K, >=2)` pixels (extra columns, e.g. confidence, are ignored).
    """
    from matplotlib.figure import Figure

    preds = np.asarray(preds, np.float64)
    gts = np.asarray(gts, np.float64)
    if preds.ndim != 3 or preds.shape != gts.shape:
        raise ValueError(f"preds and gts must both be (F, K, 3); got {preds.shape} and {gts.shape}")
    n = preds.shape[0]
    for name, seq in (("images", images), ("keypoints_2d", keypoints_2d), ("titles", titles)):
        if seq is not None and len(seq) != n:
            raise ValueError(f"{name} has {len(seq)} entries for {n} frames")
    with_2d = images is not None or keypoints_2d is not None
    cols = 2 if with_2d else 1
    fig = Figure(figsize=(4.5 * cols, 4.2 * n))
    for i in range(n):
        pred = _check_pose(preds[i], parents, f"prediction {i}")
        gt = _check_pose(gts[i], parents, f"ground truth {i}")
        if with_2d:
            ax2 = fig.add_subplot(n, cols, cols * i + 1)
            if images is not None and images[i] is not None:
                ax2.imshow(np.asarray(images[i]))
            if keypoints_2d is not None:
                kp = np.asarray(keypoints_2d[i], np.float64)[:, :2]
                for j, parent in enumerate(parents):
                    if parent >= 0:
                        ax2.plot(kp[[parent, j], 0], kp[[parent, j], 1], lw=2,
                                 color=_bone_color(j, len(parents)))
                ax2.scatter(kp[:, 0], kp[:, 1], s=8, color="white", edgecolors="black", zorder=3)
                if images is None or images[i] is None:
                    ax2.invert_yaxis()  # pixel rows grow downwards
                    ax2.set_aspect("equal")
            ax2.set_axis_off()
        ax3 = fig.add_subplot(n, cols, cols * i + cols, projection="3d")
        _draw_3d(ax3, pred, gt, parents)
        if titles is not None:
            ax3.set_title(titles[i])
    fig.tight_layout()
    return _save(fig, path)
