"""3D pose errors, vectorised over poses.

Inputs are `(N, K, 3)` arrays (a single `(K, 3)` pose is accepted too), in millimetres.

Which coordinates to pass:
- `mpjpe`, `n_mpjpe`, `pck`, `auc` compare the coordinates as given. The standard protocols
  ("Protocol 1" MPJPE, 3DHP PCK/AUC) pass root-relative predictions and targets (root joint
  subtracted from both); pass absolute coordinates only to measure absolute error on purpose.
- `p_mpjpe` ("Protocol 2") aligns each prediction to its target with the optimal similarity
  transform (scale, proper rotation, translation) first, so it is invariant to translation and
  either form gives the same result.
- `n_mpjpe` aligns scale only (VideoPose3D's N-MPJPE): no translation is removed.

Every function takes `per_joint=True` to return a `(K,)` array (mean over poses) instead of a
scalar. PCK and AUC are percentages. `mpjpe_loss` is the torch training loss.
"""
from __future__ import annotations

from typing import Any

import numpy as np

PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM = np.linspace(0.0, 150.0, 31)


def _pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from target shape {gt.shape}")
    if pred.ndim == 2:
        pred, gt = pred[None], gt[None]
    if pred.ndim != 3 or pred.shape[-1] != 3 or pred.shape[0] == 0:
        raise ValueError(f"expected poses of shape (N, K, 3) or (K, 3) with N >= 1, got {pred.shape}")
    return pred, gt


def _reduce(err: np.ndarray, per_joint: bool) -> np.ndarray | float:
    """`(N, K)` per-joint values -> (K,) means or one scalar."""
    return err.mean(axis=0) if per_joint else float(err.mean())


def joint_errors(pred, gt) -> np.ndarray:
    """`(N, K)` Euclidean distance of each joint."""
    pred, gt = _pair(pred, gt)
    return np.linalg.norm(pred - gt, axis=-1)


def mpjpe(pred, gt, per_joint: bool = False) -> np.ndarray | float:
    """Mean per-joint position error."""
    return _reduce(joint_errors(pred, gt), per_joint)


def procrustes_align(pred, gt) -> np.ndarray:
    """Each prediction after the similarity transform s R x + t that best fits its target.

    R is the optimal *proper* rotation (det +1): when the best orthogonal fit would be a
    reflection, the singular direction with the smallest singular value is flipped instead
    (Umeyama 1991), so a mirrored pose is not "explained away" by a mirror.
    """
    pred, gt = _pair(pred, gt)
    mu_p = pred.mean(axis=1, keepdims=True)
    mu_g = gt.mean(axis=1, keepdims=True)
    p0, g0 = pred - mu_p, gt - mu_g
    cov = np.einsum("nki,nkj->nij", g0, p0)  # sum_k g_k p_k^T, (N, 3, 3)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones_like(s)
    d[:, -1] = np.sign(np.linalg.det(u @ vt))
    d[d[:, -1] == 0, -1] = 1.0
    rot = np.einsum("nij,nj,njk->nik", u, d, vt)  # U D V^T
    norm_p = np.sum(p0**2, axis=(1, 2))
    scale = np.sum(s * d, axis=1) / np.maximum(norm_p, np.finfo(np.float64).tiny)
    return scale[:, None, None] * np.einsum("nij,nkj->nki", rot, p0) + mu_g


def p_mpjpe(pred, gt, per_joint: bool = False) -> np.ndarray | float:
    """MPJPE after rigid alignment with scale (Procrustes), "Protocol 2"."""
    pred, gt = _pair(pred, gt)
    return _reduce(joint_errors(procrustes_align(pred, gt), gt), per_joint)


def n_mpjpe(pred, gt, per_joint: bool = False) -> np.ndarray | float:
    """MPJPE after the least-squares scale of each prediction (no rotation, no translation)."""
    pred, gt = _pair(pred, gt)
    num = np.sum(pred * gt, axis=(1, 2))
    den = np.maximum(np.sum(pred * pred, axis=(1, 2)), np.finfo(np.float64).tiny)
    return _reduce(joint_errors((num / den)[:, None, None] * pred, gt), per_joint)


def pck(pred, gt, threshold: float = PCK_THRESHOLD_MM, per_joint: bool = False) -> np.ndarray | float:
    """Percentage of joints whose error is at most `threshold` mm."""
    return _reduce(100.0 * (joint_errors(pred, gt) <= threshold), per_joint)


def auc(pred, gt, thresholds=AUC_THRESHOLDS_MM, per_joint: bool = False) -> np.ndarray | float:
    """Area under the PCK curve: mean PCK (%) over `thresholds` (3DHP: 0..150 mm, 31 steps)."""
    thresholds = np.asarray(thresholds, np.float64).ravel()
    if thresholds.size == 0:
        raise ValueError("auc needs at least one threshold")
    err = joint_errors(pred, gt)
    within = err[None] <= thresholds[:, None, None]  # (T, N, K)
    return _reduce(100.0 * within.mean(axis=0), per_joint)


METRICS = {"mpjpe": mpjpe, "p_mpjpe": p_mpjpe, "n_mpjpe": n_mpjpe, "pck": pck, "auc": auc}


def _summary(pred: np.ndarray, gt: np.ndarray, per_joint: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"count": int(pred.shape[0])}
    for name, fn in METRICS.items():
        out[name] = fn(pred, gt)
    if per_joint:
        out["per_joint"] = {name: fn(pred, gt, per_joint=True).tolist() for name, fn in METRICS.items()}
    return out


def evaluate_all(pred, gt, joints: list[int] | None = None, groups: np.ndarray | None = None) -> dict:
    """Every metric, JSON-ready.

    `joints` restricts evaluation (Procrustes alignment included) to a joint subset, e.g. the
    joints a test skeleton shares with H36M-17. `groups` `(N,)` labels each pose (e.g. by
    action); the result then has `per_group` summaries and `group_mean`, the unweighted mean
    over groups (the H36M convention of averaging per-action errors).

    Returns {"count", "mpjpe", "p_mpjpe", "n_mpjpe", "pck", "auc", "per_joint": {metric: [K]},
    "joints": [...]} plus "per_group" and "group_mean" when `groups` is given.
    """
    pred, gt = _pair(pred, gt)
    k = pred.shape[1]
    joint_idx = list(range(k)) if joints is None else [int(j) for j in joints]
    if not joint_idx or min(joint_idx) < 0 or max(joint_idx) >= k:
        raise ValueError(f"joint subset {joints} is empty or outside 0..{k - 1}")
    pred, gt = pred[:, joint_idx], gt[:, joint_idx]
    result = _summary(pred, gt, per_joint=True)
    result["joints"] = joint_idx
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (pred.shape[0],):
            raise ValueError(f"groups must have shape ({pred.shape[0]},), got {groups.shape}")
        per_group = {}
        for g in np.unique(groups):
            sel = groups == g
            per_group[str(g)] = _summary(pred[sel], gt[sel], per_joint=False)
        result["per_group"] = per_group
        result["group_mean"] = {name: float(np.mean([s[name] for s in per_group.values()]))
                                for name in METRICS}
    return result


def mpjpe_loss(pred, target, valid=None):
    """The torch training loss: mean joint distance of `(B, T, K, 3)` (or `(..., K, 3)`) tensors,
    differentiable; with `valid` `(B, T)`, over the valid target frames only (seq2seq windows
    that run past a sequence's end)."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} differs from target {tuple(target.shape)}")
    err = (pred - target).norm(dim=-1).mean(dim=-1)
    if valid is None:
        return err.mean()
    valid = valid.to(err.dtype)
    return (err * valid).sum() / valid.sum().clamp_min(1.0)
