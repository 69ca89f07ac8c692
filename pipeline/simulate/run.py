"""Whole-dataset driver: every (subject, action, camera) of a mocap corpus -> simulated shards.

One task per shard: the dataset's real cameras, plus `views.num_views` virtual cameras per
(subject, action) named `virtual-<k>`. Tasks run in a process pool; each shard's random numbers
depend only on the seed and its key, so results do not depend on the number of workers or the
order of completion. Resume, conflicts (another seed or config: refused unless `overwrite`) and
the expected-keys record follow the producers' shared policy, pipeline/produce.py.
"""
from __future__ import annotations

import dataclasses
import json
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from auglift.cache import config_hash, key_for, open_shard, shard_path, write_shard
from auglift.core.skeleton import H36M17_JOINTS
from auglift.pipeline.produce import CONFLICT, KEEP, after_race, conflict_error, decide, write_expected_keys
from auglift.pipeline.sources.base import get_dataset, select_sequences

from .config import SimulateConfig
from .sequence import shard_attrs, shard_rng, simulate_view
from .views import sample_virtual_camera

SUMMARY_NAME = "simulate_summary.json"


@dataclass(frozen=True)
class Task:
    dataset: str
    data_root: str
    ref: object          # the adapter's SequenceRef (picklable)
    view: int            # -1: the sequence's own camera; k >= 0: virtual camera k


@dataclass
class TaskResult:
    key: str
    status: str          # "written", "kept" (resumed), "failed"
    n_frames: int = 0
    conf_sum: np.ndarray | None = None
    virtual: bool = False
    fallback: bool = False   # real keypoints asked for but the dataset has none for it
    error: str = ""
    seconds: float = 0.0


def simulate_dataset(dataset: str, data_root: str | Path, out: str | Path, *,
                     config: SimulateConfig | None = None, subjects=None, split: str | None = None,
                     actions=None, backend: str = "zarr", workers: int = 1, overwrite: bool = False,
                     log: Callable[[str], None] | None = print) -> dict:
    """Simulate every selected sequence of `dataset` into shards under `out`; returns the summary
    (also written to `<out>/simulate_summary.json`).

    `actions`: optional glob patterns on action names (e.g. ["Walking*"]). `overwrite`:
    replace shards made with another configuration (otherwise those sequences fail).
    """

    cfg = config or SimulateConfig()
    out = Path(out)
    t0 = time.perf_counter()
    adapter, refs = select_sequences(dataset, data_root, split, subjects, actions)
    tasks = [Task(dataset, str(data_root), r, -1) for r in refs] if cfg.real_cameras else []
    # virtual views belong to the motion, not to a camera: one set per (subject, action)
    seen = set()
    for r in refs:
        motion = (r.subject, r.action)
        if motion not in seen:
            seen.add(motion)
            tasks += [Task(dataset, str(data_root), r, k) for k in range(cfg.views.num_views)]
    out.mkdir(parents=True, exist_ok=True)
    write_expected_keys(out, dataset, [task_key(t) for t in tasks])
    results: list[TaskResult] = []
    if workers <= 1:
        for i, task in enumerate(tasks):
            results.append(run_task(task, cfg, str(out), backend, overwrite))
            _progress(log, i + 1, len(tasks), results[-1])
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(run_task, task, cfg, str(out), backend, overwrite) for task in tasks]
            for i, fut in enumerate(futures):
                results.append(fut.result())
                _progress(log, i + 1, len(tasks), results[-1])
    summary = _summarise(results, cfg, dataset, data_root, out, time.perf_counter() - t0, workers)
    (out / SUMMARY_NAME).write_text(json.dumps(summary, indent=1) + "\n")
    if log:
        log(format_summary(summary))
    return summary


def config_hash_of(cfg: SimulateConfig, dataset: str) -> str:
    return config_hash({"dataset": dataset, **cfg.hashed()})


_ADAPTERS: dict = {}


def _adapter(dataset: str, data_root: str):
    if (dataset, data_root) not in _ADAPTERS:
        _ADAPTERS[(dataset, data_root)] = get_dataset(dataset, data_root)
    return _ADAPTERS[(dataset, data_root)]


def task_key(task: Task) -> str:
    """The shard key a task writes."""

    camera = f"virtual-{task.view}" if task.view >= 0 else str(task.ref.camera)
    return key_for(task.dataset, str(task.ref.subject), str(task.ref.action), camera)


def _kept(path: Path, key: str, cfg: SimulateConfig, virtual: bool, t0: float) -> TaskResult:
    """The result of a key whose verified shard (same config hash) is kept."""

    with open_shard(path) as shard:
        conf = shard.read("confidence")
        fallback = cfg.keypoints == "real" and not virtual and shard.attrs["provenance"]["keypoints_2d"] != "real"
    return TaskResult(key, "kept", len(conf), conf.astype(np.float64).sum(0), virtual, fallback,
                      seconds=time.perf_counter() - t0)


def run_task(task: Task, cfg: SimulateConfig, out: str, backend: str, overwrite: bool = False) -> TaskResult:
    """Make (or keep) one shard. Never raises: a failure becomes a result naming the sequence."""

    t0 = time.perf_counter()
    ref = task.ref
    subject, action = str(ref.subject), str(ref.action)
    virtual = task.view >= 0
    camera = f"virtual-{task.view}" if virtual else str(ref.camera)
    key = task_key(task)
    try:
        chash = config_hash_of(cfg, task.dataset)
        path = shard_path(out, key, backend)
        decision = decide(path, chash, overwrite)
        if decision.action == KEEP:
            return _kept(path, key, cfg, virtual, t0)
        if decision.action == CONFLICT:
            raise conflict_error(path, decision)
        seq = _adapter(task.dataset, task.data_root).load(ref)
        rng = shard_rng(cfg.seed, key)
        real_kp = None
        if seq.joints_3d_cam is None:
            raise ValueError(f"{seq.key}: the dataset has no 3D joints for this sequence")
        if virtual:
            world = world_joints(seq)
            cam = sample_virtual_camera(world, cfg.views, shard_rng(cfg.seed, key, stream=1), camera)
            joints = cam.world_to_camera(world)
            image_size = cfg.views.image_size
        else:
            if seq.cam is None:
                raise ValueError(f"{seq.key}: the dataset has no camera for this sequence; simulate it "
                                 f"through virtual cameras (views.num_views > 0, real_cameras: false)")
            cam, joints, image_size = seq.cam, seq.joints_3d_cam, seq.image_size
            if cfg.keypoints == "real":
                real_kp = getattr(seq, "keypoints_2d", None)
        fallback = cfg.keypoints == "real" and real_kp is None and not virtual
        arrays = simulate_view(joints, cam, image_size, cfg, rng, keypoints_2d=real_kp)
        arrays.pop("visibility")
        arrays["frame_index"] = np.asarray(seq.frame_index, np.int64)
        attrs = shard_attrs(cfg, dataset=task.dataset, subject=subject, action=action, camera=camera,
                            cam=cam, image_size=image_size, fps=seq.fps, config_hash=chash,
                            real_keypoints=real_kp is not None, virtual=virtual)
        try:
            write_shard(out, key, arrays, attrs, backend=backend, overwrite=decision.overwrite)
        except FileExistsError as e:  # another run committed this key meanwhile
            after_race(path, chash, e)
            return _kept(path, key, cfg, virtual, t0)
        conf = arrays["confidence"]
        return TaskResult(key, "written", len(conf), conf.astype(np.float64).sum(0), virtual, fallback,
                          seconds=time.perf_counter() - t0)
    except Exception as e:  # one bad sequence must not sink the other shards
        return TaskResult(key, "failed", error=f"{key}: {type(e).__name__}: {e}", virtual=virtual,
                          seconds=time.perf_counter() - t0)


def world_joints(seq) -> np.ndarray:
    """`(T, 17, 3)` world mm of a loaded sequence: through its camera, or through per-frame
    extrinsics (`extras["world_to_camera"]`, (T, 4, 4)) for a moving camera."""
    X = np.asarray(seq.joints_3d_cam, np.float64)
    w2c = seq.extras.get("world_to_camera") if getattr(seq, "extras", None) else None
    if w2c is not None:
        w2c = np.asarray(w2c, np.float64)
        R, t = w2c[:, None, :3, :3], w2c[:, None, :3, 3]
        return np.einsum("tkji,tkj->tki", R, X - t)  # R^T (X - t) per frame
    if seq.cam is None:
        return X
    return seq.cam.camera_to_world(X)


def _progress(log, i: int, n: int, r: TaskResult) -> None:
    if log is None:
        return
    if r.status == "failed":
        log(f"[{i}/{n}] FAILED {r.error}")
    elif i == n or i % 50 == 0:
        log(f"[{i}/{n}] {r.key}: {r.status} ({r.n_frames} frames, {r.seconds:.2f} s)")


def _summarise(results: list[TaskResult], cfg: SimulateConfig, dataset: str, data_root, out: Path,
               seconds: float, workers: int) -> dict:
    def mean_conf(rs: list[TaskResult]) -> dict | None:
        frames = sum(r.n_frames for r in rs)
        if not frames:
            return None
        total = np.sum([r.conf_sum for r in rs], axis=0) / frames
        return {name: round(float(v), 4) for name, v in zip(H36M17_JOINTS, total)}

    ok = [r for r in results if r.status != "failed"]
    return {
        "dataset": dataset, "data_root": str(data_root), "out": str(out),
        "simulated": True, "config_hash": config_hash_of(cfg, dataset), "seed": cfg.seed,
        "keypoints": cfg.keypoints, "depth_kind": cfg.depth.mode, "workers": workers,
        "shards": {"total": len(results), "written": sum(r.status == "written" for r in results),
                   "kept": sum(r.status == "kept" for r in results),
                   "failed": sum(r.status == "failed" for r in results),
                   "virtual": sum(r.virtual for r in ok)},
        "frames": sum(r.n_frames for r in ok),
        "seconds": round(seconds, 2),
        "mean_confidence": mean_conf(ok),
        "mean_confidence_real_cameras": mean_conf([r for r in ok if not r.virtual]),
        "mean_confidence_virtual_cameras": mean_conf([r for r in ok if r.virtual]),
        "real_keypoints_missing": sorted(r.key for r in ok if r.fallback),
        "failures": [r.error for r in results if r.status == "failed"],
        "config": dataclasses.asdict(cfg),
    }


def format_summary(s: dict) -> str:
    sh = s["shards"]
    lines = [f"simulated {s['dataset']}: {sh['total']} shards ({sh['written']} written, {sh['kept']} kept, "
             f"{sh['failed']} failed, {sh['virtual']} virtual), {s['frames']} frames in {s['seconds']:.1f} s "
             f"-> {s['out']}",
             "mean simulated confidence per joint:"]
    conf = s["mean_confidence"] or {}
    lines += [f"  {name:<11} {v:.3f}" for name, v in conf.items()]
    if s["real_keypoints_missing"]:
        lines.append(f"no real 2D detections (simulated instead): {', '.join(s['real_keypoints_missing'])}")
    lines += [f"FAILED {e}" for e in s["failures"]]
    return "\n".join(lines)
