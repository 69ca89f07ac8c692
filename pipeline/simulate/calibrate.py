"""Fit the simulator's landmark-z model to a real detector's landmark z on real frames.

The model (`noise.simulate_landmark_z`): per frame, z_j = s * (Z_j - Z_hips) + e_j with the true
camera-space joint depths Z (metres), a per-frame slope s = lz_scale * exp(N(0, lz_scale_sigma))
and per-joint noise e_j ~ N(0, lz_sigma). The fit regresses each frame's real landmark z on
the true hip-relative z (slope and intercept, as BlazePose's origin is its own hip estimate),
then takes the geometric mean and log-spread of the slopes and the pooled residual spread.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from auglift.cache import list_shards, open_shard
from auglift.pipeline.precompute import PrecomputeConfig, run_precompute

from .noise import DepthNoiseConfig, simulate_landmark_z

MIN_JOINTS = 8   # a frame needs this many joints with a landmark z to give a slope


@dataclass(frozen=True)
class LandmarkZFit:
    lz_scale: float          # geometric mean of the per-frame slopes
    lz_scale_sigma: float    # std of their logs
    lz_sigma: float          # pooled residual std, metres
    frames: int              # frames that gave a slope
    slopes: tuple[float, ...]
    correlations: tuple[float, ...]

    def as_dict(self) -> dict:
        return asdict(self)


def hip_relative_z(joints_3d_cam: np.ndarray) -> np.ndarray:
    """`(F, 17, 3)` mm -> `(F, 17)` metres, z minus the mean of the two hips (H36M-17 1 and 4)."""
    z = np.asarray(joints_3d_cam, np.float64)[..., 2] / 1000.0
    return z - 0.5 * (z[:, 1:2] + z[:, 4:5])


def fit_landmark_z(landmark_z: np.ndarray, joints_3d_cam: np.ndarray) -> LandmarkZFit:
    """Fit the model to `(F, 17)` real landmark z (metres, NaN = missing) and `(F, 17, 3)` GT mm.

    Frames with fewer than MIN_JOINTS finite values, or with a non-positive slope (no usable
    depth order), are left out of the scale fit; raises ValueError when none is left.
    """
    lz = np.asarray(landmark_z, np.float64)
    truth = hip_relative_z(joints_3d_cam)
    if lz.shape != truth.shape:
        raise ValueError(f"landmark z {lz.shape} and ground truth {truth.shape} do not match")
    slopes, corrs, residuals = [], [], []
    for z, t in zip(lz, truth):
        ok = np.isfinite(z) & np.isfinite(t)
        if ok.sum() < MIN_JOINTS:
            continue
        design = np.stack([t[ok], np.ones(ok.sum())], axis=1)
        coef = np.linalg.lstsq(design, z[ok], rcond=None)[0]
        if coef[0] <= 0:
            continue
        slopes.append(float(coef[0]))
        corrs.append(float(np.corrcoef(t[ok], z[ok])[0, 1]))
        residuals.append(z[ok] - design @ coef)
    if not slopes:
        raise ValueError("no frame with enough landmark z values and a positive slope to fit")
    logs = np.log(slopes)
    return LandmarkZFit(float(np.exp(logs.mean())), float(logs.std(ddof=1)) if len(logs) > 1 else 0.0,
                        float(np.concatenate(residuals).std()), len(slopes), tuple(slopes), tuple(corrs))


# ------------------------------------------------------------------------- the calibration run
FIT_SUBJECT_PREFIX = "h36m-"     # the H36M sample frames: training subjects S1 S5 S7 S8
SIMULATED_DRAWS = 200            # simulated frames per real frame for the "simulated" column


def sample_landmark_z(cache: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Real landmark z and GT joints of each sample shard with a person: key -> ((1, 17), (1, 17, 3))."""

    out = {}
    for path in list_shards(cache):
        with open_shard(path) as s:
            a = s.read_all(["depth", "joints_3d_cam"])
            if np.isfinite(a["depth"]).sum() >= MIN_JOINTS:
                out[s.key] = (a["depth"], a["joints_3d_cam"])
    return out


def precompute_real(dataset: str, data_root: str | Path, work: str | Path) -> Path:
    """BlazePose (precompute's default detector and depth) on the real `samples` or `videos` of
    `data_root`, into the cache root `work`; returns `work`."""

    run_precompute(dataset, Path(data_root) / dataset, work, PrecomputeConfig(workers=0), progress=False, log=None)
    return Path(work)


def calibrate_landmark_z(data_root: str | Path, work: str | Path, seed: int = 0) -> dict:
    """BlazePose on the real sample frames -> the landmark-z fit on the H36M (training-subject)
    frames, the same statistics on the held-out 3DHP frames, and on frames simulated with the fit."""

    precompute_real("samples", data_root, work)
    frames = sample_landmark_z(work)
    fit_keys = sorted(k for k in frames if k.split("/")[1].startswith(FIT_SUBJECT_PREFIX))
    held_keys = sorted(k for k in frames if k not in fit_keys)

    def stack(keys):
        return (np.concatenate([frames[k][0] for k in keys]), np.concatenate([frames[k][1] for k in keys]))

    fit = fit_landmark_z(*stack(fit_keys))
    joints = np.repeat(stack(fit_keys)[1], SIMULATED_DRAWS, axis=0)
    model = DepthNoiseConfig(mode="landmark_z", lz_scale=fit.lz_scale, lz_scale_sigma=fit.lz_scale_sigma,
                             lz_sigma=fit.lz_sigma)
    simulated = fit_landmark_z(simulate_landmark_z(joints, np.random.default_rng(seed), model), joints)
    return {"fit_frames": fit_keys, "held_out_frames": held_keys, "fit": fit.as_dict(),
            "held_out": fit_landmark_z(*stack(held_keys)).as_dict() if held_keys else None,
            "simulated": simulated.as_dict(), "defaults": {k: getattr(DepthNoiseConfig(), k)
                                                          for k in ("lz_scale", "lz_scale_sigma", "lz_sigma")}}


def landmark_z_page(result: dict, command: str, revision: str) -> str:
    """The results page: every fitted statistic, real (fit and held-out frames) beside simulated."""
    rows = [("per-frame slope, geometric mean (lz_scale)", "lz_scale", "{:.2f}"),
            ("per-frame slope, std of log (lz_scale_sigma)", "lz_scale_sigma", "{:.2f}"),
            ("residual per joint, m (lz_sigma)", "lz_sigma", "{:.3f}"),
            ("frames", "frames", "{:d}")]
    cols = [("real, fit frames", result["fit"]), ("real, held-out frames", result["held_out"]),
            ("simulated with the fit", result["simulated"])]
    lines = ["# Landmark-z calibration: simulated BlazePose z against real BlazePose z", "",
             "```", command, "```", "", f"Git revision {revision}.", "",
             "BlazePose (mediapipe 0.10.21, pose_landmark_full) on the real sample frames; its world-landmark z "
             "regressed per frame on the true hip-relative z (metres). The model (`pipeline/simulate/noise.py` "
             "`simulate_landmark_z`) is fitted on the H36M frames of the training subjects only: "
             + ", ".join(f"`{k}`" for k in result["fit_frames"]) + ". The MPI-INF-3DHP frames are held out: "
             + ", ".join(f"`{k}`" for k in result["held_out_frames"]) + ". The simulated column re-fits frames "
             f"simulated from the fit frames' ground truth ({SIMULATED_DRAWS} draws each).", "",
             "| statistic | " + " | ".join(c for c, _ in cols) + " | simulator default |",
             "|---|" + "---:|" * (len(cols) + 1)]
    for label, key, fmt in rows:
        cells = [fmt.format(d[key]) if d else "-" for _, d in cols]
        default = fmt.format(result["defaults"][key]) if key in result["defaults"] else ""
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {default} |")
    lines += ["", "Per-frame slopes (real, fit frames): " + ", ".join(f"{s:.2f}" for s in result["fit"]["slopes"])
              + "; correlations with the true z: " + ", ".join(f"{c:.2f}" for c in result["fit"]["correlations"]) + ".",
              "", "Four frames give four slopes: the spread is a rough estimate, and the held-out frames show how far "
              "it carries to another dataset. BlazePose's z is compressed (slopes well below 1) and noisy; a lifter "
              "trained on metric depth would read it as a much flatter body, which is why lifters are trained on "
              "cues of the kind they will see."]
    return "\n".join(lines) + "\n"
