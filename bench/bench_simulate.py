"""Simulator throughput on real Human3.6M mocap.

    python bench/bench_simulate.py [--data-root ../shared/data] [--subject S9] [--sequences 4]

Times `simulate_view` (projection, noise, capsule tracing for visibility and depth, confidence)
per frame and camera, without writing, then the whole driver (with shard writing and fsync) on
the same sequences into a temporary directory. The issue's target: all of H36M at 10 fps
(~400k frame-views, 820 shards) in under 10 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from auglift.pipeline.simulate import SimulateConfig, shard_rng, simulate_dataset, simulate_view
from auglift.pipeline.sources.base import get_dataset

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--subject", default="S9")
    ap.add_argument("--sequences", type=int, default=4, help="sequence x camera pairs to time")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()

    cfg = SimulateConfig()
    adapter = get_dataset("h36m", args.data_root)
    refs = adapter.list_sequences(subjects=[args.subject])[: args.sequences]
    seqs = [adapter.load(r) for r in refs]
    for s in seqs:  # warm up: builds each camera's pixel-ray table once, as a worker does
        simulate_view(s.joints_3d_cam[:8], s.cam, s.image_size, cfg, shard_rng(0, "warm"))
    frames = sum(len(s) for s in seqs)
    t0 = time.perf_counter()
    for s in seqs:
        simulate_view(s.joints_3d_cam, s.cam, s.image_size, cfg, shard_rng(0, s.key))
    compute = time.perf_counter() - t0
    print(f"simulate_view: {frames} frame-views in {compute:.2f} s = {compute / frames * 1e3:.3f} ms each")

    actions = sorted({r.action for r in refs})
    with tempfile.TemporaryDirectory() as tmp:
        summary = simulate_dataset("h36m", args.data_root, tmp, config=cfg, subjects=[args.subject],
                                   actions=actions, workers=args.workers, log=None)
    n, sec = summary["frames"], summary["seconds"]
    print(f"driver ({args.workers} worker(s), {summary['shards']['total']} shards incl. writing): "
          f"{n} frame-views in {sec:.2f} s = {sec / n * 1e3:.3f} ms each")
    print(f"projected for all of H36M (398,648 frame-views): compute {398648 * compute / frames / 60:.1f} min "
          f"on one core; driver {398648 * sec / n / 60:.1f} min with {args.workers} worker(s)")


if __name__ == "__main__":
    main()
