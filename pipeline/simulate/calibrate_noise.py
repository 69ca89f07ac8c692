"""Fit the simulator's 2D detector-noise model (`noise.NoiseConfig`) to real detections.

Real data: the Stacked-Hourglass (SH) detections of Human3.6M against the projected ground
truth (both in pixels, H36M-17), with the simulator's own visibility (`render.visibility`) of
each ground-truth joint, so that the occlusion term is fitted on the visibility the simulator
will feed it.

Statistics (the same function measures real and simulated detections):
- the error of joint j in a frame is |detection - truth| / box, box = `cues.box_size` of the truth;
- an *apparent swap* is a left/right joint whose detection lies nearer its mirror joint's truth
  than its own, where the two truths are at least SWAP_MIN_SEPARATION boxes apart (closer
  pairs cannot be told apart).

The fit: (1) apparent swaps are set aside; the remaining errors are fitted by maximum likelihood
with the model's radial law, a two-component Rayleigh mixture per joint: per-axis std
s_j * (1 + (occluded_scale - 1)(1 - v)), times outlier_scale with probability p_j;
(2) p_swap is the one value at which the simulator's apparent-swap rate equals the real one:
that rate is linear in p_swap, so two simulations (p_swap = 0 and SWAP_PROBE) on the same
truths fix it. `sigma` is the geometric mean of the s_j and `joint_scale` = s_j / sigma;
`p_outlier` is the mean of the p_j and `joint_outlier` = p_j / p_outlier.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from auglift.core.codec import box_size
from auglift.core.skeleton import H36M17_JOINTS, NUM_JOINTS, flip_pairs
from auglift.pipeline.sources.base import DatasetError
from auglift.pipeline.sources.h36m import H36MAdapter

from .noise import NoiseConfig, add_detector_noise
from .render import BodyModel, visibility

SWAP_MIN_SEPARATION = 0.05   # boxes between a joint's and its mirror's truth to call a swap
SWAP_PROBE = 0.05            # the second p_swap simulated to read the rate's slope
QUANTILES = (0.5, 0.9, 0.99)
VIS_SPLIT = 0.5              # "occluded" = visibility below this, for the by-visibility rows
TAIL = 0.2                   # boxes: an error beyond this counts as gross


@dataclass
class DetectionSet:
    """Truth and detections of sampled frames: uv, kp `(N, 17, 2)` px, vis `(N, 17)` in [0, 1]."""

    uv: np.ndarray
    kp: np.ndarray
    vis: np.ndarray
    sequences: int = 0

    def __len__(self) -> int:
        return len(self.uv)


def load_sh_frames(data_root, subjects, step: int = 20) -> DetectionSet:
    """Every `step`-th frame of each H36M sequence of `subjects` that has SH detections."""
    adapter = H36MAdapter(f"{data_root}/h36m")
    uv, kp, vis, n = [], [], [], 0
    body = BodyModel()
    for i, ref in enumerate(adapter.list_sequences(subjects=list(subjects))):
        try:
            seq = adapter.load(ref)
        except DatasetError:
            continue                     # a sequence without a usable 3D file gives no pairs
        if seq.keypoints_2d is None:
            continue
        # A per-sequence offset spreads the sampled frames over the gait cycle, not one phase.
        J = seq.joints_3d_cam[i % step::step].astype(np.float64)
        t = seq.cam.project(J)
        uv.append(t)
        kp.append(seq.keypoints_2d[i % step::step].astype(np.float64))
        vis.append(visibility(J, t, seq.cam, seq.image_size, body))
        n += 1
    if not uv:
        raise ValueError(f"{data_root}/h36m: no sequence of {', '.join(subjects)} with SH detections")
    return DetectionSet(np.concatenate(uv), np.concatenate(kp), np.concatenate(vis), n)


def normalised_errors(kp: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """`(N, 17)` |kp - uv| / box of uv."""
    return np.linalg.norm(kp - uv, axis=-1) / box_size(uv)[:, None]


def apparent_swaps(kp: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """`(N, 17)` True where a left/right detection is nearer its mirror's truth (see module doc)."""
    perm = flip_pairs()
    box = box_size(uv)[:, None]
    own = np.linalg.norm(kp - uv, axis=-1)
    mirror = np.linalg.norm(kp - uv[:, perm], axis=-1)
    apart = np.linalg.norm(uv - uv[:, perm], axis=-1) >= SWAP_MIN_SEPARATION * box
    return (mirror < own) & apart & (perm != np.arange(NUM_JOINTS))[None]


def error_statistics(kp: np.ndarray, uv: np.ndarray, vis: np.ndarray) -> dict:
    """Per-joint error quantiles, gross-error and swap rates, and the median by visibility."""
    e = normalised_errors(kp, uv)
    swaps = apparent_swaps(kp, uv)
    lr = flip_pairs() != np.arange(NUM_JOINTS)
    occluded = vis < VIS_SPLIT
    return {
        "frames": int(len(e)),
        "quantiles": {f"q{int(q * 100)}": np.nanquantile(e, q, axis=0).round(4).tolist() for q in QUANTILES},
        "median_all": float(np.nanmedian(e)),
        "gross_rate": float(np.nanmean(e > TAIL)),
        "swap_rate": float(swaps[:, lr].mean()),
        "median_visible": float(np.nanmedian(e[~occluded])),
        "median_occluded": float(np.nanmedian(e[occluded])) if occluded.any() else None,
        "occluded_fraction": float(occluded.mean()),
    }


# ------------------------------------------------------------------------------- the fit
def _negative_log_likelihood(theta: np.ndarray, r: np.ndarray, v: np.ndarray, joint: np.ndarray) -> float:
    J = NUM_JOINTS
    s = np.exp(theta[:J])[joint] * (1 + (np.exp(theta[2 * J]) - 1) * (1 - v))
    p = 1 / (1 + np.exp(-theta[J:2 * J]))[joint]
    k = 1 + np.exp(theta[2 * J + 1])
    def rayleigh(scale):
        return r / scale**2 * np.exp(-0.5 * (r / scale) ** 2)
    return -np.log((1 - p) * rayleigh(s) + p * rayleigh(k * s) + 1e-300).mean()


def fit_gaussian_mixture(errors: np.ndarray, vis: np.ndarray, keep: np.ndarray) -> dict:
    """Maximum likelihood of (s_j, p_j, occluded_scale, outlier_scale) on `errors[keep]`; p_j is
    joint j's outlier probability."""
    J = NUM_JOINTS
    r, v = errors[keep], vis[keep]
    joint = np.broadcast_to(np.arange(J), errors.shape)[keep]
    med = np.array([np.median(errors[:, j][keep[:, j]]) for j in range(J)]) / 1.1774  # Rayleigh median
    theta0 = np.concatenate([np.log(med), np.full(J, -3.0), [np.log(1.5), np.log(5.0)]])
    res = minimize(_negative_log_likelihood, theta0, args=(r, v, joint), method="L-BFGS-B")
    t = res.x
    return {"s": np.exp(t[:J]), "p": 1 / (1 + np.exp(-t[J:2 * J])), "occluded_scale": float(np.exp(t[2 * J])),
            "outlier_scale": float(1 + np.exp(t[2 * J + 1])), "converged": bool(res.success)}


def swap_rate_of(cfg: NoiseConfig, data: DetectionSet, seed: int) -> float:
    """The apparent-swap rate of the simulator's detections on `data`'s truths."""
    kp, _ = add_detector_noise(data.uv, data.vis, np.random.default_rng(seed), cfg)
    lr = flip_pairs() != np.arange(NUM_JOINTS)
    return float(apparent_swaps(kp, data.uv)[:, lr].mean())


def fit_noise(data: DetectionSet, seed: int = 0, digits: int = 3) -> NoiseConfig:
    """The NoiseConfig (values rounded to `digits` significant places) fitted to `data`."""
    e = normalised_errors(data.kp, data.uv)
    keep = np.isfinite(e) & ~apparent_swaps(data.kp, data.uv)
    m = fit_gaussian_mixture(e, data.vis, keep)
    sigma = float(np.exp(np.log(m["s"]).mean()))
    p_outlier = float(m["p"].mean())
    def r(x):
        return float(f"{x:.{digits}g}")
    cfg = NoiseConfig(sigma=r(sigma), joint_scale=tuple(r(s / sigma) for s in m["s"]),
                      occluded_scale=r(m["occluded_scale"]), p_outlier=r(p_outlier),
                      outlier_scale=r(m["outlier_scale"]), p_swap=0.0,
                      joint_outlier=tuple(r(p / p_outlier) for p in m["p"]))
    real = float(apparent_swaps(data.kp, data.uv)[:, flip_pairs() != np.arange(NUM_JOINTS)].mean())
    base = swap_rate_of(cfg, data, seed)
    slope = (swap_rate_of(dataclasses.replace(cfg, p_swap=SWAP_PROBE), data, seed) - base) / SWAP_PROBE
    return dataclasses.replace(cfg, p_swap=r(min(1.0, max(0.0, (real - base) / slope))))


def simulate_detections(cfg: NoiseConfig, data: DetectionSet, seed: int) -> np.ndarray:
    """`(N, 17, 2)` simulated detections of `data`'s truths (the real detections are not used)."""
    return add_detector_noise(data.uv, data.vis, np.random.default_rng(seed), cfg)[0]


def noise_config_dict(cfg: NoiseConfig) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()}


# ------------------------------------------------------------------------- the calibration run
FIT_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")
CHECK_SUBJECTS = ("S9", "S11")


def calibrate_noise(data_root, step: int = 20, seed: int = 0) -> dict:
    """Fit on the training subjects; real and simulated statistics on them and on S9/S11."""
    fit_data = load_sh_frames(data_root, FIT_SUBJECTS, step)
    check_data = load_sh_frames(data_root, CHECK_SUBJECTS, step)
    cfg = fit_noise(fit_data, seed)
    out = {"fit_subjects": list(FIT_SUBJECTS), "check_subjects": list(CHECK_SUBJECTS), "frame_step": step,
           "sequences": {"fit": fit_data.sequences, "check": check_data.sequences},
           "fitted": noise_config_dict(cfg), "defaults": noise_config_dict(NoiseConfig()), "joints": list(H36M17_JOINTS)}
    for name, d in (("fit", fit_data), ("check", check_data)):
        out[f"real_{name}"] = error_statistics(d.kp, d.uv, d.vis)
        out[f"simulated_{name}"] = error_statistics(simulate_detections(cfg, d, seed), d.uv, d.vis)
    return out


# ------------------------------------------------------------------------------- the page
def _ratio_extremes(result: dict, key: str, q: str) -> str:
    """The joints where simulated / real quantile `q` is farthest from 1, as text."""
    real = np.asarray(result[f"real_{key}"]["quantiles"][q])
    sim = np.asarray(result[f"simulated_{key}"]["quantiles"][q])
    ratio = sim / real
    order = np.argsort(-np.abs(np.log(ratio)))[:3]
    return ", ".join(f"{result['joints'][j]} {ratio[j]:.2f}" for j in order)


def noise_page(result: dict, command: str, revision: str) -> str:
    """The results page: fitted parameters, then every statistic real beside simulated."""
    fit, chk = "S1 S5 S6 S7 S8", "S9 S11"
    f, d = result["fitted"], result["defaults"]
    lines = ["# 2D noise calibration: simulated detector noise against real Stacked-Hourglass detections", "",
             "```", command, "```", "", f"Git revision {revision}.", "",
             "Real: the Stacked-Hourglass detections of Human3.6M (3d-pose-baseline release, MPII-16 mapped to "
             "H36M-17; `spine` and `neck` synthesised) against the ground truth projected through the real cameras; "
             f"every {result['frame_step']}th frame of each sequence (`--step`). Error = |detection - truth| / box, "
             "box = `pipeline.cues.box_size` of the truth. Visibility = the simulator's own (`render.visibility`) "
             "of the truth. Apparent swap = a left/right detection nearer its mirror's truth than its own "
             f"(truths at least {SWAP_MIN_SEPARATION} box apart). Simulated: `add_detector_noise` with the fitted "
             "parameters on the same truths and visibilities.", "",
             f"**Fitted on the training subjects {fit} only** ({result['sequences']['fit']} sequence-cameras, "
             f"{result['real_fit']['frames']} frames); **{chk} are only checked** "
             f"({result['sequences']['check']} sequence-cameras, {result['real_check']['frames']} frames): nothing "
             "is chosen on them. Method (`pipeline/simulate/calibrate_noise.py`): maximum likelihood of the "
             "model's radial law (per-joint Rayleigh mixture) on the non-swapped errors, then `p_swap` set so the "
             "simulated apparent-swap rate equals the real one.", "",
             "## Parameters", "", "| parameter | fitted | simulator default |", "|---|---:|---:|"]
    for k in ("sigma", "occluded_scale", "p_outlier", "outlier_scale", "p_swap"):
        lines.append(f"| `{k}` | {f[k]:.4g} | {d[k]:.4g} |")
    for k in ("joint_scale", "joint_outlier"):
        lines.append(f"| `{k}` | " + ", ".join(f"{x:.3g}" for x in f[k]) + " | "
                     + ", ".join(f"{x:.3g}" for x in d[k]) + " |")
    cols = [("real", "real_fit"), ("simulated", "simulated_fit"), ("real", "real_check"), ("simulated", "simulated_check")]
    lines += ["", "## Summary statistics", "",
              f"| statistic | real {fit} | simulated {fit} | real {chk} (check) | simulated {chk} (check) |",
              "|---|---:|---:|---:|---:|"]
    rows = [("median error, box", "median_all"), ("median error, visible joints (v >= 0.5)", "median_visible"),
            ("median error, occluded joints (v < 0.5)", "median_occluded"),
            (f"gross-error rate (error > {TAIL} box)", "gross_rate"),
            ("apparent left/right swap rate (left/right joints)", "swap_rate"),
            ("occluded fraction (v < 0.5)", "occluded_fraction")]
    for label, key in rows:
        lines.append(f"| {label} | " + " | ".join(f"{result[c][key]:.4f}" for _, c in cols) + " |")
    lines += ["", "## Per joint: error quantiles (box units)", "",
              f"Columns: real / simulated, on {fit} (fit) and on {chk} (check).", "",
              "| joint | q50 fit | q90 fit | q99 fit | q50 check | q90 check | q99 check |", "|---|---:|---:|---:|---:|---:|---:|"]
    for j, name in enumerate(result["joints"]):
        cells = [f"{result['real_' + s]['quantiles'][q][j]:.3f} / {result['simulated_' + s]['quantiles'][q][j]:.3f}"
                 for s in ("fit", "check") for q in ("q50", "q90", "q99")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Where the model does not match",
              "", "Largest simulated / real ratios per joint (fit subjects): median "
              + _ratio_extremes(result, "fit", "q50") + "; 99th percentile " + _ratio_extremes(result, "fit", "q99")
              + ". On the check subjects: median " + _ratio_extremes(result, "check", "q50") + "; 99th percentile "
              + _ratio_extremes(result, "check", "q99") + ".", "",
              "The model's errors are zero-mean; the real ones are not for the joints whose definitions differ between "
              "the SH detector and the mocap skeleton (head, neck, hips), so their spread is carried by a larger "
              "`joint_scale` instead of an offset. Gross errors share one `outlier_scale`: the real tails are longer on "
              "the limb ends and shorter on the trunk than one scale gives, which the per-joint `joint_outlier` only "
              "partly absorbs."]
    return "\n".join(lines) + "\n"
