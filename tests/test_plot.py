"""Figures rendered from real H36M ground truth and real H36M frames."""
from __future__ import annotations

import numpy as np
import pytest

from auglift.core.skeleton import H36M17_PARENTS
from auglift.lifters.plot import LEFT_COLOR, RIGHT_COLOR, plot_frames, plot_poses_3d

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sample(shared_data):
    d = np.load(shared_data / "samples" / "h36m_test_h36m_body3d.npz")
    gt = d["S"][..., :3] * 1000.0  # camera space, mm
    names = [str(n).split("/")[-1] for n in d["imgname"]]
    return gt, d["part"], [shared_data / "samples" / f"h36m_{n}" for n in names]


def read_png(path):
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    return imread(path)[..., :3]


def fraction_near(img: np.ndarray, hex_color: str, tol: float = 0.08) -> float:
    rgb = np.array([int(hex_color[i:i + 2], 16) / 255.0 for i in (1, 3, 5)])
    return float(np.mean(np.all(np.abs(img - rgb) < tol, axis=-1)))


def test_plot_poses_3d_draws_the_skeleton(sample, tmp_path):
    gt, _, _ = sample
    pred = gt[0] + np.random.default_rng(0).normal(0.0, 30.0, gt[0].shape)
    path = plot_poses_3d(pred, gt[0], H36M17_PARENTS, tmp_path / "sub" / "pose.png", title="S1 Directions")
    img = read_png(path)
    assert img.shape == (500, 500, 3)
    assert img.std() > 0.02 and np.mean(img.sum(-1) < 2.9) > 0.01  # not blank
    # both sides of the predicted skeleton are drawn in their colours
    assert fraction_near(img, LEFT_COLOR) > 1e-4 and fraction_near(img, RIGHT_COLOR) > 1e-4


def test_plot_frames_with_images_and_keypoints(sample, tmp_path):
    from matplotlib.image import imread

    gt, part, image_paths = sample
    images = [imread(p) for p in image_paths[:2]]
    pred = gt[:2] * 1.05
    path = plot_frames(pred, gt[:2], images=images, keypoints_2d=part[:2], path=tmp_path / "fig.png",
                       titles=["S1", "S5"])
    img = read_png(path)
    assert img.shape == (840, 900, 3)  # 2 rows x (image, 3D) at 100 dpi
    left, right = img[:, :450], img[:, 450:]
    assert left.std() > 0.05  # the photographs are there
    assert fraction_near(right, RIGHT_COLOR) > 1e-4

    only_3d = read_png(plot_frames(pred, gt[:2], path=tmp_path / "only3d.png"))
    assert only_3d.shape == (840, 450, 3)


def test_plot_rejects_bad_shapes(sample, tmp_path):
    gt, _, _ = sample
    with pytest.raises(ValueError, match=r"expected \(17, 3\)"):
        plot_poses_3d(gt[0, :16], gt[0, :16], H36M17_PARENTS, tmp_path / "x.png")
    with pytest.raises(ValueError, match="images has 1 entries for 2 frames"):
        plot_frames(gt[:2], gt[:2], images=[None], path=tmp_path / "y.png")
