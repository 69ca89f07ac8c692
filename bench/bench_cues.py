"""Depth-sampling throughput: the vectorised codec vs a per-keypoint Python loop.

    python bench/bench_cues.py [--batch 64] [--repeats 5]

Same inputs for both (1080p depth maps, 17 joints, radius 3); prints keypoints/s and the ratio.
The target (issue 3) is a ratio of at least 50.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from auglift.core.codec import disc_offsets, sample_keypoint_depth


def loop_sample(depth_maps: np.ndarray, keypoints: np.ndarray, radius: int) -> np.ndarray:
    """The straightforward version: one keypoint at a time, a slice and a mask per keypoint."""
    B, H, W = depth_maps.shape
    out = np.full(keypoints.shape[:2], np.nan, np.float32)
    offsets = [tuple(o) for o in disc_offsets(radius).tolist()]
    for b in range(B):
        for j in range(keypoints.shape[1]):
            x, y = keypoints[b, j]
            if not (np.isfinite(x) and np.isfinite(y)):
                continue
            cx, cy = int(round(x)), int(round(y))
            if not (0 <= cx < W and 0 <= cy < H):
                continue
            best = np.inf
            for dy, dx in offsets:
                v = depth_maps[b, min(max(cy + dy, 0), H - 1), min(max(cx + dx, 0), W - 1)]
                if v < best:
                    best = v
            out[b, j] = best
    return out


def timed(fn, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--joints", type=int, default=17)
    ap.add_argument("--radius", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    maps = rng.uniform(0.5, 8.0, size=(args.batch, 1080, 1920)).astype(np.float32)
    kp = rng.uniform([-10, -10], [1930, 1090], size=(args.batch, args.joints, 2))
    n = args.batch * args.joints

    fast = sample_keypoint_depth(maps, kp, args.radius)
    slow = loop_sample(maps, kp, args.radius)
    assert np.array_equal(fast, slow, equal_nan=True), "vectorised and loop results differ"

    t_fast = timed(lambda: sample_keypoint_depth(maps, kp, args.radius), args.repeats)
    t_slow = timed(lambda: loop_sample(maps, kp, args.radius), max(1, args.repeats // 2))
    print(f"inputs: {args.batch} maps 1920x1080, {args.joints} joints, radius {args.radius}")
    print(f"{'method':<22}{'seconds':>10}{'keypoints/s':>16}")
    print(f"{'per-keypoint loop':<22}{t_slow:>10.4f}{n / t_slow:>16,.0f}")
    print(f"{'vectorised (numpy)':<22}{t_fast:>10.4f}{n / t_fast:>16,.0f}")
    print(f"ratio vectorised/loop: {t_slow / t_fast:.1f}x (target >= 50x)")


if __name__ == "__main__":
    main()
