"""Detector-like 2D noise, visibility-driven confidence, and depth-model errors.

All functions draw from a caller-given `numpy.random.Generator`, so a shard is a pure function
of (sequence, camera, config, seed).

The default 2D noise and confidence are fitted to real detectors by `auglift calibrate 2d-noise`
and `auglift calibrate confidence` (`make calibrate`; results/noise_calibration.md and
results/confidence_calibration.md show every simulated statistic beside the real one).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from auglift.core.codec import box_size
from auglift.core.skeleton import NUM_JOINTS, flip_pairs

# Fitted (`auglift calibrate 2d-noise`, results/noise_calibration.md) to the real Stacked-Hourglass
# detections of Human3.6M against the projected ground truth, on the training subjects S1 S5 S6 S7
# S8 only (every 20th frame, 14,667 frames) and checked on S9/S11. Per H36M-17 joint: the relative
# error scale (head and neck are large because SH's points differ from the mocap joints there) and
# the relative gross-error rate (the limb ends fail far more often than the trunk).
_JOINT_SCALE = (1.01, 1.43, 0.91, 1.08, 1.2, 0.745, 1.34, 0.836, 0.804, 1.56, 2.64,
                0.818, 0.684, 0.775, 0.857, 0.745, 0.769)
_JOINT_OUTLIER = (0.833, 0.21, 1.4, 1.26, 0.372, 1.65, 0.596, 1.63, 0.523, 0.371, 0.419,
                  0.164, 1.51, 2.18, 0.22, 1.22, 2.45)


@dataclass(frozen=True)
class NoiseConfig:
    """2D detector noise. Gaussian errors are per axis, in units of the pose's box size.

    For joint j with visibility v (0..1) the per-axis std is
    `sigma * joint_scale[j] * (1 + (occluded_scale - 1) * (1 - v)) * box`; with probability
    `p_outlier * joint_outlier[j]` the std is `outlier_scale` times larger (a gross error), and
    with probability `p_swap` a left or right joint takes the position detected for its mirror.
    `joint_outlier` exists because real detectors' gross errors concentrate on the limb ends
    (results/noise_calibration.md: one rate for all joints cannot match their tails).
    """

    # Fitted defaults: see _JOINT_SCALE above (results/noise_calibration.md).
    sigma: float = 0.031
    joint_scale: tuple[float, ...] = _JOINT_SCALE
    occluded_scale: float = 1.5
    p_outlier: float = 0.0562
    outlier_scale: float = 4.28
    p_swap: float = 0.0202
    joint_outlier: tuple[float, ...] = _JOINT_OUTLIER

    def __post_init__(self):
        for name in ("joint_scale", "joint_outlier"):
            if len(getattr(self, name)) != NUM_JOINTS:
                raise ValueError(f"noise.{name} needs {NUM_JOINTS} values, got {len(getattr(self, name))}")
        for name in ("p_outlier", "p_swap"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"noise.{name} must be a probability, got {getattr(self, name)}")
        if not all(0.0 <= self.p_outlier * w <= 1.0 for w in self.joint_outlier):
            raise ValueError("noise.p_outlier * joint_outlier must be a probability for every joint")
        if self.sigma < 0 or self.outlier_scale < 0 or self.occluded_scale < 0:
            raise ValueError("noise.sigma, outlier_scale and occluded_scale must be >= 0")


@dataclass(frozen=True)
class ConfidenceConfig:
    """c = clip(base + gain * visibility + N(0, sigma), 0, 1), or with probability `p_low` a
    uniform draw in [0, 1) (a real detector doubts a few joints whatever their visibility);
    0 for a joint off the image.

    Visibility (`render.visibility`) already counts disc pixels outside the image as hidden, so a
    joint on the border is partly truncated. The 2D error never enters.
    """

    # Fitted (`auglift calibrate confidence`, results/confidence_calibration.md) to BlazePose
    # (mediapipe 0.10.21) on the four real H36M sample frames of the training subjects S1 S5 S7 S8;
    # checked on the 3DHP sample frames and the videos. BlazePose is confident almost everywhere
    # (median ~1) and doubts a few joints (p_low); on these frames its doubt is not explained by the
    # simulator's visibility better than by chance, so the fitted gain is 0.
    base: float = 1.01
    gain: float = 0.0
    sigma: float = 0.0188
    p_low: float = 0.139

    def __post_init__(self):
        if not 0.0 <= self.p_low <= 1.0 or self.sigma < 0:
            raise ValueError(f"confidence.p_low must be a probability and sigma >= 0, got {self.p_low}, {self.sigma}")


# Simulated depth conventions, one per real depth family (cache/FORMAT.md 3.2).
DEPTH_MODES = ("metric", "relative", "landmark_z")


@dataclass(frozen=True)
class DepthNoiseConfig:
    """Errors of a simulated depth model, applied to the depth read at each keypoint.

    - `mult_sigma`: independent multiplicative noise per keypoint (d * (1 + N(0, s)));
    - `scale_sigma`: a per-frame global scale error (d * exp(N(0, s))), like a metric model's
      per-image scale drift;
    - `mode="relative"`: output affine-invariant inverse depth, a / d + b with a per-frame a
      (log-uniform in `rel_scale`) and b (uniform in `rel_shift`), like relative models.
    - `mode="landmark_z"`: BlazePose's world-landmark z instead of a depth map (see
      `simulate_landmark_z`; the lz_* fields, fitted to real BlazePose output on real frames by
      `pipeline.simulate.calibrate.fit_landmark_z`).
    """

    mode: str = "metric"
    mult_sigma: float = 0.01
    scale_sigma: float = 0.03
    rel_scale: tuple[float, float] = (0.5, 2.0)
    rel_shift: tuple[float, float] = (0.0, 0.5)
    # Fitted on BlazePose (mediapipe 0.10.21, pose_landmark_full, run as precompute runs it on the
    # samples: on a crop around each actor) over the four real H36M sample frames of the training
    # subjects S1 S5 S7 S8 (`make calibrate`, results/landmark_z_calibration.md): BlazePose
    # compresses depth (median per-frame slope against the true hip-relative z well below 1) and
    # its slope varies a lot from frame to frame.
    lz_scale: float = 0.36
    lz_scale_sigma: float = 0.55
    lz_sigma: float = 0.085

    def __post_init__(self):
        if self.mode not in DEPTH_MODES:
            raise ValueError(f"depth.mode must be one of {DEPTH_MODES}, got {self.mode!r}")
        if not 0 < self.rel_scale[0] <= self.rel_scale[1]:
            raise ValueError(f"depth.rel_scale must be 0 < low <= high, got {self.rel_scale}")
        if self.lz_scale <= 0 or self.lz_scale_sigma < 0 or self.lz_sigma < 0:
            raise ValueError("depth.lz_scale must be > 0, lz_scale_sigma and lz_sigma >= 0")

    @property
    def kind(self) -> str:
        """The shard's depth kind (cache/FORMAT.md 3.2): always a simulated_* kind."""
        return {"metric": "simulated_metric", "relative": "simulated_relative_inverse",
                "landmark_z": "simulated_landmark_z"}[self.mode]


def add_detector_noise(uv: np.ndarray, visibility: np.ndarray, rng: np.random.Generator,
                       cfg: NoiseConfig) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """True pixels `(F, 17, 2)` -> noisy detections, plus masks {outlier, swapped} `(F, 17)`.

    NaN joints (behind the camera) stay NaN. Every random draw is made for every joint, so the
    stream of random numbers does not depend on the data.
    """
    uv = np.asarray(uv, np.float64)
    F = uv.shape[0]
    box = box_size(uv)
    box = np.where(np.isfinite(box) & (box > 0), box, 0.0)[:, None]
    scale = cfg.sigma * np.asarray(cfg.joint_scale)[None] * (
        1.0 + (cfg.occluded_scale - 1.0) * (1.0 - np.clip(visibility, 0.0, 1.0)))
    outlier = rng.random((F, NUM_JOINTS)) < cfg.p_outlier * np.asarray(cfg.joint_outlier)[None]
    scale = scale * np.where(outlier, cfg.outlier_scale, 1.0) * box
    noisy = uv + rng.standard_normal((F, NUM_JOINTS, 2)) * scale[..., None]
    swapped = rng.random((F, NUM_JOINTS)) < cfg.p_swap
    perm = flip_pairs()
    swapped &= perm[None] != np.arange(NUM_JOINTS)[None]
    noisy = np.where(swapped[..., None], noisy[:, perm], noisy)
    return noisy, {"outlier": outlier, "swapped": swapped}


def simulate_confidence(visibility: np.ndarray, on_image: np.ndarray, rng: np.random.Generator,
                        cfg: ConfidenceConfig) -> np.ndarray:
    """`(F, 17)` confidence in [0, 1] from visibility; exactly 0 where `on_image` is False."""
    c = cfg.base + cfg.gain * np.asarray(visibility, np.float64)
    c = c + cfg.sigma * rng.standard_normal(c.shape)
    low = rng.random(c.shape)        # drawn for every joint: the stream does not depend on p_low
    c = np.where(low < cfg.p_low, rng.random(c.shape), c)
    return np.where(on_image, np.clip(c, 0.0, 1.0), 0.0).astype(np.float32)


def apply_depth_model(depth: np.ndarray, rng: np.random.Generator, cfg: DepthNoiseConfig) -> np.ndarray:
    """Metric depth `(F, K)` in metres -> what the configured depth model would report."""
    d = np.asarray(depth, np.float64)
    F = d.shape[0]
    d = d * (1.0 + cfg.mult_sigma * rng.standard_normal(d.shape))
    d = d * np.exp(cfg.scale_sigma * rng.standard_normal((F, 1)))
    a = np.exp(rng.uniform(np.log(cfg.rel_scale[0]), np.log(cfg.rel_scale[1]), (F, 1)))
    b = rng.uniform(cfg.rel_shift[0], cfg.rel_shift[1], (F, 1))
    if cfg.mode == "relative":
        with np.errstate(divide="ignore", invalid="ignore"):
            d = a / d + b
    return d.astype(np.float32)


def simulate_landmark_z(joints_3d_cam: np.ndarray, rng: np.random.Generator, cfg: DepthNoiseConfig) -> np.ndarray:
    """`(F, 17, 3)` camera-space joints in mm -> simulated BlazePose world-landmark z `(F, 17)`, metres.

    BlazePose's convention: z relative to the hip centre (the mean of the two hips), larger =
    farther. Its errors, as fitted on real frames: a per-frame slope `lz_scale * exp(N(0,
    lz_scale_sigma))` against the true hip-relative z, plus independent per-joint noise of std
    `lz_sigma` metres. A landmark z is not read off a depth map, so there is no occlusion.
    """
    J = np.asarray(joints_3d_cam, np.float64)
    z = J[..., 2] / 1000.0
    hips = 0.5 * (z[:, 1] + z[:, 4])   # H36M-17: 1 = right hip, 4 = left hip
    slope = cfg.lz_scale * np.exp(cfg.lz_scale_sigma * rng.standard_normal((len(J), 1)))
    out = slope * (z - hips[:, None]) + cfg.lz_sigma * rng.standard_normal(z.shape)
    return out.astype(np.float32)
