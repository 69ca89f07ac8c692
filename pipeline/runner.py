"""The one shard-producer runner: precompute, simulate and `cache build-gt` plug into it.

A producer (`Producer`) says three things: what a job's shard key is, how to make one job's
arrays and commit its shard(s) (`write`), and what its result record looks like when the job is
kept, written or failed. It also carries the run's `out`, `backend`, `config_hash` (the content
hash every shard it writes gets) and `overwrite`. The runner owns the rest, once for all three:

- Expected keys: `run` records every key of the dataset in `<out>/expected_keys.txt` before
  anything is written (pipeline/produce.py `write_expected_keys`).
- Resume and conflicts (`run_job`): a verified shard with this config hash is kept, one that
  fails verification is rewritten, a verified shard of another config hash fails the job unless
  `overwrite`; a write that loses a race to another run keeps the winner's shard if its hash is
  the same (pipeline/produce.py has the policy; this is the one place that applies it).
- Failures: one bad job never stops the run; `Producer.failed` turns the exception (or a lost
  Dask worker) into that job's result, naming the sequence.
- Execution (`Execution`): "inline" (this process, in job order), "processes" (a process pool)
  or "dask" (a LocalCluster of pipeline/cluster.py, or an existing scheduler; longest jobs
  first, the GPU resource when asked). A producer and its jobs must pickle for the last two.

What a run returns (`RunResult`: results in job order, workers, wall seconds) is what each
producer turns into its report or summary (`tally` counts the statuses; `progress_log` is the
line-per-50-jobs progress of the runs without bars).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import os
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from auglift.cache import shard_path

from .cluster import dask_client
from .produce import CONFLICT, KEEP, Decision, after_race, conflict_error, decide, write_expected_keys

WRITTEN, KEPT, FAILED = "written", "kept", "failed"
MODES = ("inline", "processes", "dask")


@dataclass
class JobResult:
    """The plain result record of one job (a producer may subclass it or use its own type with
    `key`, `status` and `n_frames`)."""
    key: str
    status: str = FAILED            # WRITTEN, KEPT or FAILED
    n_frames: int = 0
    error: str = ""                 # "<key>: <Exception>: <message>" when failed
    note: str = ""                  # why a shard was kept or replaced
    seconds: float = 0.0


@dataclass(frozen=True)
class JobTiming:
    """What the runner measured around one job: UTC start (ISO 8601, ms), seconds spent deciding
    (verifying an existing shard), seconds in all, and the host:pid that ran it."""
    started: str
    verify_seconds: float
    verify_cpu_seconds: float
    seconds: float
    worker: str


@dataclass(frozen=True)
class Execution:
    """Where jobs run. `mode`: "inline", "processes" (`workers` processes) or "dask" (a local
    cluster of `workers` x `threads`, or `scheduler`; `gpu`: tasks ask for the resource GPU=1;
    `dashboard`: the local cluster's dashboard address)."""
    mode: str = "inline"
    workers: int = 1
    threads: int = 1
    scheduler: str | None = None
    gpu: bool = False
    dashboard: str | None = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown execution mode {self.mode!r}; choose one of {MODES}")


@dataclass
class RunResult:
    results: list               # one per job, in job order
    workers: int                # workers that served the run (1 inline)
    seconds: float              # wall seconds of the run, expected keys included


class Producer:
    """What a shard producer tells the runner. Subclasses set `name`, `dataset`, `out`,
    `backend`, `config_hash` and `overwrite` (as dataclass fields or attributes)."""
    name: str
    dataset: str
    out: str
    backend: str
    config_hash: str
    overwrite: bool

    def key(self, job) -> str:
        """The shard key a job writes (the one whose presence marks the job done)."""
        return job.key

    def frames(self, job) -> int | None:
        """The job's length if known before it runs (Dask starts the longest first)."""
        return None

    def write(self, job, decision: Decision) -> Any:
        """Make the job's arrays and commit its shard(s); `decision.overwrite` says whether a shard
        is at the final path. Raises FileExistsError when another run committed the key first."""
        raise NotImplementedError

    def kept(self, job, path: Path, note: str) -> Any:
        """The result of a job whose verified shard (this config hash) stays."""
        raise NotImplementedError

    def failed(self, job, error: BaseException) -> Any:
        """The result of a job that raised `error` (or whose Dask worker was lost)."""
        raise NotImplementedError

    def finish(self, result, timing: JobTiming) -> Any:
        """Add what the runner measured to a job's result (default: a `JobResult`'s total seconds)."""
        if isinstance(result, JobResult):
            result.seconds = timing.seconds
        return result

    def inline(self) -> contextlib.AbstractContextManager:
        """Context of an inline run in the caller's process (e.g. restoring thread settings)."""
        return contextlib.nullcontext()


def run_job(producer: Producer, job) -> Any:
    """One job under the shared resume / conflict / race policy. Never raises."""
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")
    t0, c0 = time.perf_counter(), time.process_time()
    verify = verify_cpu = 0.0
    try:
        path = shard_path(producer.out, producer.key(job), producer.backend)
        decision = decide(path, producer.config_hash, producer.overwrite)
        verify, verify_cpu = time.perf_counter() - t0, time.process_time() - c0
        if decision.action == KEEP:
            result = producer.kept(job, path, decision.note)
        elif decision.action == CONFLICT:
            raise conflict_error(path, decision)
        else:
            try:
                result = producer.write(job, decision)
            except FileExistsError as e:  # another run committed this key meanwhile
                result = producer.kept(job, path, after_race(path, producer.config_hash, e).note)
    except Exception as e:  # one bad job must not stop the run; its result names it
        result = producer.failed(job, e)
    return producer.finish(result, JobTiming(started, verify, verify_cpu, time.perf_counter() - t0,
                                             f"{os.uname().nodename}:{os.getpid()}"))


def run(producer: Producer, jobs: Sequence, execution: Execution = Execution(), *,
        expected_keys: list[str] | None = None, on_result: Callable[[Any], None] | None = None,
        log: Callable[[str], None] | None = None) -> RunResult:
    """Record the expected keys (`expected_keys`, default the jobs' keys: a job array's part
    passes all of them), then run every job. `on_result` sees each result as it arrives."""
    t0 = time.perf_counter()
    jobs = list(jobs)
    Path(producer.out).mkdir(parents=True, exist_ok=True)
    keys = [producer.key(j) for j in jobs]
    write_expected_keys(producer.out, producer.dataset, keys if expected_keys is None else expected_keys)
    results: dict[str, Any] = {}

    def done(r):
        results[r.key] = r
        if on_result:
            on_result(r)

    if execution.mode == "inline":
        with producer.inline():
            for job in jobs:
                done(run_job(producer, job))
        n_workers = 1
    elif execution.mode == "processes":
        n_workers = _run_processes(producer, jobs, execution.workers, done)
    else:
        n_workers = _run_dask(producer, jobs, execution, done, log)
    return RunResult([results[k] for k in keys], n_workers, time.perf_counter() - t0)


def tally(results: list, statuses: Sequence[str] = (WRITTEN, KEPT, FAILED)) -> dict[str, int]:
    """How many results have each status."""
    return {s: sum(r.status == s for r in results) for s in statuses}


def progress_log(log: Callable[[str], None] | None, total: int, every: int = 50) -> Callable[[Any], None]:
    """An `on_result` that tells `log` each failure as it arrives (`[i/n] FAILED <error>`) and the
    counts every `every` results and at the last (`[i/n] 3 written, 1 kept, 0 failed`)."""
    seen: list = []

    def on_result(r) -> None:
        seen.append(r)
        i = len(seen)
        if log is not None and r.status == FAILED:
            log(f"[{i}/{total}] FAILED {r.error}")
        if log is not None and (i % every == 0 or i == total):
            log(f"[{i}/{total}] " + ", ".join(f"{n} {s}" for s, n in tally(seen).items()))
    return on_result


def _run_processes(producer: Producer, jobs: list, workers: int, done: Callable) -> int:
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_job, producer, job): job for job in jobs}
        for fut in as_completed(futures):
            try:
                r = fut.result()
            except Exception as e:  # the worker process died (BrokenProcessPool)
                r = producer.failed(futures[fut], e)
            done(r)
    return workers


def longest_first(lengths: list[int | None]) -> list[int]:
    """Dask priorities (higher runs earlier) that start the longest jobs first, so a run does not
    end with one worker on a long job while the others idle. A job of unknown length counts as
    the longest; ties keep job order."""
    known = [n for n in lengths if n]
    unknown = max(known, default=0) + 1
    return [n or unknown for n in lengths]


def _run_dask(producer: Producer, jobs: list, ex: Execution, done: Callable,
              log: Callable[[str], None] | None) -> int:
    from distributed import as_completed as dask_completed  # lazily: only runs on a cluster need it

    with dask_client(ex.workers, ex.scheduler, ex.threads, ex.gpu, ex.dashboard, log) as client:
        n_workers = max(1, len(client.scheduler_info()["workers"]))
        run_id = uuid.uuid4().hex[:8]
        resources = {"GPU": 1} if ex.gpu else None
        futures = {}
        # Submitted in that order too: idle workers take tasks as they arrive, before any priority
        # of a later submission is seen.
        priorities = longest_first([producer.frames(j) for j in jobs])
        for priority, i in sorted(zip(priorities, range(len(jobs))), key=lambda p: -p[0]):
            job = jobs[i]
            fut = client.submit(run_job, producer, job, key=f"{producer.name}-{run_id}-{producer.key(job)}",
                                pure=False, resources=resources, retries=0, priority=priority)
            futures[fut] = job
        for fut in dask_completed(list(futures)):
            try:
                r = fut.result()
            except Exception as e:  # the worker died (e.g. KilledWorker) or the task was lost
                r = producer.failed(futures[fut], e)
            done(r)
            fut.release()
        return n_workers
