"""Time transforms of test sequences, for the motion-brittleness study (paper Table 9, Figure 5).

A lifter that has learnt the motion of its training set, rather than the pose in each frame,
gets worse when the same poses are played backwards or at another speed. These transforms make
such test sets from cached shards: every per-frame array is re-indexed in time, the pose of
each output frame is exactly a pose of the input, and `frame_index` is renumbered 0..T'-1 so
that it stays strictly increasing as the cache format requires.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from auglift.cache import open_shard, shard_path, verify_shard, write_shard

TIME_FREE = ("frame_index",)  # renumbered rather than re-indexed


def speed_indices(n_frames: int, speed: float) -> np.ndarray:
    """Source rows for playing `n_frames` at `speed` x: 2 keeps every 2nd frame, 0.5 shows each twice.

    Row i of the result is floor(i * speed), so any positive factor works (1.5 drops every
    third frame). At least one frame is always kept.
    """
    if n_frames < 1:
        raise ValueError(f"a sequence needs at least one frame, got {n_frames}")
    if not np.isfinite(speed) or speed <= 0:
        raise ValueError(f"speed must be a positive number, got {speed}")
    idx = np.floor(np.arange(0.0, n_frames, speed) + 1e-9).astype(np.int64)
    return idx[idx < n_frames]


def reverse_indices(n_frames: int) -> np.ndarray:
    if n_frames < 1:
        raise ValueError(f"a sequence needs at least one frame, got {n_frames}")
    return np.arange(n_frames - 1, -1, -1, dtype=np.int64)


def reindex_frames(arrays: Mapping[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Every array's frame axis taken at `rows`; `frame_index` becomes 0..len(rows)-1."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"arrays disagree on the number of frames: {lengths}")
    n = next(iter(lengths.values()))
    rows = np.asarray(rows, np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise IndexError(f"frame rows must lie in 0..{n - 1}, got {rows.min()}..{rows.max()}")
    out = {}
    for name, a in arrays.items():
        out[name] = np.arange(len(rows), dtype=np.int64) if name in TIME_FREE else np.asarray(a)[rows]
    return out


def reverse_frames(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    n = len(next(iter(arrays.values())))
    return reindex_frames(arrays, reverse_indices(n))


def change_speed(arrays: Mapping[str, np.ndarray], speed: float) -> dict[str, np.ndarray]:
    n = len(next(iter(arrays.values())))
    return reindex_frames(arrays, speed_indices(n, speed))


def transform_for(name: str) -> Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]:
    """"reversed", "speed_<f>" (e.g. speed_2, speed_0.5) or "original" -> the array transform."""
    if name == "original":
        return lambda a: {k: np.asarray(v) for k, v in a.items()}
    if name == "reversed":
        return reverse_frames
    if name.startswith("speed_"):
        try:
            factor = float(name[len("speed_"):])
        except ValueError:
            raise ValueError(f"bad speed transform {name!r}: expected speed_<factor>, e.g. speed_2") from None
        return lambda a: change_speed(a, factor)
    raise ValueError(f"unknown time transform {name!r}: use original, reversed or speed_<factor>")


def write_transformed(shard_paths: Sequence[str | os.PathLike], out_root: str | os.PathLike, name: str,
                      backend: str = "zarr") -> list[Path]:
    """Write each shard, transformed in time by `name`, under `out_root` (same keys).

    The attributes are the source's, with `time_transform` and `source_shard` added; a shard
    already there with the same transform and source checksums is kept (resumable).
    """

    fn = transform_for(name)
    out_root = Path(out_root)
    written = []
    for src in shard_paths:
        with open_shard(src) as shard:
            attrs = shard.copy_attrs()
            stamp = {n: i.get("sha256") for n, i in attrs["arrays"].items()}
            target = shard_path(out_root, shard.key, backend)
            if target.exists() and verify_shard(target).ok:
                with open_shard(target) as old:
                    if old.attrs.get("time_transform") == name and old.attrs.get("source_checksums") == stamp:
                        written.append(target)
                        continue
            arrays = fn(shard.read_all())
            attrs.update(time_transform=name, source_shard=str(src), source_checksums=stamp)
            written.append(write_shard(out_root, shard.key, arrays, attrs, backend=backend,
                                       overwrite=target.exists()))
    return written
