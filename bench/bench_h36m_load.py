"""Human3.6M loading throughput: the dataset adapter vs reading the same files raw with h5py.

    python bench/bench_h36m_load.py [--data ../shared/data] [--repeats 3]

The adapter pass loads every sequence x camera (camera-space H36M-17 3D, camera, SH detections
mapped to H36M-17) from a fresh adapter; the baseline pass only reads the arrays of the same
files (each 3D file once per camera, as the adapter's callers ask for them, and each detection
file) with h5py, without any conversion. Prints frames/s, seconds and the ratio (best of
`--repeats`; the first pass also warms the OS file cache).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import h5py

from auglift.pipeline.sources.base import get_dataset
from auglift.pipeline.sources.h36m import action_spellings


def adapter_pass(root: Path) -> tuple[int, float]:
    t0 = time.perf_counter()
    adapter = get_dataset("h36m", root)
    frames = 0
    for ref in adapter.list_sequences():
        frames += len(adapter.load(ref).joints_3d_cam)
    return frames, time.perf_counter() - t0


def raw_pass(root: Path, refs) -> tuple[int, float]:
    t0 = time.perf_counter()
    frames = 0
    for ref in refs:
        with h5py.File(Path(ref.root) / ref.source, "r") as f:
            frames += f["3D_positions"][()].shape[1]
        for name in action_spellings(ref.action, "_"):
            sh = Path(ref.root) / ref.subject / "StackedHourglass" / f"{name}.{ref.camera}.h5"
            if sh.exists():
                with h5py.File(sh, "r") as f:
                    f["poses"][()]
                break
    return frames, time.perf_counter() - t0


def main() -> None:
    repo = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("AUGLIFT_DATA", repo.parent / "shared" / "data")))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    adapter = get_dataset("h36m", args.data)
    if not adapter.root_found():
        raise SystemExit(f"no Human3.6M data at {adapter.root}")
    refs = adapter.list_sequences()
    n_seq = len({(r.subject, r.action) for r in refs})
    best_adapter = best_raw = float("inf")
    for _ in range(args.repeats):
        frames, t = adapter_pass(args.data)
        best_adapter = min(best_adapter, t)
        raw_frames, t = raw_pass(args.data, refs)
        best_raw = min(best_raw, t)
    assert raw_frames == frames, (raw_frames, frames)
    print(f"Human3.6M at {adapter.root}: {n_seq} sequences x 4 cameras = {len(refs)} loads, {frames} frames")
    print(f"adapter (camera-space H36M-17 3D + camera + SH 2D): {best_adapter:.2f} s, {frames / best_adapter:,.0f} frames/s")
    print(f"raw h5py read of the same files:                    {best_raw:.2f} s, {frames / best_raw:,.0f} frames/s")
    print(f"adapter / raw time: {best_adapter / best_raw:.2f}x")


if __name__ == "__main__":
    main()
