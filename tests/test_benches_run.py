"""Every script under bench/ still runs end to end, at tiny sizes, and prints its ratio line.

The benchmarks are run by hand and their figures quoted in results/benchmarks.md; nothing else
exercises them, so an API change can break one silently (bench_precompute did, for weeks).
These runs check that each script completes and reports what its docstring promises, not its
figures: at these sizes the timings mean nothing.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# script, arguments (at tiny sizes), a line its report must print
BENCHES = [
    ("bench_cues.py", ["--batch", "2", "--repeats", "1"], r"ratio vectorised/loop: [\d.]+x"),
    ("bench_vp3d_step.py", ["--batch", "8", "--steps", "1"], r"ratio \(b\)/\(a\)\s+:\s+[\d.]+"),
    ("bench_simulate.py", ["--sequences", "1"], r"simulate_view: \d+ frame-views"),
    ("bench_h36m_load.py", ["--repeats", "1"], r"adapter / raw time: [\d.]+x"),
    ("bench_depth.py", ["--size", "56", "--repeats", "1", "--rounds", "1", "--profile"],
     r"int8 speed-up over torch [\d.]+x(.|\n)*projections \+ MLP +[\d.]+ +[\d.]+ +[\d.]+x"),
    ("bench_precompute.py", ["--frames", "6", "--copies", "1", "--rounds", "1", "--workers", "1"],
     r"median: \(a\) sequential [\d.]+ frames/s, \(b\) Dask x1 [\d.]+ frames/s, ratio [\d.]+"),
    ("gpu_check.py", ["--tiny"], r"depth stage, .* batch 2: [\d.]+ frames/s"),
]
CACHE_BENCHES = [  # these read an H36M cache: the session's GT-2D shards of S1 and S9
    ("bench_stream.py", ["--channels", "xy", "--batch", "256", "--steps", "2", "--warmup", "1", "--rounds", "1",
                         "--max-shards", "8", "--memory-shards", "4,8", "--shuffle-buffer", "1024",
                         "--memory-buffer", "256"], r"ratio \(a\)/\(b\) = [\d.]+"),
    ("bench_train.py", ["--channels", "xy", "--batch", "256", "--steps", "2", "--warmup", "1", "--rounds", "1",
                        "--skip-ddp"], r"ratio \(a\)/\(b\) = [\d.]+"),
]


def _run(script: str, args: list[str], data: Path) -> str:
    env = dict(os.environ, AUGLIFT_DATA=str(data), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(REPO / "bench" / script), *args], cwd=REPO / "bench", env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("script,args,report", BENCHES, ids=[b[0] for b in BENCHES])
def test_bench_runs_and_reports(script, args, report, shared_data):
    assert re.search(report, _run(script, args, shared_data)), f"{script} did not print /{report}/"


@pytest.mark.slow
@pytest.mark.parametrize("script,args,report", CACHE_BENCHES, ids=[b[0] for b in CACHE_BENCHES])
def test_cache_bench_runs_and_reports(script, args, report, gt_cache, shared_data):
    out = _run(script, ["--cache", str(gt_cache), *args], shared_data)
    assert re.search(report, out), f"{script} did not print /{report}/"
