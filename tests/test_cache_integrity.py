"""Shard cache under failure: interrupted writes, and shards damaged on disk behind its back."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr
from test_cache_support import key_of, make_attrs, synthetic_sequence

from auglift.cache import (
    ShardError,
    ShardWriter,
    clean_tmp,
    list_shards,
    open_shard,
    shard_path,
    stray_temps,
    verify_shard,
    verify_tree,
    write_shard,
)

BACKENDS = ["zarr", "hdf5"]
TESTS = Path(__file__).resolve().parent


def _write(tmp_path, backend, n=300, **kw):
    attrs = make_attrs()
    arrays = synthetic_sequence(n)
    return write_shard(tmp_path, key_of(attrs), arrays, attrs, backend=backend, chunk_frames=64, **kw), arrays


def _edit_array(path: Path, name: str):
    """Open one array of a committed shard for in-place editing, bypassing the cache code."""
    if path.suffix == ".h5":
        f = h5py.File(path, "r+")
        return f, f[name]
    return None, zarr.open_array(store=str(path / name), mode="r+")


# -- interrupted writes --------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_exception_mid_write_leaves_no_shard(tmp_path, backend):
    arrays = synthetic_sequence(300)
    attrs = make_attrs()
    with pytest.raises(RuntimeError, match="detector crashed"):
        with ShardWriter(tmp_path, key_of(attrs), attrs, backend=backend, chunk_frames=32) as w:
            w.append({k: v[:200] for k, v in arrays.items()})
            assert w.tmp_path.exists() and str(w.tmp_path).startswith(str(tmp_path / ".tmp"))
            raise RuntimeError("detector crashed")
    assert not w.path.exists() and not w.tmp_path.exists()
    assert list_shards(tmp_path) == [] and stray_temps(tmp_path) == [] and verify_tree(tmp_path) == []


def test_abort_discards(tmp_path):
    arrays = synthetic_sequence(100)
    attrs = make_attrs()
    w = ShardWriter(tmp_path, key_of(attrs), attrs, chunk_frames=16)
    w.append(arrays)
    assert w.tmp_path.exists()
    w.abort()
    assert not w.tmp_path.exists() and list_shards(tmp_path) == []


_CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
from auglift.cache import ShardWriter
from test_cache_support import key_of, make_attrs, synthetic_sequence
arrays = synthetic_sequence(64)
attrs = make_attrs()
w = ShardWriter({root!r}, key_of(attrs), attrs, backend={backend!r}, chunk_frames=16)
i = 0
while True:
    batch = dict(arrays, frame_index=arrays["frame_index"] + 100000 * i)
    w.append(batch)
    print(i, w.tmp_path, flush=True)
    i += 1
    time.sleep(0.02)
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_mid_write_leaves_only_a_stray_temp(tmp_path, backend):
    root = tmp_path / "cache"
    script = _CHILD.format(tests=str(TESTS), root=str(root), backend=backend)
    child = subprocess.Popen([sys.executable, "-c", script],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in child.stdout:
            i, tmp = line.split(maxsplit=1)
            if int(i) >= 3:
                break
        else:
            pytest.fail(f"writer child died early: {child.stderr.read()}")
        assert Path(tmp.strip()).exists()           # data really was on disk when it was killed
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    assert list_shards(root) == [] and verify_tree(root) == []
    assert not shard_path(root, "h36m/S1/Walking_1/54138969", backend).exists()
    assert stray_temps(root) == [Path(tmp.strip())]
    assert len(clean_tmp(root).deleted) == 1
    assert stray_temps(root) == [] and not (root / ".tmp" / "h36m").exists()


# -- damage on disk -------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_verify_rejects_truncated_array(tmp_path, backend):
    path, arrays = _write(tmp_path, backend)
    f, arr = _edit_array(path, "keypoints_2d")
    arr.resize((250, 17, 2))
    if f:
        f.close()
    report = verify_shard(path)
    assert not report.ok
    text = "\n".join(report.problems)
    assert "'keypoints_2d' has shape [250, 17, 2] but attributes record [300, 17, 2]" in text
    assert "'keypoints_2d' has 250 rows but n_frames is 300" in text
    assert "'keypoints_2d': checksum mismatch" in text
    assert "'confidence'" not in text                      # the intact arrays are not blamed
    with pytest.raises(ShardError, match=f"{path}.*'keypoints_2d' has shape"):
        open_shard(path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_verify_rejects_value_changed_in_place(tmp_path, backend):
    path, arrays = _write(tmp_path, backend)
    assert verify_shard(path).ok
    f, arr = _edit_array(path, "depth")
    arr[123, 4] = arrays["depth"][123, 4] + 0.01 if np.isfinite(arrays["depth"][123, 4]) else 3.0
    if f:
        f.close()
    report = verify_shard(path)
    assert not report.ok
    assert report.problems == ["array 'depth': checksum mismatch (data changed since it was written)"]
    with open_shard(path) as shard:              # the cheap open does not recompute checksums
        assert shard.n_frames == 300


@pytest.mark.parametrize("backend", BACKENDS)
def test_verify_reports_policy_violations_with_location(tmp_path, backend):
    path, arrays = _write(tmp_path, backend)
    f, arr = _edit_array(path, "confidence")
    arr[200, 3] = 1.5
    arr[250, 5] = -0.5
    if f:
        f.close()
    f, arr = _edit_array(path, "frame_index")
    arr[100] = arr[99]
    if f:
        f.close()
    f, arr = _edit_array(path, "bbox")
    arr.resize((280, 4))       # a truncated array must not hide the other arrays' violations
    if f:
        f.close()
    problems = verify_shard(path).problems
    fi = arrays["frame_index"]
    assert (f"confidence is outside [0, 1] (2 entries; first at row 200, frame_index {fi[200]}, "
            f"keypoint 3)") in problems
    assert (f"frame_index is not strictly increasing (1 entries; first at row 100, "
            f"frame_index {fi[99]})") in problems
    assert "array 'confidence': checksum mismatch (data changed since it was written)" in problems


def test_truncated_hdf5_file_names_the_file(tmp_path):
    path, _ = _write(tmp_path, "hdf5", n=2000)
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(ShardError, match=rf"{path}: truncated or corrupt HDF5 file"):
        open_shard(path)
    report = verify_shard(path)
    assert not report.ok and str(path) in report.problems[0] and "truncated" in report.problems[0]
    assert verify_tree(tmp_path)[0].ok is False


def test_corrupt_zarr_chunk_is_reported(tmp_path):
    path, _ = _write(tmp_path, "zarr")
    chunk = path / "keypoints_2d" / "c" / "1" / "0" / "0"
    chunk.write_bytes(os.urandom(chunk.stat().st_size))
    report = verify_shard(path)
    assert not report.ok
    assert any(p.startswith("array 'keypoints_2d': reading rows") for p in report.problems)
    with open_shard(path) as shard:
        shard.read("keypoints_2d", 0, 64)              # the intact first chunk still reads
        with pytest.raises(ShardError, match=f"{path}: reading 'keypoints_2d' rows 64:128 failed"):
            shard.read("keypoints_2d", 64, 128)


def test_damaged_zarr_array_metadata_names_the_shard(tmp_path):
    path, _ = _write(tmp_path, "zarr")
    (path / "confidence" / "zarr.json").write_text("{not json")
    with pytest.raises(ShardError, match=f"{path}: .*JSONDecodeError"):
        open_shard(path)
    assert not verify_shard(path).ok


@pytest.mark.parametrize("backend", BACKENDS)
def test_incomplete_or_foreign_shards_are_refused(tmp_path, backend):
    path, _ = _write(tmp_path, backend)
    if backend == "hdf5":
        with h5py.File(path, "r+") as f:
            attrs = json.loads(f.attrs["auglift"])
            f.attrs["auglift"] = json.dumps({**attrs, "complete": False})
    else:
        g = zarr.open_group(store=str(path), mode="r+")
        g.attrs["auglift"] = {**g.attrs["auglift"], "complete": False}
    with pytest.raises(ShardError, match=f"{path}: incomplete shard"):
        open_shard(path)
    assert "incomplete shard (attribute 'complete' is not true)" in verify_shard(path).problems
    if backend == "zarr":
        g.attrs["auglift"] = {**g.attrs["auglift"], "complete": True, "format_version": 3}
        with pytest.raises(ShardError, match="format_version 3 is not supported"):
            open_shard(path)

    foreign = tmp_path / ("other.zarr" if backend == "zarr" else "other.h5")
    if backend == "hdf5":
        with h5py.File(foreign, "w") as f:
            f["x"] = np.zeros(3)
    else:
        zarr.open_group(store=str(foreign), mode="w").create_array("x", shape=(3,), dtype="f4")
    with pytest.raises(ShardError, match=f"{foreign}: no 'auglift' attributes"):
        open_shard(foreign)
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(ShardError, match="empty.zarr: not a readable Zarr group"):
        open_shard(tmp_path / "empty.zarr")
    with pytest.raises(ShardError, match="not a shard path"):
        open_shard(tmp_path / "x.npz")
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        open_shard(tmp_path / "missing.h5")


def test_moved_shard_is_flagged(tmp_path):
    path, _ = _write(tmp_path, "hdf5")
    moved = tmp_path / "h36m/S1/Walking_1/55011271.h5"
    path.rename(moved)
    report = verify_shard(moved)
    assert not report.ok and "does not end with its key" in report.problems[0]
