"""Skeleton layouts and conversions to the canonical Human3.6M-17 layout.

Every shard and every lifter in auglift uses H36M-17 (the layout of VideoPose3D, MotionBERT and
the AugLift paper). Other datasets and detectors are mapped onto it by a fixed linear map: each
H36M joint is a weighted sum of source joints. Most are copies (weight 1); a few are synthesised,
and the table `SYNTHESISED` says how, so that the approximation is visible wherever it is used.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

H36M17_JOINTS: tuple[str, ...] = (
    "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine", "thorax",
    "neck", "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
)
H36M17_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
H36M17_LEFT: tuple[int, ...] = (4, 5, 6, 11, 12, 13)
H36M17_RIGHT: tuple[int, ...] = (1, 2, 3, 14, 15, 16)
ROOT = 0
NUM_JOINTS = 17

# 32-joint indices of the raw H36M mocap that make H36M-17 (the widely used subset).
H36M32_TO_17: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)

COCO17_JOINTS: tuple[str, ...] = (
    "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
    "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle",
)
BLAZEPOSE33_JOINTS: tuple[str, ...] = (
    "nose", "l_eye_inner", "l_eye", "l_eye_outer", "r_eye_inner", "r_eye", "r_eye_outer",
    "l_ear", "r_ear", "mouth_l", "mouth_r", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
    "l_wrist", "r_wrist", "l_pinky", "r_pinky", "l_index", "r_index", "l_thumb", "r_thumb",
    "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle", "l_heel", "r_heel",
    "l_foot_index", "r_foot_index",
)
MPII16_JOINTS: tuple[str, ...] = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "spine", "thorax",
    "head", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
)
MPI3DHP28_JOINTS: tuple[str, ...] = (
    "spine3", "spine4", "spine2", "spine", "pelvis", "neck", "head", "head_top", "l_clavicle",
    "l_shoulder", "l_elbow", "l_wrist", "l_hand", "r_clavicle", "r_shoulder", "r_elbow",
    "r_wrist", "r_hand", "l_hip", "l_knee", "l_ankle", "l_foot", "l_toe", "r_hip", "r_knee",
    "r_ankle", "r_foot", "r_toe",
)
# The 17-joint subset of 3DHP used by its test set (and by the shared samples), in that order.
MPI3DHP17_JOINTS: tuple[str, ...] = (
    "head_top", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "pelvis", "spine", "head",
)
MPI3DHP28_TO_17: tuple[int, ...] = (7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 4, 3, 6)
SMPL24_JOINTS: tuple[str, ...] = (
    "pelvis", "l_hip", "r_hip", "spine1", "l_knee", "r_knee", "spine2", "l_ankle", "r_ankle",
    "spine3", "l_foot", "r_foot", "neck", "l_collar", "r_collar", "head", "l_shoulder",
    "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist", "l_hand", "r_hand",
)

Combo = tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class SkeletonMap:
    """A linear map from a source layout to H36M-17: `combos[j]` lists (source joint, weight)."""

    source: str
    num_source_joints: int
    combos: tuple[Combo, ...]

    def matrix(self) -> np.ndarray:
        m = np.zeros((NUM_JOINTS, self.num_source_joints), np.float64)
        for j, combo in enumerate(self.combos):
            for i, w in combo:
                m[j, i] += w
        return m


def _copy(*indices: int) -> tuple[Combo, ...]:
    return tuple(((i, 1.0),) for i in indices)


def _mid(a: int, b: int) -> Combo:
    return ((a, 0.5), (b, 0.5))


def _build_maps() -> dict[str, SkeletonMap]:
    coco_pelvis = _mid(11, 12)
    coco_thorax = _mid(5, 6)
    coco = (
        coco_pelvis, *_copy(12, 14, 16, 11, 13, 15),
        ((11, 0.25), (12, 0.25), (5, 0.25), (6, 0.25)),  # spine: mid pelvis-thorax
        coco_thorax,
        ((0, 1.0),),  # neck/nose
        ((1, 1.5), (2, 1.5), (0, -2.0)),  # head: eyes midpoint pushed 2x further from the nose
        *_copy(5, 7, 9, 6, 8, 10),
    )
    blaze = (
        _mid(23, 24), *_copy(24, 26, 28, 23, 25, 27),
        ((23, 0.25), (24, 0.25), (11, 0.25), (12, 0.25)),
        _mid(11, 12),
        ((0, 1.0),),
        ((2, 1.0), (5, 1.0), (9, -0.5), (10, -0.5)),  # head: eyes midpoint + (eyes - mouth)
        *_copy(11, 13, 15, 12, 14, 16),
    )
    mpii = (
        *_copy(6, 2, 1, 0, 3, 4, 5),
        _mid(6, 8),  # spine: SH's own "spine" sits near the thorax, so use pelvis-thorax middle
        ((8, 1.0),),
        _mid(8, 9),  # neck/nose: thorax-head middle
        ((9, 1.0),),
        *_copy(13, 14, 15, 12, 11, 10),
    )
    h3dhp17 = _copy(14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4)
    h3dhp28 = tuple(((MPI3DHP28_TO_17[c[0][0]], 1.0),) for c in h3dhp17)
    smpl = (
        *_copy(0, 2, 5, 8, 1, 4, 7, 6, 12, 15),
        ((15, 1.5), (12, -0.5)),  # head: half a neck-to-head length beyond the head joint
        *_copy(16, 18, 20, 17, 19, 21),
    )
    # Fit3D's joints3d_25 starts with the 17 H36M joints in H36M order (the extra 8 are feet
    # and hands), which is how the AugLift release reduces it.
    fit3d = _copy(*range(17))
    return {
        "h36m17": SkeletonMap("h36m17", 17, _copy(*range(17))),
        "h36m32": SkeletonMap("h36m32", 32, _copy(*H36M32_TO_17)),
        "coco17": SkeletonMap("coco17", 17, coco),
        "blazepose33": SkeletonMap("blazepose33", 33, blaze),
        "mpii16": SkeletonMap("mpii16", 16, mpii),
        "3dhp17": SkeletonMap("3dhp17", 17, h3dhp17),
        "3dhp28": SkeletonMap("3dhp28", 28, h3dhp28),
        "smpl24": SkeletonMap("smpl24", 24, smpl),
        "fit3d25": SkeletonMap("fit3d25", 25, fit3d),
    }


SKELETON_MAPS: dict[str, SkeletonMap] = _build_maps()

# Human-readable record of every joint that is not a plain copy, per source layout.
SYNTHESISED: dict[str, dict[str, str]] = {
    "coco17": {"pelvis": "mid-hips", "spine": "mean of hips and shoulders",
               "thorax": "mid-shoulders", "neck": "nose",
               "head": "eyes midpoint + 2 x (eyes midpoint - nose) (approximates the head top)"},
    "blazepose33": {"pelvis": "mid-hips", "spine": "mean of hips and shoulders",
                    "thorax": "mid-shoulders", "neck": "nose",
                    "head": "eyes midpoint + (eyes midpoint - mouth midpoint)"},
    "mpii16": {"spine": "mid pelvis-thorax (the SH 'spine' sits near the thorax)",
               "neck": "mid thorax-head"},
    "smpl24": {"spine": "spine2", "thorax": "neck", "neck": "head",
               "head": "head + 0.5 x (head - neck)"},
    "3dhp17": {}, "3dhp28": {}, "h36m32": {}, "h36m17": {},
    "fit3d25": {"all": "first 17 joints of joints3d_25 (H36M order)"},
}


def to_h36m17(points: np.ndarray, source: str) -> np.ndarray:
    """Map `(..., K_src, D)` points of layout `source` to `(..., 17, D)`.

    A NaN source joint only makes NaN the H36M joints built from it.
    """
    smap = _get_map(source)
    points = np.asarray(points)
    if points.shape[-2] != smap.num_source_joints:
        raise ValueError(f"{source} has {smap.num_source_joints} joints, got shape {points.shape}")
    m = smap.matrix()
    used = m != 0
    out = np.empty(points.shape[:-2] + (NUM_JOINTS, points.shape[-1]), np.result_type(points, np.float32))
    for j in range(NUM_JOINTS):
        idx = np.flatnonzero(used[j])
        out[..., j, :] = np.einsum("...kd,k->...d", points[..., idx, :], m[j, idx])
    return out


def confidence_to_h36m17(confidence: np.ndarray, source: str) -> np.ndarray:
    """Map `(..., K_src)` confidences: a synthesised joint is as confident as its weakest part."""
    smap = _get_map(source)
    confidence = np.asarray(confidence)
    if confidence.shape[-1] != smap.num_source_joints:
        raise ValueError(f"{source} has {smap.num_source_joints} joints, got shape {confidence.shape}")
    used = smap.matrix() != 0
    return np.stack(
        [confidence[..., np.flatnonzero(used[j])].min(axis=-1) for j in range(NUM_JOINTS)], axis=-1
    )


def flip_pairs() -> np.ndarray:
    """Permutation that swaps left and right joints of H36M-17."""
    perm = np.arange(NUM_JOINTS)
    perm[list(H36M17_LEFT)] = H36M17_RIGHT
    perm[list(H36M17_RIGHT)] = H36M17_LEFT
    return perm


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """`(..., 17, 3)` -> `(..., 16)` lengths of the bones to each non-root joint's parent."""
    child = np.arange(1, NUM_JOINTS)
    parent = np.asarray(H36M17_PARENTS[1:])
    return np.linalg.norm(joints[..., child, :] - joints[..., parent, :], axis=-1)


def _get_map(source: str) -> SkeletonMap:
    try:
        return SKELETON_MAPS[source]
    except KeyError:
        raise ValueError(f"unknown skeleton {source!r}; known: {sorted(SKELETON_MAPS)}") from None
