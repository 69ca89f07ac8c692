"""Pose metrics on real H36M poses (samples/h36m_test_h36m_body3d.npz) and hand-built errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from auglift.lifters.metrics import auc, evaluate_all, mpjpe, mpjpe_loss, n_mpjpe, p_mpjpe, pck, procrustes_align


@pytest.fixture(scope="module")
def poses(shared_data):
    """(4, 17, 3) real ground-truth poses, camera space, root-relative, mm."""
    s = np.load(shared_data / "samples" / "h36m_test_h36m_body3d.npz")["S"][..., :3] * 1000.0
    return s - s[:, :1]


def reference_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Independent Procrustes: scipy's Kabsch (proper rotations only), then the LSQ scale."""
    p0, g0 = pred - pred.mean(0), gt - gt.mean(0)
    rot, _ = Rotation.align_vectors(g0, p0)
    rp = rot.apply(p0)
    return np.sum(g0 * rp) / np.sum(rp * rp) * rp + gt.mean(0)


def test_similarity_transform_is_removed_by_procrustes_only(poses):
    rot = Rotation.from_euler("xyz", [25, -40, 70], degrees=True).as_matrix()
    pred = 1.3 * poses @ rot.T + np.array([120.0, -35.0, 400.0])
    assert mpjpe(pred, poses) > 100.0
    assert p_mpjpe(pred, poses) < 1e-6
    assert np.all(p_mpjpe(pred, poses, per_joint=True) < 1e-6)


def test_procrustes_matches_independent_solution(poses):
    rng = np.random.default_rng(0)
    pred = poses + rng.normal(0.0, 40.0, poses.shape)
    aligned = procrustes_align(pred, poses)
    for i in range(len(poses)):
        np.testing.assert_allclose(aligned[i], reference_align(pred[i], poses[i]), atol=1e-6)
    assert p_mpjpe(pred, poses) < mpjpe(pred, poses)


def test_reflection_is_not_explained_away(poses):
    mirrored = poses * np.array([-1.0, 1.0, 1.0])  # an improper transform of the ground truth
    aligned = procrustes_align(mirrored, poses)
    for i in range(len(poses)):
        np.testing.assert_allclose(aligned[i], reference_align(mirrored[i], poses[i]), atol=1e-6)
        # The fitted map from the mirrored pose to its alignment is a scaled proper rotation.
        p0 = mirrored[i] - mirrored[i].mean(0)
        a0 = aligned[i] - aligned[i].mean(0)
        m, *_ = np.linalg.lstsq(p0, a0, rcond=None)
        scale = np.cbrt(np.linalg.det(m))
        assert scale > 0
        np.testing.assert_allclose(m.T @ m / scale**2, np.eye(3), atol=1e-6)
    # An improper fit would reach 0 mm; the proper one leaves a real error.
    assert p_mpjpe(mirrored, poses) > 10.0


def test_constant_offset(poses):
    v = np.array([30.0, -40.0, 120.0])
    assert mpjpe(poses + v, poses) == pytest.approx(np.linalg.norm(v))
    np.testing.assert_allclose(mpjpe(poses + v, poses, per_joint=True), np.linalg.norm(v))
    assert p_mpjpe(poses + v, poses) < 1e-6


def test_scale_only_alignment(poses):
    assert mpjpe(0.8 * poses, poses) > 20.0
    assert n_mpjpe(0.8 * poses, poses) < 1e-6
    # n_mpjpe cannot undo a rotation, P-MPJPE can.
    rot = Rotation.from_euler("y", 30, degrees=True).as_matrix()
    assert n_mpjpe(poses @ rot.T, poses) > 10.0
    assert p_mpjpe(poses @ rot.T, poses) < 1e-6


def test_pck_and_auc_by_hand():
    gt = np.zeros((1, 3, 3))
    pred = np.array([[[0.0, 0.0, 0.0], [0.0, 100.0, 0.0], [0.0, 0.0, 200.0]]])  # errors 0, 100, 200
    assert pck(pred, gt) == pytest.approx(200.0 / 3.0)
    np.testing.assert_allclose(pck(pred, gt, per_joint=True), [100.0, 100.0, 0.0])
    assert pck(pred, gt, threshold=99.0) == pytest.approx(100.0 / 3.0)
    # thresholds 0, 5, ..., 150: joint 0 always in, joint 1 in for the 11 thresholds >= 100,
    # joint 2 never -> mean over thresholds and joints = (31 + 11) / 93.
    assert auc(pred, gt) == pytest.approx(100.0 * 42.0 / 93.0)
    np.testing.assert_allclose(auc(pred, gt, per_joint=True), [100.0, 100.0 * 11.0 / 31.0, 0.0])
    assert auc(pred, gt, thresholds=[50.0, 150.0]) == pytest.approx(100.0 * 3.0 / 6.0)


def test_evaluate_all_groups_and_joint_subset(poses):
    offsets = np.array([10.0, 30.0, 30.0, 30.0])
    pred = poses + offsets[:, None, None] * np.array([1.0, 0.0, 0.0])
    pred[:, 16] += np.array([0.0, 500.0, 0.0])  # a gross error on the right wrist only
    groups = np.array(["Directions", "Walking", "Walking", "Walking"])
    res = evaluate_all(pred, poses, joints=list(range(16)), groups=groups)
    assert res["count"] == 4 and res["joints"] == list(range(16))
    assert res["mpjpe"] == pytest.approx((10.0 + 3 * 30.0) / 4.0)  # wrist excluded
    assert res["per_group"]["Directions"]["mpjpe"] == pytest.approx(10.0)
    assert res["per_group"]["Walking"]["count"] == 3
    assert res["group_mean"]["mpjpe"] == pytest.approx(20.0)  # mean over actions, not poses
    assert res["pck"] == 100.0 and res["p_mpjpe"] < 1e-6
    assert len(res["per_joint"]["mpjpe"]) == 16
    full = evaluate_all(pred, poses)
    assert full["per_joint"]["pck"][16] == 0.0 and full["mpjpe"] > res["mpjpe"]
    with pytest.raises(ValueError, match="outside"):
        evaluate_all(pred, poses, joints=[0, 17])
    with pytest.raises(ValueError, match="groups must have shape"):
        evaluate_all(pred, poses, groups=groups[:3])


def test_shape_errors_and_single_pose(poses):
    with pytest.raises(ValueError, match="differs from target"):
        mpjpe(poses[:, :16], poses)
    assert mpjpe(poses[0] + np.array([0.0, 0.0, 5.0]), poses[0]) == pytest.approx(5.0)


def test_torch_loss_matches_numpy_and_has_gradients(poses):
    rng = np.random.default_rng(1)
    pred_np = poses + rng.normal(0.0, 25.0, poses.shape)
    pred = torch.tensor(pred_np, requires_grad=True)
    loss = mpjpe_loss(pred, torch.tensor(poses))
    assert loss.item() == pytest.approx(mpjpe(pred_np, poses))
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
