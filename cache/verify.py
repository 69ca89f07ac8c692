"""Full verification of shards: structure, attributes, NaN policy and checksums.

Unlike `open_shard`, which only checks what is cheap, `verify_shard` streams every array once,
recomputes its SHA-256, and collects every problem it finds instead of stopping at the first.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .keys import backend_of, key_for
from .reader import ShardError, attrs_problem, load_attrs, open_raw, storage_problems
from .schema import (
    REQUIRED_ARRAYS,
    Violation,
    array_spec,
    attr_problems,
    depth_is_none,
    expected_tail,
    policy_violations,
)
from .store import is_shard_path, list_shards

VERIFY_BLOCK = 4096  # rows read at a time: bounded memory whatever the sequence length


@dataclass
class VerifyReport:
    path: Path
    ok: bool
    problems: list[str] = field(default_factory=list)
    n_frames: int | None = None
    key: str | None = None
    dataset: str | None = None
    config_hash: str | None = None


def _structure_problems(path: Path, reader, attrs: dict) -> tuple[list[str], list[str]]:
    """Problems with the array table; returns (problems, names safe to stream)."""
    p: list[str] = []
    recorded = attrs.get("arrays") if isinstance(attrs.get("arrays"), dict) else {}
    t = attrs.get("n_frames")
    on_disk = reader.names()
    for name in REQUIRED_ARRAYS:
        if name not in on_disk:
            p.append(f"required array '{name}' is missing")
    for name in sorted(set(recorded) - set(on_disk)):
        if name not in REQUIRED_ARRAYS:
            p.append(f"array '{name}' is listed in attributes but missing on disk")
    for name in sorted(set(on_disk) - set(recorded)):
        p.append(f"array '{name}' is on disk but not listed in attributes (no checksum)")
    kp_shape = reader.shape("keypoints_2d") if "keypoints_2d" in on_disk else ()
    k = kp_shape[1] if len(kp_shape) == 3 else None
    streamable = []
    for name in on_disk:
        shape, dtype = reader.shape(name), reader.dtype(name)
        info = recorded.get(name, {})
        if info and list(shape) != list(info.get("shape", [])):
            p.append(f"array '{name}' has shape {list(shape)} but attributes record {info.get('shape')}")
        if info and str(dtype) != info.get("dtype"):
            p.append(f"array '{name}' has dtype {dtype} but attributes record {info.get('dtype')}")
        if isinstance(t, int) and (not shape or shape[0] != t):
            p.append(f"array '{name}' has {shape[0] if shape else 0} rows but n_frames is {t}")
        p += storage_problems(reader, name)
        spec = array_spec(name)
        if spec is not None:
            if dtype != np.dtype(spec[0]):
                p.append(f"array '{name}' must be {spec[0]}, is {dtype}")
            tail = expected_tail(name, k)
            if tuple(shape[1:]) != tail:
                p.append(f"array '{name}' must have trailing shape {tail}, has {tuple(shape[1:])}")
        streamable.append(name)
    return p, streamable


def _stream_problems(reader, names: list[str], attrs: dict) -> list[str]:
    """One pass over every array: recompute checksums and apply the NaN / range policy."""
    p: list[str] = []
    recorded = attrs.get("arrays") if isinstance(attrs.get("arrays"), dict) else {}
    lengths = {n: reader.shape(n)[0] if reader.shape(n) else 0 for n in names}
    hashes = {n: hashlib.sha256() for n in names}
    broken: set[str] = set()
    totals: dict[str, Violation] = {}
    last_frame = None
    depth_none = depth_is_none(attrs)
    for start in range(0, max(lengths.values(), default=0), VERIFY_BLOCK):
        batch = {}
        for name in names:
            if name in broken or start >= lengths[name]:
                continue
            stop = min(start + VERIFY_BLOCK, lengths[name])
            try:
                data = np.ascontiguousarray(reader.read(name, start, stop))
            except Exception as e:
                p.append(f"array '{name}': reading rows {start}:{stop} failed ({type(e).__name__}: {e})")
                broken.add(name)
                continue
            hashes[name].update(memoryview(data.astype(data.dtype.newbyteorder("<"), copy=False)).cast("B"))
            batch[name] = data
        if batch:  # check the rows all arrays have; misaligned lengths are already flagged
            m = min(len(v) for v in batch.values())
            for v in policy_violations({k: d[:m] for k, d in batch.items()}, start, last_frame, depth_none):
                if v.what in totals:
                    totals[v.what].count += v.count
                else:
                    totals[v.what] = v
        if "frame_index" in batch and len(batch["frame_index"]):
            last_frame = int(batch["frame_index"][-1])
    p += [v.message() for v in totals.values()]
    for name in names:
        want = recorded.get(name, {}).get("sha256")
        if name in broken or want is None:
            continue
        if hashes[name].hexdigest() != want:
            p.append(f"array '{name}': checksum mismatch (data changed since it was written)")
    return p


def _str_or_none(x) -> str | None:
    return x if isinstance(x, str) else None


def verify_shard(path: str | os.PathLike) -> VerifyReport:
    """Check one shard completely; never raises for a bad shard, reports it instead."""
    path = Path(path)
    try:
        backend_of(path)
        reader = open_raw(path)
    except (ShardError, ValueError, OSError) as e:
        return VerifyReport(path, False, [str(e)])
    try:
        try:
            attrs = load_attrs(path, reader)
        except ShardError as e:
            return VerifyReport(path, False, [str(e)])
        problems: list[str] = []
        if attrs.get("complete") is not True:
            problems.append("incomplete shard (attribute 'complete' is not true)")
        problems += attr_problems(attrs)
        if attrs_problem(attrs):
            problems.append(attrs_problem(attrs))
        for name, typ in (("key", str), ("n_frames", int), ("arrays", dict), ("created", str),
                          ("auglift_version", str)):
            if not isinstance(attrs.get(name), typ):
                problems.append(f"cache attribute '{name}' is missing or not a {typ.__name__}")
        key = attrs.get("key") if isinstance(attrs.get("key"), str) else None
        try:
            implied = key_for(*(attrs.get(n) for n in ("dataset", "subject", "action", "camera")))
        except ValueError:
            implied = None
        if key is not None and implied is not None and key != implied:
            problems.append(f"key {key!r} does not match dataset/subject/action/camera ({implied!r})")
        if key is not None and not path.as_posix().endswith(key + path.suffix):
            problems.append(f"shard is stored at {path}, which does not end with its key {key!r}")
        struct, names = _structure_problems(path, reader, attrs)
        problems += struct
        problems += _stream_problems(reader, names, attrs)
        n = attrs.get("n_frames") if isinstance(attrs.get("n_frames"), int) else None
        return VerifyReport(path, not problems, problems, n, key, _str_or_none(attrs.get("dataset")),
                            _str_or_none(attrs.get("config_hash")))
    except Exception as e:  # damage we did not foresee must still become a report, not a crash
        return VerifyReport(path, False, [f"verification failed ({type(e).__name__}: {e})"])
    finally:
        reader.close()


def verify_tree(root: str | os.PathLike) -> list[VerifyReport]:
    """Verify every committed shard under `root` (or `root` itself if it is a shard)."""
    root = Path(root)
    if is_shard_path(root):
        return [verify_shard(root)]
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root}: not a cache root or shard (expected a directory, a '.zarr' directory "
                         f"or a '.h5' file)")
    return [verify_shard(p) for p in list_shards(root)]


def mixed_config_hashes(reports: list[VerifyReport]) -> dict[str, dict[str, int]]:
    """Datasets whose shards carry more than one config hash: {dataset: {hash: shard count}}."""
    seen: dict[str, dict[str, int]] = {}
    for r in reports:
        if r.dataset is not None and r.config_hash is not None:
            per = seen.setdefault(r.dataset, {})
            per[r.config_hash] = per.get(r.config_hash, 0) + 1
    return {d: h for d, h in seen.items() if len(h) > 1}
