"""The Dask clusters auglift starts: precompute's stage graph and the study grid share them.

`local_cluster` starts worker processes of one task thread each (models pinned to `threads`
threads), quiet monitoring, the `GPU` resource and one CUDA device per worker when asked, and
the dashboard on request; `dask_client` gives a Client on it, or on an existing scheduler, for
the length of a `with` block. Nothing here knows about the tasks.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
from typing import Callable

# Dask's defaults suit many short tasks: a 10 ms stack-sampling profiler, a 20 ms event-loop
# tick, a 100 ms memory monitor. Measured here, an idle 2-worker LocalCluster burns ~10 % of a
# core with them and ~1.3 % with these, which matters when every core runs a model. Our tasks
# take seconds to hours, so coarse monitoring loses nothing. The nannies' MALLOC_TRIM_THRESHOLD_
# is unset because it pins glibc's mmap threshold, which made every frame buffer and activation
# fresh kernel pages (BlazePose ~8 % slower a frame; pipeline/CLUSTER.md). Applied to the clusters
# this module starts; for an external cluster, put them in the workers' Dask config (CLUSTER.md).
QUIET_DASK_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
}
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def local_cluster(workers: int, threads: int = 1, gpu: bool = False, dask_config: dict | None = None,
                  gpus: list[str] | None = None, dashboard: str | None = None):
    """The LocalCluster precompute and the study grid start: `workers` processes x 1 task thread,
    models pinned to `threads` threads, quiet monitoring, the GPU resource when asked.

    `gpus`: CUDA device ids; worker i sees only `gpus[i % len(gpus)]` (CUDA_VISIBLE_DEVICES), so
    `cuda` in a task is that worker's own GPU (one worker per GPU when workers == len(gpus)).
    Without it every GPU worker uses cuda:0. `dashboard`: address of the Dask dashboard (":8787",
    ":0" for any free port; needs bokeh), None = off. `dask_config` overrides entries of
    QUIET_DASK_CONFIG (benchmarks' A/B runs)."""
    import dask
    from distributed import LocalCluster, Nanny

    env = {v: str(threads) for v in _THREAD_VARS}
    resources = {"GPU": 1} if gpu else None
    with dask.config.set({**QUIET_DASK_CONFIG, **(dask_config or {})}):  # read as the cluster starts
        cluster = LocalCluster(n_workers=0 if gpus else workers, threads_per_worker=1, processes=True,
                               dashboard_address=dashboard, resources=resources, env=env, silence_logs=40)
        if gpus:
            # One worker spec per device: LocalCluster gives all its workers the same environment.
            for i in range(workers):
                cluster.worker_spec[f"gpu{i}"] = {"cls": Nanny, "options": {
                    "nthreads": 1, "resources": resources, "silence_logs": 40,
                    "env": {**env, "CUDA_VISIBLE_DEVICES": str(gpus[i % len(gpus)])}}}
            cluster.sync(cluster._correct_state)
            cluster.wait_for_workers(workers)
        return cluster


def cuda_devices() -> list[str]:
    """The CUDA devices this process may use (CUDA_VISIBLE_DEVICES order), [] without CUDA."""
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [v.strip() for v in visible.split(",") if v.strip()] if visible else []
    return ids[: torch.cuda.device_count()] or [str(i) for i in range(torch.cuda.device_count())]


@contextlib.contextmanager
def dask_client(workers: int, scheduler: str | None = None, threads: int = 1, gpu: bool = False,
                dashboard: str | None = None, log: Callable[[str], None] | None = None):
    """A Client on an existing scheduler, or on a local cluster that lives as long as the block.

    A local cluster with `gpu` runs one worker per visible CUDA device (`workers` = 0 means as many
    workers as devices); `dashboard` switches its dashboard on, and `log` gets its address."""
    from distributed import Client

    cluster = None
    if scheduler is None:
        gpus = cuda_devices() if gpu else []
        if gpu and not workers:
            workers = max(1, len(gpus))
        cluster = local_cluster(workers, threads, gpu, gpus=gpus or None, dashboard=dashboard)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        if log is not None and dashboard is not None:
            plots = importlib.util.find_spec("bokeh") is not None
            log(f"Dask dashboard: {client.dashboard_link}" + ("" if plots or cluster is None else
                                                              " (its plots need `pip install bokeh`)"))
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
