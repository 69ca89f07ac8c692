"""Fit the simulator's confidence model (`noise.ConfidenceConfig`) to real BlazePose confidence.

Real data: BlazePose (mediapipe 0.10.21, run as precompute runs it) on the real sample frames,
whose ground truth gives the simulator's own visibility (`render.visibility`) of every joint and
the detection's actual 2D error; on the real videos (no ground truth) only the distribution of
confidence is compared.

The model: c = clip(base + gain * v + N(0, sigma), 0, 1), and with probability `p_low` instead a
uniform draw in [0, 1) (BlazePose marks a few visible joints as doubtful). The fit is the maximum
likelihood of that mixture over all joints, a value at or above CENSOR counting as "at the clip"
(the simulator clips at 1, BlazePose gives 0.99x), with gain >= 0: a more visible joint is never
made less confident, and the uniform part is the minority (p_low <= 0.5).
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.stats import norm, spearmanr

from auglift.cache import list_shards, open_shard
from auglift.core.camera import Camera
from auglift.core.codec import box_size

from .noise import ConfidenceConfig, simulate_confidence
from .render import BodyModel, visibility

LOW = 0.5
CENSOR = 0.99
SIMULATED_DRAWS = 200
FIT_PREFIX = "samples/h36m-"   # the H36M sample frames: training subjects S1 S5 S7 S8


def shard_camera(attrs: dict) -> Camera:
    """The camera of a real-frame shard from its stored intrinsics (camera space = world)."""
    i = attrs["intrinsics"]
    return Camera(np.eye(3), np.zeros(3), np.asarray(i["f"], float), np.asarray(i["c"], float),
                  np.zeros(3) if i.get("k") is None else np.asarray(i["k"], float),
                  np.zeros(2) if i.get("p") is None else np.asarray(i["p"], float),
                  int(attrs["image_size"][0]), int(attrs["image_size"][1]))


def frames_with_truth(cache: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """key -> {confidence, visibility, error (2D error / box)} `(F, 17)` of each shard with GT."""
    out = {}
    for path in list_shards(cache):
        with open_shard(path) as s:
            a = s.read_all(["confidence", "keypoints_2d", "joints_3d_cam"])
            attrs = s.attrs
        J = a["joints_3d_cam"].astype(np.float64)
        if not np.isfinite(J).all():
            continue
        cam = shard_camera(attrs)
        uv = cam.project(J)
        vis = visibility(J, uv, cam, (cam.width, cam.height), BodyModel())
        err = np.linalg.norm(a["keypoints_2d"] - uv, axis=-1) / box_size(uv)[:, None]
        out[s.key] = {"confidence": a["confidence"].astype(np.float64), "visibility": vis, "error": err}
    return out


def confidences_of(cache: str | Path) -> np.ndarray:
    """All confidences of detected joints (finite keypoints) in a cache, flattened."""
    vals = []
    for path in list_shards(cache):
        with open_shard(path) as s:
            a = s.read_all(["confidence", "keypoints_2d"])
        vals.append(a["confidence"][np.isfinite(a["keypoints_2d"]).all(-1)])
    return np.concatenate(vals).astype(np.float64) if vals else np.zeros(0)


def _mixture_nll(theta, c, v):
    """-log likelihood of the model: clipped normal (point masses at 0 and, as c >= CENSOR, at
    the top) with weight 1 - p_low, uniform on [0, 1) with weight p_low."""
    base, gain, sigma, p = theta[0], theta[1], np.exp(theta[2]), theta[3]
    mu = base + gain * v
    top, bottom = c >= CENSOR, c <= 0.0
    normal = np.where(top, norm.sf((CENSOR - mu) / sigma), np.where(
        bottom, norm.cdf(-mu / sigma), norm.pdf((c - mu) / sigma) / sigma))
    uniform = np.where(top, 1.0 - CENSOR, np.where(bottom, 0.0, 1.0))
    return -np.log((1 - p) * normal + p * uniform + 1e-300).sum()


def fit_confidence(confidence: np.ndarray, vis: np.ndarray, digits: int = 3) -> ConfidenceConfig:
    """ConfidenceConfig fitted to real `confidence` and simulator `vis` (same shape, any)."""
    c, v = np.ravel(confidence), np.ravel(vis)
    ok = np.isfinite(c) & np.isfinite(v)
    c, v = c[ok], v[ok]
    if c.size < 10:
        raise ValueError(f"{c.size} joints with a confidence and a visibility: too few to fit")
    # Start from a flat model at the data's median; the uniform part is the minority (p_low <= 0.5).
    start = np.array([float(np.median(c)), 0.0, np.log(max(0.01, float(c.std()))),
                      min(0.4, max(0.01, 2.0 * float(np.mean(c < LOW))))])
    res = minimize(_mixture_nll, start, args=(c, v), method="L-BFGS-B",
                   bounds=[(-2.0, 3.0), (0.0, 3.0), (np.log(1e-3), np.log(2.0)), (0.0, 0.5)])
    def r(x):
        return float(f"{x:.{digits}g}")
    return ConfidenceConfig(base=r(res.x[0]), gain=r(res.x[1]), sigma=r(np.exp(res.x[2])), p_low=r(res.x[3]))


def confidence_statistics(c: np.ndarray, vis: np.ndarray | None = None, err: np.ndarray | None = None) -> dict:
    """Distribution of confidence, by visibility where known, and its rank correlation with error."""
    c = np.ravel(c)
    out = {"joints": int(c.size), "mean": float(c.mean()), "median": float(np.median(c)),
           "frac_high": float(np.mean(c >= 0.95)), "frac_low": float(np.mean(c < LOW))}
    if vis is not None:
        v = np.ravel(vis)
        out["mean_visible"] = float(c[v >= 0.5].mean()) if (v >= 0.5).any() else None
        out["mean_occluded"] = float(c[v < 0.5].mean()) if (v < 0.5).any() else None
    if err is not None:
        out["spearman_error"] = float(spearmanr(c, np.ravel(err)).statistic)
    return out


def simulated_statistics(cfg: ConfidenceConfig, vis: np.ndarray, seed: int) -> dict:
    """Statistics of `SIMULATED_DRAWS` simulated confidences per real joint."""
    v = np.repeat(np.asarray(vis, np.float64).reshape(-1, 17), SIMULATED_DRAWS, axis=0)
    c = simulate_confidence(v, np.ones(v.shape, bool), np.random.default_rng(seed), cfg)
    return confidence_statistics(c, v)


def calibrate_confidence(sample_cache: str | Path, video_cache: str | Path, seed: int = 0) -> dict:
    """The fit on the H36M (training-subject) sample frames; checks on 3DHP frames and videos."""
    frames = frames_with_truth(sample_cache)
    fit_keys = sorted(k for k in frames if k.startswith(FIT_PREFIX))
    held_keys = sorted(k for k in frames if k not in fit_keys)
    if not fit_keys:
        raise ValueError(f"{sample_cache}: no H36M sample frame with ground truth to fit on")

    def stack(keys, name):
        return np.concatenate([frames[k][name] for k in keys])

    fit = fit_confidence(stack(fit_keys, "confidence"), stack(fit_keys, "visibility"))
    out = {"fit_frames": fit_keys, "held_out_frames": held_keys, "fitted": asdict(fit),
           "defaults": asdict(ConfidenceConfig())}
    for name, keys in (("fit", fit_keys), ("held_out", held_keys)):
        if keys:
            c, v, e = stack(keys, "confidence"), stack(keys, "visibility"), stack(keys, "error")
            out[f"real_{name}"] = confidence_statistics(c, v, e)
            out[f"simulated_{name}"] = simulated_statistics(fit, v, seed)
    out["real_videos"] = confidence_statistics(confidences_of(video_cache))
    return out


def confidence_page(result: dict, command: str, revision: str) -> str:
    """The results page: fitted parameters, and each statistic real beside simulated."""
    f, d = result["fitted"], result["defaults"]
    lines = ["# Confidence calibration: simulated confidence against real BlazePose confidence", "",
             "```", command, "```", "", f"Git revision {revision}.", "",
             "BlazePose (mediapipe 0.10.21, pose_landmark_full, landmark visibility mapped to H36M-17) on the real "
             "sample frames and videos, run as `auglift precompute` runs it. Visibility = the simulator's own "
             "(`render.visibility`) of the ground truth; error = |BlazePose - projected truth| / box. "
             "**Fitted on the H36M frames of the training subjects only**: "
             + ", ".join(f"`{k}`" for k in result["fit_frames"]) + ". Held out (checked, nothing chosen on them): "
             "the MPI-INF-3DHP frames " + ", ".join(f"`{k}`" for k in result["held_out_frames"])
             + " and the videos (no ground truth: distribution only). Method: `pipeline/simulate/calibrate_confidence.py` "
             "(maximum likelihood of the clipped-normal + uniform mixture, gain >= 0). Simulated: "
             f"{SIMULATED_DRAWS} draws per real joint with the real joint's visibility.", "",
             "| parameter | fitted | simulator default |", "|---|---:|---:|"]
    for k in ("base", "gain", "sigma", "p_low"):
        lines.append(f"| `{k}` | {f[k]:.3g} | {d[k]:.3g} |")
    cols = [("real, fit frames", "real_fit"), ("simulated, fit frames", "simulated_fit"),
            ("real, 3DHP (held out)", "real_held_out"), ("simulated, 3DHP", "simulated_held_out"),
            ("real, videos", "real_videos")]
    cols = [(label, key) for label, key in cols if key in result]
    rows = [("joints", "joints", "{:d}"), ("mean", "mean", "{:.3f}"), ("median", "median", "{:.3f}"),
            ("fraction >= 0.95", "frac_high", "{:.3f}"), (f"fraction < {LOW}", "frac_low", "{:.3f}"),
            ("mean, visible joints (v >= 0.5)", "mean_visible", "{:.3f}"),
            ("mean, occluded joints (v < 0.5)", "mean_occluded", "{:.3f}"),
            ("rank correlation with the 2D error", "spearman_error", "{:+.2f}")]
    lines += ["", "| statistic | " + " | ".join(c for c, _ in cols) + " |", "|---|" + "---:|" * len(cols)]
    for label, key, fmt in rows:
        cells = [fmt.format(result[c][key]) if result[c].get(key) is not None else "-" for _, c in cols]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    held = result.get("real_held_out", {}).get("spearman_error")
    rf = result["real_fit"]
    lines += ["", f"{rf['joints']} joints from four frames fit this model: a rough estimate. On them the real mean "
              f"confidence is {rf['mean_visible']:.3f} for visible and {rf['mean_occluded']:.3f} for occluded joints; "
              f"the maximum-likelihood fit gives gain {f['gain']:.3g} and puts the low values in the uniform part "
              f"(p_low {f['p_low']:.3g}), i.e. the likelihood does not prefer tying them to the simulator's visibility. The real "
              f"confidence's rank correlation with the detection's own 2D error is {result['real_fit']['spearman_error']:+.2f} "
              "on the fit frames" + (f" and {held:+.2f} held out" if held is not None else "") + "; the simulator draws "
              "confidence from visibility alone, independently of its 2D noise."]
    return "\n".join(lines) + "\n"
