"""Local clusters for precompute and the study grid: one worker per GPU, the dashboard on request."""
from __future__ import annotations

import os

from distributed import Client

from auglift.pipeline.cluster import dask_client, local_cluster


def test_one_worker_per_gpu_sees_only_its_device():
    # No GPU is needed to check the plumbing: each worker's CUDA_VISIBLE_DEVICES is its own.
    with local_cluster(3, gpu=True, gpus=["0", "1"]) as cluster, Client(cluster) as client:
        seen = client.run(lambda: (os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ.get("OMP_NUM_THREADS")))
        assert sorted(v[0] for v in seen.values()) == ["0", "0", "1"]       # round-robin over the devices
        assert {v[1] for v in seen.values()} == {"1"}
        info = client.scheduler_info()["workers"].values()
        assert all(w["resources"] == {"GPU": 1} for w in info)
        assert client.submit(lambda: 42, resources={"GPU": 1}).result() == 42


def test_dashboard_address_is_printed_only_when_asked():
    lines = []
    with dask_client(1, dashboard=":0", log=lines.append) as client:
        assert client.submit(sum, [1, 2]).result() == 3
    assert len(lines) == 1 and lines[0].startswith("Dask dashboard: http://") and "/status" in lines[0]
    lines.clear()
    with dask_client(1, log=lines.append) as client:
        assert client.submit(sum, [2, 2]).result() == 4
    assert lines == []
