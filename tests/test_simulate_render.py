"""Capsule body rendering: occlusion-aware depth and visibility on constructed poses."""
import numpy as np
import pytest

from auglift.cache import ordinal_array_name
from auglift.core.camera import Camera
from auglift.core.codec import sample_keypoint_depth
from auglift.core.skeleton import H36M17_JOINTS
from auglift.pipeline.simulate import BodyModel, SimulateConfig, keypoint_depth, shard_rng, simulate_view, visibility
from auglift.pipeline.simulate.render import disc_rays, first_hit_depth, ray_capsule_depth, undistort

J = {name: i for i, name in enumerate(H36M17_JOINTS)}
BODY = BodyModel()
SIZE = (1000, 1000)


def camera() -> Camera:
    return Camera(R=np.eye(3), T=np.zeros(3), f=np.array([1000.0, 1000.0]), c=np.array([500.0, 500.0]),
                  width=1000, height=1000, name="front")


def standing_pose() -> np.ndarray:
    """Camera-space mm: a person 4 m away facing the camera (their right is image left), left arm
    straight out sideways, right wrist reaching round *behind* the chest (300 mm behind the body
    axis, so right behind the torso as seen from the camera)."""
    p = {
        "pelvis": (0, 0, 4000), "r_hip": (-130, 0, 4000), "r_knee": (-130, 440, 4000),
        "r_ankle": (-130, 880, 4000), "l_hip": (130, 0, 4000), "l_knee": (130, 440, 4000),
        "l_ankle": (130, 880, 4000), "spine": (0, -230, 4000), "thorax": (0, -490, 4000),
        "neck": (0, -590, 3930), "head": (0, -680, 4000),
        "l_shoulder": (140, -470, 4000), "l_elbow": (420, -470, 4000), "l_wrist": (670, -470, 4000),
        "r_shoulder": (-140, -470, 4000), "r_elbow": (-250, -300, 4250), "r_wrist": (0, -300, 4300),
    }
    return np.array([p[name] for name in H36M17_JOINTS], np.float64)[None]


def no_noise(**kw) -> SimulateConfig:
    from auglift.pipeline.simulate import ConfidenceConfig, DepthNoiseConfig, NoiseConfig

    return SimulateConfig(noise=NoiseConfig(sigma=0.0, p_outlier=0.0, p_swap=0.0),
                          depth=DepthNoiseConfig(mult_sigma=0.0, scale_sigma=0.0),
                          confidence=ConfidenceConfig(**kw))


def test_joint_behind_the_torso_reads_the_torso_surface_and_gets_low_confidence():
    X, cam = standing_pose(), camera()
    # A confidence model that leans on visibility (the fitted BlazePose one barely does), to see
    # the occlusion reach the confidence.
    out = simulate_view(X, cam, SIZE, no_noise(base=0.3, gain=0.65, sigma=0.05, p_low=0.0), shard_rng(0, "t"))
    w = J["r_wrist"]
    # the chest capsule (axis at z = 4000 mm, radius 120) is what the camera sees there: its
    # surface on the wrist's ray lies at 4000 - 120 / sqrt(1 + y_n^2), y_n = -300 / 4300
    y_n = -300 / 4300
    assert out["depth"][0, w] * 1000 == pytest.approx(4000 - BODY.chest / np.sqrt(1 + y_n**2), abs=0.5)
    assert X[0, w, 2] - out["depth"][0, w] * 1000 > 400  # far in front of the wrist itself
    assert out["visibility"][0, w] == 0.0
    assert out["confidence"][0, w] < 0.5
    assert out["confidence"][0, J["head"]] > 0.8 and out["confidence"][0, J["l_wrist"]] > 0.8


def test_visible_joint_reads_its_own_limb_surface():
    X, cam = standing_pose(), camera()
    out = simulate_view(X, cam, SIZE, no_noise(), shard_rng(0, "t"))
    w = J["l_wrist"]
    # forearm along x at (y, z) = (-470, 4000): its surface on the wrist's ray is
    # z_j - r_forearm / sqrt(1 + y_n^2), the joint's own front z_j - r_j (r_j = r_forearm)
    y_n = -470 / 4000
    assert out["depth"][0, w] * 1000 == pytest.approx(4000 - BODY.forearm / np.sqrt(1 + y_n**2), abs=0.5)
    assert out["visibility"][0, w] == 1.0
    # every joint in this pose but the hidden wrist (and its elbow, behind the body) is seen
    seen = [j for j in range(17) if j not in (J["r_wrist"], J["r_elbow"])]
    assert (out["visibility"][0, seen] == 1.0).all()
    depth_mm = out["depth"][0, seen] * 1000
    own_front = X[0, seen, 2] - np.asarray(BODY.joint_depth)[seen]
    # visible joints read a surface no deeper than the joint and no nearer than its front
    # (less the occlusion margin): their own body part
    assert (depth_mm < X[0, seen, 2]).all() and (depth_mm > own_front - 30).all()


def test_nose_is_hidden_by_the_head_from_behind():
    X, cam = standing_pose(), camera()
    back = X.copy()
    back[..., 2] = 8000 - back[..., 2]  # mirror in depth: now seen from behind
    back[..., 0] *= -1
    v_front = visibility(X, cam.project(X), cam, SIZE, BODY)
    v_back = visibility(back, cam.project(back), cam, SIZE, BODY)
    assert v_front[0, J["neck"]] == 1.0 and v_back[0, J["neck"]] == 0.0
    assert v_back[0, J["head"]] == 1.0


def test_patch_rendering_equals_sampling_a_full_rendered_depth_map():
    # a small camera whose whole image can be traced, distorted like an H36M camera
    cam = Camera(R=np.eye(3), T=np.zeros(3), f=np.array([110.0, 112.0]), c=np.array([60.0, 58.0]),
                 k=np.array([-0.2, 0.24, -0.003]), p=np.array([-0.0014, -0.001]), width=120, height=120)
    X = standing_pose()
    X[..., 2] += 500
    ys, xs = np.mgrid[0:120, 0:120]
    pix = np.stack([xs, ys], -1).reshape(1, -1, 2).astype(float)
    D, _ = disc_rays(pix, 0, cam, (120, 120))
    full = first_hit_depth(X / 1000, D, BODY).reshape(1, 120, 120)
    full = np.minimum(full, X[0, 0, 2] / 1000 + 2.5)
    rng = np.random.default_rng(1)
    kp = cam.project(X) + rng.normal(0, 3, (1, 17, 2))
    kp[0, 0] = [119.4, 3.2]  # a disc clamped at the image border
    expected = sample_keypoint_depth(full, kp, 3)
    got = keypoint_depth(X, kp, cam, (120, 120), BODY, radius=3)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_ray_capsule_depth_matches_marching_along_the_ray():
    rng = np.random.default_rng(0)
    n, m = 120, 8
    A = rng.uniform([-0.5, -0.5, 2], [0.5, 0.5, 4], (n, 3))
    B = A + rng.normal(0, 0.3, (n, 3))
    r = rng.uniform(0.02, 0.15, n)
    # rays aimed near random points of each capsule's axis: about half hit, half miss
    aim = A[:, None] + rng.uniform(-0.2, 1.2, (n, m, 1)) * (B - A)[:, None] + rng.normal(0, 0.12, (n, m, 3))
    D = aim / aim[..., 2:3]
    t = ray_capsule_depth(D, A, B, r)
    ts = np.arange(1.0, 5.5, 0.0002)  # 0.2 mm steps in depth
    first = np.full((n, m), np.inf)
    for i in range(n):
        P = ts[None, :, None] * D[i, :, None, :]
        ab = B[i] - A[i]
        u = np.clip((P - A[i]) @ ab / (ab @ ab), 0, 1)
        inside = np.linalg.norm(P - A[i] - u[..., None] * ab, axis=-1) <= r[i]
        first[i] = np.where(inside.any(-1), ts[np.argmax(inside, -1)], np.inf)
    hit = np.isfinite(first)
    assert hit.sum() > 250 and (~hit).sum() > 250
    np.testing.assert_array_equal(np.isfinite(t), hit)
    np.testing.assert_allclose(t[hit], first[hit], atol=0.00025)


def test_undistort_inverts_the_h36m_projection():
    cam = Camera(R=np.eye(3), T=np.zeros(3), f=np.array([1145.0, 1143.8]), c=np.array([512.5, 515.5]),
                 k=np.array([-0.207, 0.248, -0.003]), p=np.array([-0.0014, -0.001]))
    rng = np.random.default_rng(3)
    X = rng.uniform([-2000, -1500, 3000], [2000, 1500, 6000], (500, 3))
    xy = undistort(cam.project(X), cam.f, cam.c, cam.k, cam.p)
    np.testing.assert_allclose(xy, X[:, :2] / X[:, 2:], atol=1e-7)


def test_ordinal_arrays_match_hand_computed_bins():
    X = standing_pose()
    X[0, :, 2] = 4000 + np.array([0, 3, -8, 60, -140, 300, -4.9, 5.1, -12, 99, -101, 124, -126,
                                  250, -250, 126, 0])
    out = simulate_view(X, camera(), SIZE, no_noise(), shard_rng(0, "t"))
    expected = {
        10: [0, 0, -1, 1, -1, 1, 0, 1, -1, 1, -1, 1, -1, 1, -1, 1, 0],
        100: [0, 0, 0, 1, -1, 1, 0, 0, 0, 1, -1, 1, -1, 1, -1, 1, 0],
        250: [0, 0, 0, 0, -1, 1, 0, 0, 0, 0, 0, 0, -1, 1, -1, 1, 0],
    }
    for b, want in expected.items():
        np.testing.assert_array_equal(out[ordinal_array_name(b)][0], want)
    assert ordinal_array_name(10) == "ordinal_10mm" and ordinal_array_name(2.5) == "ordinal_2p5mm"


def test_joint_off_the_image_gets_zero_confidence_and_nan_depth():
    X = standing_pose()
    X[0, J["l_wrist"]] = [4500, -470, 4000]  # projects to x = 1625 px
    X[0, J["l_elbow"]] = [2000, -470, 4000]
    out = simulate_view(X, camera(), SIZE, no_noise(), shard_rng(0, "t"))
    w = J["l_wrist"]
    assert out["confidence"][0, w] == 0.0 and out["visibility"][0, w] == 0.0
    assert np.isnan(out["depth"][0, w]) and not out["depth_valid"][0, w]
    assert np.isfinite(out["depth"][0, J["head"]])
