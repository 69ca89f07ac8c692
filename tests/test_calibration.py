"""The simulator's 2D-noise and confidence models against real detectors, and their fits.

Tolerances, stated once: the default noise (fitted on S1 S5 S6 S7 S8 pooled) must reproduce the
real Stacked-Hourglass median error of every joint within 15% on those training subjects and
within 40% on the held-out S9 S11 (subjects the fit never saw: one training subject alone already
departs from the pooled fit by up to 20% on a joint, e.g. S5's right elbow); the all-joint median
within 5% and 10%. Every STEP-th frame keeps each test fast; sampling alone moves a joint's
median by a few per cent.
"""
import dataclasses

import numpy as np
import pytest

from auglift.pipeline.simulate import ConfidenceConfig, NoiseConfig, simulate_confidence
from auglift.pipeline.simulate.calibrate_confidence import fit_confidence
from auglift.pipeline.simulate.calibrate_noise import (
    CHECK_SUBJECTS,
    FIT_SUBJECTS,
    DetectionSet,
    apparent_swaps,
    error_statistics,
    fit_noise,
    load_sh_frames,
    normalised_errors,
    simulate_detections,
)

STEP = 100   # every 100th frame of the 10 fps data: ~3000 training frames, ~1000 held out


@pytest.fixture(scope="module")
def train(shared_data):
    return load_sh_frames(shared_data, FIT_SUBJECTS, STEP)


@pytest.fixture(scope="module")
def held_out(shared_data):
    return load_sh_frames(shared_data, CHECK_SUBJECTS, STEP)


def _medians(data: DetectionSet, kp: np.ndarray) -> tuple[np.ndarray, float]:
    e = normalised_errors(kp, data.uv)
    return np.nanmedian(e, axis=0), float(np.nanmedian(e))


@pytest.mark.parametrize("subject, per_joint, overall", [("train", 0.15, 0.05), ("held_out", 0.40, 0.10)])
def test_default_noise_reproduces_the_real_error_scale(subject, per_joint, overall, request):
    data = request.getfixturevalue(subject)
    assert len(data) > 300
    real_j, real_all = _medians(data, data.kp)
    sim_j, sim_all = _medians(data, simulate_detections(NoiseConfig(), data, seed=1))
    ratio = sim_j / real_j
    assert np.all(np.abs(ratio - 1) < per_joint), dict(zip(range(17), ratio.round(2)))
    assert sim_all == pytest.approx(real_all, rel=overall)


def test_default_noise_has_the_real_gross_error_and_swap_rates(train, held_out):
    for data in (train, held_out):
        real = error_statistics(data.kp, data.uv, data.vis)
        sim = error_statistics(simulate_detections(NoiseConfig(), data, seed=2), data.uv, data.vis)
        assert sim["gross_rate"] == pytest.approx(real["gross_rate"], rel=0.5)
        assert sim["swap_rate"] == pytest.approx(real["swap_rate"], rel=0.5)
        # occlusion makes real and simulated errors larger alike
        assert sim["median_occluded"] > sim["median_visible"] and real["median_occluded"] > real["median_visible"]


def test_noise_fit_recovers_the_parameters_that_made_the_noise(train):
    rng = np.random.default_rng(3)
    known = NoiseConfig(sigma=0.02, joint_scale=tuple(rng.uniform(0.7, 1.5, 17).round(2)), occluded_scale=2.0,
                        p_outlier=0.06, outlier_scale=6.0, p_swap=0.03,
                        joint_outlier=tuple(rng.uniform(0.3, 2.0, 17).round(2)))
    truth = DetectionSet(train.uv, None, train.vis)
    data = dataclasses.replace(truth, kp=simulate_detections(known, truth, seed=4))
    fit = fit_noise(data, seed=5)
    assert fit.sigma == pytest.approx(known.sigma, rel=0.05)
    np.testing.assert_allclose(fit.joint_scale, known.joint_scale, rtol=0.1)
    assert fit.occluded_scale == pytest.approx(known.occluded_scale, rel=0.15)
    assert fit.p_outlier == pytest.approx(known.p_outlier, rel=0.2)
    assert fit.outlier_scale == pytest.approx(known.outlier_scale, rel=0.15)
    assert fit.p_swap == pytest.approx(known.p_swap, rel=0.2)


def test_apparent_swaps_find_a_mirrored_detection_and_nothing_else(train):
    uv = train.uv[:50]
    kp = uv.copy()
    assert not apparent_swaps(kp, uv).any()
    kp[:, 13] = uv[:, 16]                        # left wrist detected on the right wrist
    swaps = apparent_swaps(kp, uv)
    apart = np.linalg.norm(uv[:, 13] - uv[:, 16], axis=-1) > 0.05 * (np.ptp(uv, axis=1).mean(-1))
    assert swaps[apart, 13].all() and not np.delete(swaps, 13, axis=1).any()


def test_confidence_fit_recovers_known_parameters():
    rng = np.random.default_rng(0)
    vis = rng.uniform(0, 1, (4000, 17))
    known = ConfidenceConfig(base=0.55, gain=0.35, sigma=0.1, p_low=0.04)
    c = simulate_confidence(vis, np.ones(vis.shape, bool), rng, known)
    fit = fit_confidence(c, vis)
    assert fit.base == pytest.approx(known.base, abs=0.02) and fit.gain == pytest.approx(known.gain, abs=0.03)
    assert fit.sigma == pytest.approx(known.sigma, rel=0.1) and fit.p_low == pytest.approx(known.p_low, rel=0.15)


def test_confidence_fit_never_makes_visible_joints_less_confident():
    rng = np.random.default_rng(1)
    vis = rng.uniform(0, 1, (500, 17))
    c = np.clip(0.9 - 0.2 * vis + 0.05 * rng.standard_normal(vis.shape), 0, 1)   # anti-correlated data
    fit = fit_confidence(c, vis)
    assert fit.gain == 0.0
    # the simulator's confidence never falls with visibility: the fitted defaults (gain >= 0) and a
    # steeper model alike
    vis_levels = np.repeat(np.linspace(0, 1, 5), 4000)[:, None].repeat(17, 1)
    for cfg in (ConfidenceConfig(), ConfidenceConfig(base=0.3, gain=0.6, sigma=0.1, p_low=0.1)):
        assert cfg.gain >= 0
        c = simulate_confidence(vis_levels, np.ones(vis_levels.shape, bool), rng, cfg)
        means = c.reshape(5, -1).mean(1)
        assert np.all(np.diff(means) > -0.005), means
    with pytest.raises(ValueError, match="too few"):
        fit_confidence(c[:1, :5], vis[:1, :5])
