"""Simulator noise models, virtual cameras and configuration."""
import dataclasses

import numpy as np
import pytest

from auglift.core.skeleton import flip_pairs
from auglift.pipeline.simulate import (
    ConfidenceConfig,
    DepthNoiseConfig,
    NoiseConfig,
    SimulateConfig,
    VirtualCameraConfig,
    add_detector_noise,
    apply_depth_model,
    config_from_dict,
    load_config,
    sample_virtual_camera,
    simulate_confidence,
)

RNG_N = 40000


def square_poses(n: int, box: float = 200.0) -> np.ndarray:
    """n identical poses whose box size (mean of x and y extents) is exactly `box` px."""
    rng = np.random.default_rng(5)
    uv = rng.uniform(300, 300 + box, (17, 2))
    uv[0] = [300, 300]
    uv[1] = [300 + box, 300 + box]
    return np.broadcast_to(uv, (n, 17, 2)).copy()


def test_gaussian_noise_median_error_matches_sigma():
    cfg = NoiseConfig(sigma=0.03, p_outlier=0.0, p_swap=0.0)
    uv = square_poses(RNG_N)
    noisy, info = add_detector_noise(uv, np.ones((RNG_N, 17)), np.random.default_rng(0), cfg)
    err = np.linalg.norm(noisy - uv, axis=-1)
    # per-axis std s gives a Rayleigh radial error with median s * sqrt(2 ln 2)
    expected = 0.03 * 200.0 * np.asarray(cfg.joint_scale) * np.sqrt(2 * np.log(2))
    np.testing.assert_allclose(np.median(err, axis=0), expected, rtol=0.04)
    assert not info["outlier"].any() and not info["swapped"].any()


def test_occluded_joints_are_noisier_by_the_configured_factor():
    cfg = NoiseConfig(sigma=0.02, occluded_scale=3.0, p_outlier=0.0, p_swap=0.0,
                      joint_scale=(1.0,) * 17)
    uv = square_poses(RNG_N)
    vis = np.zeros((RNG_N, 17))
    vis[:, :8] = 1.0
    noisy, _ = add_detector_noise(uv, vis, np.random.default_rng(1), cfg)
    err = np.linalg.norm(noisy - uv, axis=-1)
    ratio = np.median(err[:, 8:]) / np.median(err[:, :8])
    assert ratio == pytest.approx(3.0, rel=0.04)


def test_outlier_and_swap_rates_match_the_config():
    cfg = NoiseConfig(sigma=0.01, p_outlier=0.05, outlier_scale=20.0, p_swap=0.02,
                      joint_scale=(1.0,) * 17, joint_outlier=(1.0,) * 17)
    uv = square_poses(RNG_N)
    noisy, info = add_detector_noise(uv, np.ones((RNG_N, 17)), np.random.default_rng(2), cfg)
    assert info["outlier"].mean() == pytest.approx(0.05, rel=0.05)
    perm = flip_pairs()
    sided = perm != np.arange(17)
    assert info["swapped"][:, sided].mean() == pytest.approx(0.02, rel=0.08)
    assert not info["swapped"][:, ~sided].any()
    err = np.linalg.norm(noisy - uv, axis=-1)
    # a swapped joint sits near its mirror joint's true position
    b, j = np.nonzero(info["swapped"] & ~info["outlier"] & ~info["outlier"][:, perm])
    near_mirror = np.linalg.norm(noisy[b, j] - uv[b, perm[j]], axis=-1)
    assert np.median(near_mirror) < 5.0 and np.median(err[b, j]) > 20.0
    # gross errors: outliers are ~outlier_scale times further off than inliers
    clean = ~info["swapped"]
    ratio = np.median(err[info["outlier"] & clean]) / np.median(err[~info["outlier"] & clean])
    assert ratio == pytest.approx(20.0, rel=0.1)


def test_noise_keeps_nan_joints_nan_and_is_seeded():
    uv = square_poses(10)
    uv[3, 5] = np.nan
    a, _ = add_detector_noise(uv, np.ones((10, 17)), np.random.default_rng(7), NoiseConfig())
    b, _ = add_detector_noise(uv, np.ones((10, 17)), np.random.default_rng(7), NoiseConfig())
    np.testing.assert_array_equal(a, b)
    assert np.isnan(a[3, 5]).all() and np.isfinite(a[2]).all()


def test_confidence_follows_visibility_and_is_zero_off_image():
    rng = np.random.default_rng(0)
    vis = np.tile(np.linspace(0, 1, 11), (2000, 1))
    on = np.ones_like(vis, bool)
    on[:, 5] = False
    c = simulate_confidence(vis, on, rng, ConfidenceConfig(base=0.3, gain=0.65, sigma=0.05, p_low=0.0))
    assert c.dtype == np.float32 and (c >= 0).all() and (c <= 1).all()
    assert (c[:, 5] == 0).all()
    means = c.mean(0)
    keep = np.arange(11) != 5
    np.testing.assert_allclose(means[keep], np.clip(0.3 + 0.65 * vis[0, keep], 0, 1), atol=0.01)


def test_depth_model_metric_noise_and_relative_inverse_mode():
    rng = np.random.default_rng(0)
    z = rng.uniform(3, 6, (5000, 17))
    d = apply_depth_model(z, rng, DepthNoiseConfig(mult_sigma=0.02, scale_sigma=0.0))
    assert np.std(d / z - 1) == pytest.approx(0.02, rel=0.05)
    g = apply_depth_model(z, rng, DepthNoiseConfig(mult_sigma=0.0, scale_sigma=0.05))
    ratio = g / z
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:, :1], ratio.shape), rtol=1e-5)  # per frame
    assert np.std(np.log(ratio[:, 0])) == pytest.approx(0.05, rel=0.06)
    rel = apply_depth_model(z, rng, DepthNoiseConfig(mode="relative", mult_sigma=0.0, scale_sigma=0.0))
    # affine in 1/z per frame, larger = nearer
    for f in range(5):
        slope, icept = np.polyfit(1 / z[f], rel[f], 1)
        np.testing.assert_allclose(slope / z[f] + icept, rel[f], rtol=1e-5)
        assert 0.5 <= slope <= 2.0 and 0.0 <= icept <= 0.5
    with pytest.raises(ValueError, match="mode"):
        DepthNoiseConfig(mode="absolute")


def walking_motion(n: int = 60) -> np.ndarray:
    """World mm, z up: a 1.8 m tall stick figure walking 3 m along x."""
    base = np.zeros((17, 3))
    base[:, 2] = np.linspace(900, 1800, 17)
    base[[1, 2, 3], 1] = -130
    base[[4, 5, 6], 1] = 130
    base[[2, 5], 2], base[[3, 6], 2] = 480, 80
    base[[1, 4], 2] = 900
    base[0, 2], base[7, 2], base[8, 2] = 950, 1200, 1450
    out = np.repeat(base[None], n, 0)
    out[..., 0] += np.linspace(-1500, 1500, n)[:, None]
    return out


def test_virtual_cameras_look_at_the_subject_and_keep_it_in_view():
    world = walking_motion()
    cfg = VirtualCameraConfig(num_views=4, up=(0.0, 0.0, 1.0))
    cams = [sample_virtual_camera(world, cfg, np.random.default_rng(k), f"virtual-{k}") for k in range(6)]
    target = world[:, 0].mean(0)
    for cam in cams:
        X = cam.world_to_camera(world)
        assert (X[..., 2] > 1000).all()
        uv = cam.project(X)
        inside = (uv >= 0).all(-1) & (uv[..., 0] <= 999) & (uv[..., 1] <= 999)
        assert inside.mean() >= 0.99
        centre = cam.project(cam.world_to_camera(target))
        np.testing.assert_allclose(centre, cam.c, atol=1.0)  # looks at the mean pelvis
        np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-9)
        # the camera's "down" (y) points roughly down the world z axis (roll <= 3 deg)
        assert cam.R[1] @ np.array([0, 0, -1.0]) > 0.8
        dist = np.linalg.norm(cam.T - target)
        assert dist >= 3000 + 1400
    positions = np.array([c.T for c in cams])
    assert len({tuple(np.round(p)) for p in positions}) == 6
    again = sample_virtual_camera(world, cfg, np.random.default_rng(2), "virtual-2")
    np.testing.assert_array_equal(again.R, cams[2].R)


def test_up_axis_is_estimated_from_the_skeleton():
    from auglift.pipeline.simulate.views import estimate_up

    world = walking_motion()
    np.testing.assert_allclose(estimate_up(world), [0, 0, 1], atol=1e-9)
    rot = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0.0]])  # y-up world
    np.testing.assert_allclose(estimate_up(world @ rot.T), rot @ [0, 0, 1], atol=1e-9)


def test_config_from_yaml_and_errors_name_the_file_and_key(tmp_path):
    good = tmp_path / "sim.yaml"
    good.write_text("seed: 4\nnoise:\n  sigma: 0.05\n  p_swap: 0.0\nviews:\n  num_views: 2\n"
                    "  focal_px: [800, 1200]\nordinal_bins_mm: [10, 100]\n")
    cfg = load_config(good)
    assert cfg.seed == 4 and cfg.noise.sigma == 0.05 and cfg.noise.p_outlier == NoiseConfig().p_outlier
    assert cfg.views.num_views == 2 and cfg.views.focal_px == (800, 1200)
    assert cfg.ordinal_bins_mm == (10, 100)
    bad = tmp_path / "bad.yaml"
    bad.write_text("noise:\n  sigmaa: 0.05\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*noise.*sigmaa"):
        load_config(bad)
    with pytest.raises(ValueError, match="probability"):
        config_from_dict({"noise": {"p_swap": 1.5}})
    with pytest.raises(ValueError, match="keypoints"):
        config_from_dict({"keypoints": "detected"})
    assert config_from_dict({}) == SimulateConfig()


def test_config_hash_changes_with_results_not_with_batch_size():
    from auglift.pipeline.simulate.run import config_hash_of

    base = SimulateConfig()
    assert config_hash_of(base, "h36m") == config_hash_of(dataclasses.replace(base, batch_frames=7), "h36m")
    assert config_hash_of(base, "h36m") != config_hash_of(dataclasses.replace(base, seed=1), "h36m")
    noisier = dataclasses.replace(base, noise=dataclasses.replace(base.noise, sigma=0.05))
    assert config_hash_of(base, "h36m") != config_hash_of(noisier, "h36m")


def test_landmark_z_model_fit_recovers_its_own_parameters():
    from auglift.pipeline.simulate.calibrate import fit_landmark_z
    from auglift.pipeline.simulate.noise import DepthNoiseConfig, simulate_landmark_z

    rng = np.random.default_rng(0)
    joints = rng.normal(0.0, 250.0, (400, 17, 3)) + np.array([0.0, 0.0, 4000.0])   # mm, 4 m away
    cfg = DepthNoiseConfig(mode="landmark_z", lz_scale=0.5, lz_scale_sigma=0.3, lz_sigma=0.04)
    fit = fit_landmark_z(simulate_landmark_z(joints, rng, cfg), joints)
    assert fit.frames == 400
    assert abs(fit.lz_scale - 0.5) < 0.03 and abs(fit.lz_scale_sigma - 0.3) < 0.05
    assert abs(fit.lz_sigma - 0.04) < 0.005


def test_landmark_z_fit_on_real_blazepose_output_shows_compressed_but_ordered_depth(shared_data, tmp_path):
    """BlazePose's real world-landmark z on the real H36M sample frames: the fit the defaults come from."""
    from auglift.cache import list_shards, open_shard
    from auglift.pipeline.precompute import PrecomputeConfig, run_precompute
    from auglift.pipeline.simulate.calibrate import fit_landmark_z
    from auglift.pipeline.simulate.noise import DepthNoiseConfig

    run_precompute("samples", shared_data / "samples", tmp_path, PrecomputeConfig(workers=0), progress=False, log=None)
    z, joints = [], []
    for path in list_shards(tmp_path):
        with open_shard(path) as s:
            if s.attrs["subject"].startswith("h36m-"):
                a = s.read_all(["depth", "joints_3d_cam"])
                z.append(a["depth"])
                joints.append(a["joints_3d_cam"])
    fit = fit_landmark_z(np.concatenate(z), np.concatenate(joints))
    assert fit.frames == 4 and all(c > 0 for c in fit.correlations)
    assert 0.1 < fit.lz_scale < 1.0          # BlazePose compresses depth
    default = DepthNoiseConfig()
    assert (round(fit.lz_scale, 2), round(fit.lz_scale_sigma, 2), round(fit.lz_sigma, 3)) == (
        default.lz_scale, default.lz_scale_sigma, default.lz_sigma), "the defaults are this fit's figures"
