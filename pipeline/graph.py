"""The precompute stage graph on Dask: one task per sequence, one writer per shard.

Each task streams its sequence's frames in batches through decode -> detect -> depth -> write
and appends every batch to one `cache.ShardWriter` per output shard (one, or one per tracked
person with `people="all"`: pipeline/outputs.py; a tracked sequence first runs a detection
pass over all its frames), which commits the shard atomically when the sequence ends (or
discards it on any error). So a shard is written by exactly one task, and a killed run leaves
only whole shards plus stray temporaries under `<out>/.tmp`.

Models are built once per worker process (per thread, if a worker runs several) and reused by
every task it runs, from a process-level cache keyed by the backend configuration. Tasks ask
for the worker resource {"GPU": 1} when the run uses a GPU, so a GPU cluster runs one task per
GPU at a time.

The tasks run through the producers' runner (pipeline/runner.py: `PrecomputeProducer` says how
one sequence becomes its shards; the runner applies the resume / conflict policy and executes).
Clusters (`pipeline/cluster.py`): by default a `LocalCluster` (n worker processes x 1 thread) is
started and stopped by the run; `scheduler="tcp://host:8786"` attaches to an existing one
(dask-jobqueue, dask-cuda: see pipeline/CLUSTER.md). `workers=0` runs the tasks inline in this
process (debugging).
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tqdm.auto import tqdm

from auglift.cache import ShardWriter
from auglift.cache.schema import FORMAT_VERSION
from auglift.pipeline.depth import build_depth
from auglift.pipeline.detect import build_detector
from auglift.pipeline.detect.subjects import PeopleConfig
from auglift.pipeline.frames import FrameSourceError, iter_frames, source_attr
from auglift.pipeline.jobs import resolve_adapter_job
from auglift.pipeline.outputs import plan_outputs, track_keys

from .cluster import _THREAD_VARS
from .produce import Decision
from .report import Failure, SequenceResult, StageClock
from .runner import Execution, JobTiming, Producer, run

_MODELS: dict[tuple, tuple[Any, Any]] = {}
_BUILDS = 0
_PINNED: int | None = None


def pin_threads(n: int) -> None:
    """Limit torch, OpenCV and BLAS pools of this process to `n` threads (once per process)."""
    global _PINNED
    if _PINNED == n:
        return
    for var in _THREAD_VARS:
        os.environ[var] = str(n)  # read by pools created later in this process
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    try:
        import cv2

        cv2.setNumThreads(n)
    except ImportError:
        pass
    _PINNED = n


@contextlib.contextmanager
def _caller_threads_kept():
    """Inline runs pin this (the caller's) process: undo it afterwards, and drop the models."""
    global _PINNED
    saved_env = {v: os.environ.get(v) for v in _THREAD_VARS}
    saved = {}
    try:
        import torch

        saved["torch"] = torch.get_num_threads()
    except ImportError:
        pass
    try:
        import cv2

        saved["cv2"] = cv2.getNumThreads()
    except ImportError:
        pass
    try:
        yield
    finally:
        for var, value in saved_env.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        if "torch" in saved:
            import torch

            torch.set_num_threads(saved["torch"])
        if "cv2" in saved:
            import cv2

            cv2.setNumThreads(saved["cv2"])
        _PINNED = None
        for det, dep in _MODELS.values():
            det.close()
            dep.close()
        _MODELS.clear()


def get_models(spec: dict) -> tuple[Any, Any]:
    """(detector, depth backend) for `spec`, built on first use in this process and thread."""
    global _BUILDS
    key = (json.dumps(spec["models"], sort_keys=True), threading.get_ident())
    if key not in _MODELS:
        pin_threads(spec["threads"])
        m = spec["models"]
        _MODELS[key] = (build_detector(m["detector"], **m["detector_params"]),
                        build_depth(m["depth"], **m["depth_params"]))
        _BUILDS += 1
    return _MODELS[key]


def model_builds() -> int:
    """How many (detector, depth) pairs this process has built (1 per worker in a normal run)."""
    return _BUILDS


# --------------------------------------------------------------------------- the sequence task
def shard_attrs(job, detector, depth, image_size: tuple[int, int], config_hash: str) -> dict:
    provenance = {"keypoints_2d": "real", "confidence": "real", "depth": depth.provenance}
    if job.joints_3d_cam is not None:
        provenance["joints_3d_cam"] = "ground_truth"
    return {
        "format_version": FORMAT_VERSION, "dataset": job.dataset, "subject": job.subject, "action": job.action,
        "camera": job.camera, "image_size": [int(image_size[0]), int(image_size[1])],
        "intrinsics": job.intrinsics, "fps": float(job.fps) if job.fps else None, "skeleton": "h36m17",
        "detector": detector.describe(), "depth_backend": depth.describe(), "config_hash": config_hash,
        "provenance": provenance, "source": source_attr(job.frames),
    }


@dataclass
class PrecomputeProducer(Producer):
    """Precompute as a producer of pipeline/runner.py: one job per sequence, `spec` (`spec_for`)
    says what every task needs to know. Picklable: it travels to the Dask workers."""
    spec: dict
    dataset: str
    name = "precompute"

    out = property(lambda self: self.spec["out"])
    backend = property(lambda self: self.spec["backend"])
    config_hash = property(lambda self: self.spec["config_hash"])
    overwrite = property(lambda self: self.spec["overwrite"])

    def frames(self, job) -> int | None:
        return job.n_frames

    def write(self, job, decision: Decision) -> SequenceResult:
        """Run one sequence through detect + depth into its shard(s). Failures are returned, not
        raised, with the file and frame they happened at; a lost race raises FileExistsError."""
        spec = self.spec
        res = SequenceResult(job.key, note=decision.note)
        clock = StageClock(res.seconds, res.cpu_seconds)
        current = {"file": job.main_file, "frame": None}
        try:
            job = resolve_adapter_job(job)
            current["file"] = job.main_file
            t0 = time.perf_counter()
            detector, depth = get_models(spec)
            res.seconds["load"] += time.perf_counter() - t0
            detector.reset()
            _write_outputs(job, spec, detector, depth, clock, res, decision.overwrite, current)
            res.status = "written"
        except FileExistsError:
            raise
        except FrameSourceError as e:
            res.status, res.n_frames = "failed", 0
            res.failure = _failure(job.key, e.path, e.frame, e, e.message)
        except Exception as e:  # the runner's policy: a bad sequence fails alone, the report names it
            res.status, res.n_frames = "failed", 0
            res.failure = _failure(job.key, current["file"], current["frame"], e)
        return res

    def kept(self, job, path, note: str) -> SequenceResult:
        return SequenceResult(job.key, status="skipped", note=note)

    def failed(self, job, error: BaseException) -> SequenceResult:
        if isinstance(error, FrameSourceError):
            return SequenceResult(job.key, failure=_failure(job.key, error.path, error.frame, error, error.message))
        return SequenceResult(job.key, failure=_failure(job.key, job.main_file, None, error))

    def finish(self, res: SequenceResult, timing: JobTiming) -> SequenceResult:
        res.started, res.worker = timing.started, timing.worker
        res.seconds["verify"] += timing.verify_seconds
        res.cpu_seconds["verify"] += timing.verify_cpu_seconds
        accounted = sum(v for k, v in res.seconds.items() if k != "other")
        res.seconds["other"] = max(0.0, timing.seconds - accounted)
        res.model_builds = _BUILDS
        return res

    def inline(self):
        return _caller_threads_kept()


def _write_outputs(job, spec: dict, detector, depth, clock: StageClock, res: SequenceResult, overwrite: bool,
                   current: dict) -> None:
    """Detect, add depth and write every shard of the sequence (pipeline.outputs); all or none.
    Track shards beside the job key are always replaced: the job key, committed last, is what
    marks the sequence done."""

    people = PeopleConfig(**spec["people"])
    gt = job.joints_3d_cam

    def batches():
        # Nothing keeps a batch's frames past the next decode, so one buffer serves them all.
        return iter_frames(job.frames, batch_size=spec["batch_size"], threads=spec["threads"], reuse_buffer=True)

    with clock("detect"):  # a tracked sequence's whole detection pass (it decodes too)
        outputs = plan_outputs(job, detector, people, lambda: (b.frames for b in batches()))
    tracks = track_keys(outputs)
    writers: dict[str, ShardWriter] = {}
    stream = batches()
    try:
        while True:
            with clock("decode"):
                batch = next(stream, None)
            if batch is None:
                break
            current["frame"], current["file"] = int(batch.frame_index[0]), batch.files[0]
            rows = slice(res.n_frames, res.n_frames + len(batch))
            if gt is not None and rows.stop > len(gt):
                raise ValueError(f"{job.key}: more frames than ground-truth poses ({len(gt)})")
            for out in outputs:
                arrays = _cue_arrays(out, batch, rows.start, depth, clock)
                if gt is not None:
                    arrays["joints_3d_cam"] = gt[rows]
                if out.key not in writers:
                    h, w = batch.frames.shape[1:3]
                    attrs = shard_attrs(job, detector, depth, (w, h), spec["config_hash"])
                    attrs.update(camera=out.camera, people=out.attrs(people, tracks))
                    writers[out.key] = ShardWriter(spec["out"], out.key, attrs, backend=spec["backend"],
                                                   overwrite=overwrite or out.key != job.key)
                with clock("write"):
                    writers[out.key].append(arrays)
            res.n_frames = rows.stop
            res.n_concealed += batch.concealed
        if not writers:
            raise FrameSourceError(job.main_file or job.key, None, "the sequence has no frames")
        if res.n_concealed:
            res.note = (res.note + "; " if res.note else "") + \
                f"{res.n_concealed} frames decoded with errors concealed (damaged video stream)"
        if gt is not None and res.n_frames < len(gt):
            res.note = (res.note + "; " if res.note else "") + \
                f"frames ended after {res.n_frames} of {len(gt)} ground-truth poses; the rest were dropped"
        res.people = {"policy": outputs[0].policy, **outputs[0].summary(), "tracks": tracks}
        res.n_empty = res.people["frames_without_subject"]
        with clock("write"):
            for out in outputs[::-1]:   # the subject's shard (the job key) last: it marks the task done
                writers[out.key].attrs["people"]["summary"] = out.summary()
                writers.pop(out.key).close()
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise


def _cue_arrays(out, batch, first_row: int, depth, clock: StageClock) -> dict:
    """One batch of one output shard: its person's keypoints, depth and selection arrays."""
    with clock("detect"):
        det, selection = out.select(batch.frames, first_row)
    with clock("depth"):
        dep = depth(batch.frames, det)
    out.record(det, selection)
    return {"keypoints_2d": det.keypoints, "confidence": det.confidence, "depth": dep.depth,
            "frame_index": batch.frame_index, "bbox": det.bbox, "depth_valid": dep.valid, **selection}


def _failure(key, file, frame, e: BaseException, message: str | None = None):
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return Failure(key, file, frame, f"{type(e).__name__}: {message or e}{where}")


# ------------------------------------------------------------------------------- the executor
def run_tasks(jobs: list, spec: dict, *, workers: int = 2, scheduler: str | None = None, gpu: bool = False,
              progress: bool = True, on_result: Callable[[SequenceResult], None] | None = None,
              dashboard: str | None = None, log: Callable[[str], None] | None = None,
              dataset: str | None = None, expected_keys: list[str] | None = None
              ) -> tuple[list[SequenceResult], int]:
    """Run every job through the producer runner (pipeline/runner.py): inline with `workers=0`
    and no `scheduler`, else on Dask. Records `expected_keys` (default: the jobs' keys) for
    `dataset` (default: the first job's). Returns (results in job order, number of workers
    that served the run). `dashboard`/`log`: see `dask_client`."""

    total_frames = sum(j.n_frames or 0 for j in jobs) if all(j.n_frames for j in jobs) else None
    bars = (tqdm(total=len(jobs), desc="shards", unit="shard", disable=not progress, position=0),
            tqdm(total=total_frames, desc="frames", unit="frame", disable=not progress, position=1))

    def done(r: SequenceResult):
        bars[0].update(1)
        bars[1].update(r.n_frames)
        if on_result:
            on_result(r)

    inline = workers == 0 and scheduler is None
    execution = Execution("inline" if inline else "dask", workers, spec["threads"], scheduler, gpu, dashboard)
    producer = PrecomputeProducer(spec, dataset if dataset is not None else (jobs[0].dataset if jobs else ""))
    try:
        ran = run(producer, jobs, execution, expected_keys=expected_keys, on_result=done, log=log)
    finally:
        for b in bars:
            b.close()
    return ran.results, ran.workers


def spec_for(config, out: str | Path, config_hash: str) -> dict:
    """The picklable task spec: what every task needs to know about the run."""
    return {"models": config.model_spec(), "threads": config.threads, "batch_size": config.batch_size,
            "backend": config.backend, "overwrite": config.overwrite, "out": str(out),
            "config_hash": config_hash, "people": config.people_spec()}
