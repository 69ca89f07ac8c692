import h5py
import numpy as np
import pytest

from auglift.core import camera, skeleton


def _h36m_camera(root, subject: int, index: int) -> camera.Camera:
    with h5py.File(root / "h36m" / "cameras.h5", "r") as f:
        g = f[f"subject{subject}/camera{index}"]
        return camera.Camera(R=g["R"][()].T, T=g["T"][()].ravel(), f=g["f"][()].ravel(),
                             c=g["c"][()].ravel(), k=g["k"][()].ravel(), p=g["p"][()].ravel())


def test_projection_reproduces_official_h36m_annotation(shared_data):
    cam = _h36m_camera(shared_data, 1, 1)  # camera 54138969
    with h5py.File(shared_data / "h36m/S1/MyPoses/3D_positions/Directions 1.h5", "r") as f:
        world32 = f["3D_positions"][:, 0].reshape(32, 3)
    world17 = skeleton.to_h36m17(world32, "h36m32")
    uv = cam.project(cam.world_to_camera(world17))
    gt = np.load(shared_data / "samples/h36m_test_h36m_body3d.npz")
    assert "S1_Directions_1.54138969_000001" in str(gt["imgname"][0])
    assert np.abs(uv - gt["part"][0, :, :2]).max() < 0.01
    # the camera-space 3D also matches the sample's (metres there, mm here)
    np.testing.assert_allclose(cam.world_to_camera(world17) / 1000, gt["S"][0, :, :3], atol=1e-3)


def test_world_camera_round_trip_and_distortion_matters(shared_data):
    cam = _h36m_camera(shared_data, 9, 2)
    X = np.random.default_rng(0).normal([0, 0, 900], 400, size=(50, 3))
    np.testing.assert_allclose(cam.camera_to_world(cam.world_to_camera(X)), X, atol=1e-6)
    Xc = cam.world_to_camera(X + np.array([0, 0, 0]))
    shift = np.linalg.norm(cam.project(Xc) - cam.project(Xc, distort=False), axis=-1)
    assert np.nanmax(shift) > 0.1  # H36M lenses are visibly distorted


def test_points_behind_camera_project_to_nan():
    uv = camera.project(np.array([[0.0, 0.0, -1.0], [0.1, 0.2, 2.0]]), [1000, 1000], [500, 500])
    assert np.isnan(uv[0]).all() and np.isfinite(uv[1]).all()
    np.testing.assert_allclose(uv[1], [550, 600])


def test_unproject_inverts_undistorted_projection():
    X = np.array([[0.3, -0.2, 4.0], [1.0, 0.5, 2.5]])
    f, c = np.array([1100.0, 1090.0]), np.array([640.0, 360.0])
    np.testing.assert_allclose(camera.unproject(camera.project(X, f, c), X[:, 2], f, c), X, atol=1e-9)


def test_look_at_points_optical_axis_at_target():
    R = camera.look_at([3.0, 0.0, 1.5], [0.0, 0.0, 1.0])
    target_cam = camera.world_to_camera(np.array([0.0, 0.0, 1.0]), R, np.array([3.0, 0.0, 1.5]))
    assert abs(target_cam[0]) < 1e-9 and abs(target_cam[1]) < 1e-9 and target_cam[2] > 0
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)


@pytest.mark.parametrize("source", sorted(skeleton.SKELETON_MAPS))
def test_every_map_is_an_affine_combination(source):
    # weights of each H36M joint sum to 1, so a translation of all source joints translates
    # every output joint by the same amount (no map accidentally scales the skeleton)
    m = skeleton.SKELETON_MAPS[source].matrix()
    np.testing.assert_allclose(m.sum(axis=1), 1.0)
    pts = np.random.default_rng(1).normal(size=(4, m.shape[1], 3))
    moved = skeleton.to_h36m17(pts + [10.0, -5.0, 2.0], source)
    np.testing.assert_allclose(moved - skeleton.to_h36m17(pts, source), np.broadcast_to([10.0, -5.0, 2.0], moved.shape))


def test_3dhp_sample_maps_onto_h36m_layout(shared_data):
    # the 3DHP-17 ground truth, mapped, must have the H36M bone structure: pelvis is the root and
    # left/right hips sit on either side of it at similar distances
    s = np.load(shared_data / "samples/3dhp_test_3dhp_test.npz")["S"][..., :3]
    j = skeleton.to_h36m17(s, "3dhp17")
    hips = np.linalg.norm(j[:, [1, 4]] - j[:, [0]], axis=-1)
    assert np.all((hips > 0.05) & (hips < 0.2))
    assert np.all(j[:, 10, 1] < j[:, 0, 1])  # head above pelvis (y points down)
    np.testing.assert_allclose(j[:, 0], s[:, 14])


def test_nan_source_joint_only_spoils_joints_built_from_it():
    pts = np.arange(33 * 2, dtype=float).reshape(33, 2)
    pts[15] = np.nan  # BlazePose left wrist
    out = skeleton.to_h36m17(pts, "blazepose33")
    assert np.isnan(out[13]).all()
    assert np.isfinite(np.delete(out, 13, axis=0)).all()
    conf = np.linspace(0.1, 0.9, 33)
    c17 = skeleton.confidence_to_h36m17(conf, "blazepose33")
    assert c17[0] == pytest.approx(min(conf[23], conf[24]))  # pelvis as weak as its weaker hip


def test_flip_pairs_is_an_involution_swapping_sides():
    perm = skeleton.flip_pairs()
    np.testing.assert_array_equal(perm[perm], np.arange(17))
    names = skeleton.H36M17_JOINTS
    for a, b in zip(skeleton.H36M17_LEFT, skeleton.H36M17_RIGHT):
        assert perm[a] == b and names[a][2:] == names[b][2:]


def test_wrong_joint_count_is_a_clear_error():
    with pytest.raises(ValueError, match="coco17 has 17 joints"):
        skeleton.to_h36m17(np.zeros((5, 33, 2)), "coco17")
    with pytest.raises(ValueError, match="unknown skeleton"):
        skeleton.to_h36m17(np.zeros((5, 17, 2)), "openpose25")
