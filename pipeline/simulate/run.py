"""Whole-dataset driver: every (subject, action, camera) of a mocap corpus -> simulated shards.

One task per shard: the dataset's real cameras, plus `views.num_views` virtual cameras per
(subject, action) named `virtual-<k>`. Tasks run through the producers' runner
(pipeline/runner.py), inline or in a process pool; each shard's random numbers depend only on
the seed and its key, so results do not depend on the number of workers or the order of
completion. Resume, conflicts (another seed or config: refused unless `overwrite`) and the
expected-keys record are the runner's, one policy for every producer (pipeline/produce.py).
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from auglift.cache import config_hash, key_for, open_shard, write_shard
from auglift.core.skeleton import H36M17_JOINTS
from auglift.pipeline.produce import Decision
from auglift.pipeline.runner import FAILED, KEPT, WRITTEN, Execution, JobResult, Producer, progress_log, run, tally
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
class TaskResult(JobResult):
    conf_sum: np.ndarray | None = None
    virtual: bool = False
    fallback: bool = False   # real keypoints asked for but the dataset has none for it


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
    producer = SimulateProducer(cfg, dataset, str(out), backend, config_hash_of(cfg, dataset), overwrite)
    execution = Execution("processes", workers) if workers > 1 else Execution()
    ran = run(producer, tasks, execution, on_result=progress_log(log, len(tasks)))
    summary = _summarise(ran.results, cfg, dataset, data_root, out, time.perf_counter() - t0, workers)
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


@dataclass
class SimulateProducer(Producer):
    """The simulator as a producer of pipeline/runner.py: one job (`Task`) per shard; each
    shard's random numbers depend only on the seed and its key. Picklable (process pool)."""
    cfg: SimulateConfig
    dataset: str
    out: str
    backend: str
    config_hash: str
    overwrite: bool = False
    name = "simulate"

    def key(self, task: Task) -> str:
        return task_key(task)

    def kept(self, task: Task, path: Path, note: str) -> TaskResult:
        virtual = task.view >= 0
        with open_shard(path) as shard:
            conf = shard.read("confidence")
            fallback = self.cfg.keypoints == "real" and not virtual and \
                shard.attrs["provenance"]["keypoints_2d"] != "real"
        return TaskResult(task_key(task), KEPT, len(conf), note=note, conf_sum=conf.astype(np.float64).sum(0),
                          virtual=virtual, fallback=fallback)

    def failed(self, task: Task, error: BaseException) -> TaskResult:
        key = task_key(task)
        return TaskResult(key, FAILED, error=f"{key}: {type(error).__name__}: {error}", virtual=task.view >= 0)

    def write(self, task: Task, decision: Decision) -> TaskResult:
        cfg, ref, key = self.cfg, task.ref, task_key(task)
        virtual = task.view >= 0
        camera = f"virtual-{task.view}" if virtual else str(ref.camera)
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
        attrs = shard_attrs(cfg, dataset=task.dataset, subject=str(ref.subject), action=str(ref.action),
                            camera=camera, cam=cam, image_size=image_size, fps=seq.fps,
                            config_hash=self.config_hash, real_keypoints=real_kp is not None, virtual=virtual)
        write_shard(self.out, key, arrays, attrs, backend=self.backend, overwrite=decision.overwrite)
        conf = arrays["confidence"]
        return TaskResult(key, WRITTEN, len(conf), note=decision.note, conf_sum=conf.astype(np.float64).sum(0),
                          virtual=virtual, fallback=fallback)


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


def _summarise(results: list[TaskResult], cfg: SimulateConfig, dataset: str, data_root, out: Path,
               seconds: float, workers: int) -> dict:
    def mean_conf(rs: list[TaskResult]) -> dict | None:
        frames = sum(r.n_frames for r in rs)
        if not frames:
            return None
        total = np.sum([r.conf_sum for r in rs], axis=0) / frames
        return {name: round(float(v), 4) for name, v in zip(H36M17_JOINTS, total)}

    ok = [r for r in results if r.status != FAILED]
    return {
        "dataset": dataset, "data_root": str(data_root), "out": str(out),
        "simulated": True, "config_hash": config_hash_of(cfg, dataset), "seed": cfg.seed,
        "keypoints": cfg.keypoints, "depth_kind": cfg.depth.mode, "workers": workers,
        "shards": {"total": len(results), **tally(results), "virtual": sum(r.virtual for r in ok)},
        "frames": sum(r.n_frames for r in ok),
        "seconds": round(seconds, 2),
        "mean_confidence": mean_conf(ok),
        "mean_confidence_real_cameras": mean_conf([r for r in ok if not r.virtual]),
        "mean_confidence_virtual_cameras": mean_conf([r for r in ok if r.virtual]),
        "real_keypoints_missing": sorted(r.key for r in ok if r.fallback),
        "failures": [r.error for r in results if r.status == FAILED],
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
