"""Shard cache: keys, hashing, round trips, incremental writes, reading, windows."""
from __future__ import annotations

import dataclasses
import hashlib
import pickle

import numpy as np
import pytest
from test_cache_support import h36m_sequence, key_of, make_attrs, synthetic_sequence

from auglift.cache import (
    ShardWriter,
    config_hash,
    key_for,
    list_shards,
    open_shard,
    shard_path,
    stray_temps,
    validate_key,
    verify_shard,
    write_shard,
)

BACKENDS = ["zarr", "hdf5"]


def assert_same(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for name in a:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name


# -- keys and hashes --------------------------------------------------------------------------

def test_key_for_makes_components_path_safe(tmp_path):
    assert key_for("h36m", "S1", "Walking 1", 54138969) == "h36m/S1/Walking_1/54138969"
    assert key_for("3dpw", "courtyard/arguing", ".hidden", "cam:0 ") == "3dpw/courtyard_arguing/_hidden/cam_0"
    assert key_for("fit3d", "s03", "Übung", "50591643") == "fit3d/s03/_bung/50591643"
    with pytest.raises(ValueError, match="empty key component"):
        key_for("h36m", "S1", " ", "1")
    with pytest.raises(ValueError, match="4 components"):
        validate_key("h36m/S1/Walking")
    with pytest.raises(ValueError, match="not path-safe"):
        validate_key("h36m/S1/../54138969")
    assert shard_path(tmp_path, "a/b/c/d") == tmp_path / "a/b/c/d.zarr"
    assert shard_path(tmp_path, "a/b/c/d", "hdf5") == tmp_path / "a/b/c/d.h5"
    with pytest.raises(ValueError, match="unknown cache backend"):
        shard_path(tmp_path, "a/b/c/d", "npz")


@dataclasses.dataclass
class _Cfg:
    detector: str
    radius: int
    scales: tuple


def test_config_hash_is_canonical():
    base = {"detector": "blazepose", "radius": 3, "scales": [1.0, 0.5], "nested": {"b": 1, "a": 2}}
    h = config_hash(base)
    assert len(h) == 16 and int(h, 16) >= 0
    reordered = {"nested": {"a": 2, "b": 1}, "scales": (np.float64(1.0), 0.5), "radius": np.int32(3),
                 "detector": "blazepose"}
    assert config_hash(reordered) == h
    assert config_hash({**base, "radius": 4}) != h
    assert config_hash(_Cfg("blazepose", 3, (1.0, 0.5))) == config_hash(
        {"detector": "blazepose", "radius": 3, "scales": [1.0, 0.5]})
    with pytest.raises(ValueError, match="non-finite"):
        config_hash({"x": float("nan")})


# -- round trips ---------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trip_real_h36m(tmp_path, shared_data, backend):
    arrays, attrs = h36m_sequence(shared_data)
    assert np.isnan(arrays["depth"]).any()          # the test must exercise NaN depth
    key = key_of(attrs)
    path = write_shard(tmp_path, key, arrays, attrs, backend=backend)
    assert path == shard_path(tmp_path, "h36m/S1/Walking_1/54138969", backend)
    with open_shard(path) as shard:
        assert shard.key == key and shard.backend == backend
        assert shard.n_frames == len(arrays["frame_index"]) == 696
        assert shard.n_keypoints == 17
        assert shard.array_names == list(arrays)
        assert_same(shard.read_all(), arrays)
        assert shard.dtype("frame_index") == np.int64 and shard.dtype("keypoints_2d") == np.float32
        a = shard.attrs
        assert a["complete"] is True and a["format_version"] == 2 and a["n_frames"] == 696
        assert a["action"] == "Walking 1" and a["intrinsics"] == attrs["intrinsics"]
        assert a["provenance"]["depth"] == "oracle" and a["depth_backend"]["kind"] == "metric"
        assert a["arrays"]["joints_3d_cam"]["shape"] == [696, 17, 3]
    report = verify_shard(path)
    assert report.ok, report.problems
    assert report.n_frames == 696 and report.key == key


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trip_casts_and_optional_arrays(tmp_path, backend):
    arrays = synthetic_sequence(200)
    given = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in arrays.items()}
    given["frame_index"] = arrays["frame_index"].astype(np.int32)
    given["depth_valid"] = np.isfinite(arrays["depth"])
    given["ordinal_100mm"] = np.argsort(np.argsort(arrays["joints_3d_cam"][..., 2], axis=1), axis=1)
    given["joints_3d_world"] = arrays["joints_3d_cam"].astype(np.float64) + 1000.0
    attrs = make_attrs()
    path = write_shard(tmp_path, key_of(attrs), given, attrs, backend=backend)
    with open_shard(path) as shard:
        assert shard.dtype("keypoints_2d") == np.float32
        assert shard.dtype("frame_index") == np.int64
        assert shard.dtype("depth_valid") == np.bool_
        assert shard.dtype("ordinal_100mm") == np.float32    # spec'd optional array: float32
        assert shard.dtype("joints_3d_world") == np.float64  # free-form array keeps its dtype
        assert_same(shard.read_all(), {k: np.asarray(v).astype(shard.dtype(k)) for k, v in given.items()})
    assert verify_shard(path).ok


def test_incremental_appends_equal_one_shot(tmp_path):
    arrays = synthetic_sequence(1000, seed=3)
    attrs = make_attrs()
    key = key_of(attrs)
    one = write_shard(tmp_path / "one", key, arrays, attrs)
    sizes = [1, 7, 64, 100, 5, 300, 200, 323]
    assert sum(sizes) == 1000
    with ShardWriter(tmp_path / "inc", key, attrs, chunk_frames=64) as w:
        start = 0
        for s in sizes:
            w.append({k: v[start:start + s] for k, v in arrays.items()})
            start += s
            assert w.n_frames == start and w.buffered_frames < 64   # whole chunks go to disk
    h5 = write_shard(tmp_path / "h5", key, arrays, attrs, backend="hdf5", chunk_frames=100)
    shards = [open_shard(p) for p in (one, w.path, h5)]
    sums = [{n: i["sha256"] for n, i in s.attrs["arrays"].items()} for s in shards]
    assert sums[0] == sums[1] == sums[2]  # independent of batching, chunking and backend
    # ... and they are the documented definition: SHA-256 of the little-endian C-order bytes.
    for name, arr in arrays.items():
        assert sums[0][name] == hashlib.sha256(arr.astype(arr.dtype.newbyteorder("<")).tobytes()).hexdigest()
    for s in shards[1:]:
        assert_same(s.read_all(), shards[0].read_all())
    for s in shards:
        s.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_writer_owns_buffered_rows(tmp_path, backend):
    """A producer that refills one batch buffer in place must not corrupt the shard."""
    arrays = synthetic_sequence(250, seed=4)
    attrs = make_attrs()
    scratch = {k: np.empty((10, *v.shape[1:]), v.dtype) for k, v in arrays.items()}
    with ShardWriter(tmp_path, key_of(attrs), attrs, backend=backend, chunk_frames=64) as w:
        for start in range(0, 250, 10):
            for k, v in arrays.items():
                scratch[k][:] = v[start:start + 10]
            w.append(scratch)
    with open_shard(w.path) as shard:
        assert_same(shard.read_all(), arrays)
    assert verify_shard(w.path).ok


# -- reading -------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_window_edge_padding(tmp_path, backend):
    arrays = synthetic_sequence(50)
    attrs = make_attrs()
    path = write_shard(tmp_path, key_of(attrs), arrays, attrs, backend=backend)
    fi, kp = arrays["frame_index"], arrays["keypoints_2d"]
    with open_shard(path) as shard:
        w = shard.window(-3, 10)
        assert w["frame_index"].tolist() == [fi[0]] * 4 + fi[1:7].tolist()
        assert np.array_equal(w["keypoints_2d"][:4], np.repeat(kp[:1], 4, axis=0))
        w = shard.window(45, 8, names=["frame_index", "depth"])
        assert set(w) == {"frame_index", "depth"}
        assert w["frame_index"].tolist() == fi[45:].tolist() + [fi[-1]] * 3
        assert np.array_equal(w["depth"], arrays["depth"][[45, 46, 47, 48, 49, 49, 49, 49]], equal_nan=True)
        inside = shard.window(10, 20)
        assert_same(inside, {k: v[10:30] for k, v in arrays.items()})
        assert shard.window(80, 3)["frame_index"].tolist() == [fi[-1]] * 3
        assert shard.window(-1, 60)["frame_index"].shape == (60,)
        with pytest.raises(IndexError, match="outside"):
            shard.window(-1, 5, pad=None)
        assert shard.window(0, 50, pad=None)["frame_index"].tolist() == fi.tolist()


@pytest.mark.parametrize("backend", BACKENDS)
def test_iter_batches_streams_in_bounded_reads(tmp_path, backend):
    arrays = synthetic_sequence(1000, seed=1)
    attrs = make_attrs()
    path = write_shard(tmp_path, key_of(attrs), arrays, attrs, backend=backend, chunk_frames=128)
    with open_shard(path) as shard:
        reads = []
        backend_reader = shard._handle()
        original = backend_reader.read_many

        def spy(names, start, stop):
            reads.extend((name, start, stop) for name in names)
            return original(names, start, stop)

        backend_reader.read_many = spy
        batches = list(shard.iter_batches(128, names=["keypoints_2d", "frame_index"]))
        assert [len(b["frame_index"]) for b in batches] == [128] * 7 + [104]
        assert max(stop - start for _, start, stop in reads) <= 128
        assert {n for n, _, _ in reads} == {"keypoints_2d", "frame_index"}
        assert np.array_equal(np.concatenate([b["keypoints_2d"] for b in batches]), arrays["keypoints_2d"],
                              equal_nan=True)
        assert np.array_equal(shard.read("frame_index", -3), arrays["frame_index"][-3:])
        assert shard.read("confidence", 990, 2000).shape == (10, 17)
        with pytest.raises(KeyError, match="no array 'heatmaps'"):
            shard.read("heatmaps")


def test_shard_pickles_and_reopens(tmp_path):
    arrays = synthetic_sequence(40)
    attrs = make_attrs()
    path = write_shard(tmp_path, key_of(attrs), arrays, attrs, backend="hdf5")
    with open_shard(path) as shard:
        clone = pickle.loads(pickle.dumps(shard))
    assert np.array_equal(clone.read("frame_index"), arrays["frame_index"])
    clone.close()


# -- writer rules --------------------------------------------------------------------------------

@pytest.mark.parametrize("mutate, message", [
    (lambda a: a["keypoints_2d"].__setitem__((7, 2, 0), np.nan),
     r"NaN where confidence > 0.*row 7, frame_index 38, keypoint 2"),
    (lambda a: a["confidence"].__setitem__((3, 1), 1.5), r"outside \[0, 1\]"),
    (lambda a: a["depth"].__setitem__((3, 1), np.inf), "depth is infinite"),
    (lambda a: a["frame_index"].__setitem__(5, 3), "not strictly increasing"),
    (lambda a: a["bbox"].__setitem__((12, 1), np.nan), "partly NaN"),
    (lambda a: a["joints_3d_cam"].__setitem__((1, 0, 2), np.nan), "joints_3d_cam is not finite"),
    (lambda a: a.__setitem__("frame_index", a["frame_index"].astype(np.float64)), "refusing a lossy cast"),
    (lambda a: a.__setitem__("confidence", a["confidence"][:, :16]), r"'confidence' must have shape"),
    (lambda a: a.__setitem__("bbox", a["bbox"][:-1]), "has 19 rows"),
    (lambda a: a.__setitem__("keypoints_2d", a["keypoints_2d"].reshape(20, 34)), r"shape \(T, K, 2\)"),
    (lambda a: a.pop("depth"), r"missing required arrays \['depth'\]"),
])
def test_writer_refuses_bad_batches(tmp_path, mutate, message):
    arrays = {k: v.copy() for k, v in synthetic_sequence(20).items()}
    mutate(arrays)
    attrs = make_attrs()
    with pytest.raises(ValueError, match=message) as info:
        write_shard(tmp_path, key_of(attrs), arrays, attrs)
    assert "h36m/S1/Walking_1/54138969" in str(info.value)
    assert list_shards(tmp_path) == [] and stray_temps(tmp_path) == []


def test_writer_checks_across_batches_and_array_sets(tmp_path):
    arrays = synthetic_sequence(20)
    attrs = make_attrs()
    with pytest.raises(ValueError, match="not strictly increasing.*row 10"):
        with ShardWriter(tmp_path, key_of(attrs), attrs) as w:
            w.append({k: v[:10] for k, v in arrays.items()})
            w.append({k: v[:10] for k, v in arrays.items()})   # same frames again
    with pytest.raises(ValueError, match="first append fixed"):
        with ShardWriter(tmp_path, key_of(attrs), attrs) as w:
            w.append({k: v[:10] for k, v in arrays.items()})
            w.append({k: v[10:] for k, v in arrays.items() if k != "joints_3d_cam"})
    with pytest.raises(ValueError, match="no frames were appended"):
        with ShardWriter(tmp_path, key_of(attrs), attrs):
            pass
    assert list_shards(tmp_path) == [] and stray_temps(tmp_path) == []


@pytest.mark.parametrize("change, message", [
    ({"depth_backend": {"name": "x", "version": None, "params": {}, "kind": "disparity"}},
     "kind' must be one of"),
    ({"provenance": {"keypoints_2d": "real", "confidence": "real", "depth": "guessed"}}, "provenance.depth"),
    ({"provenance": {"keypoints_2d": "real", "confidence": "real", "depth": "none"}}, "both must be 'none'"),
    ({"image_size": [1000]}, "image_size"),
    ({"fps": float("nan")}, "non-finite"),
    ({"format_version": 3}, "format_version"),
    ({"action": "Walking 2"}, "does not match its attributes"),
])
def test_writer_refuses_bad_attrs(tmp_path, change, message):
    attrs = {**make_attrs(), **change}
    with pytest.raises(ValueError, match=message):
        ShardWriter(tmp_path, "h36m/S1/Walking_1/54138969", attrs)


def test_depth_kind_none_requires_nan_depth(tmp_path):
    arrays = synthetic_sequence(30)
    attrs = make_attrs(depth_kind="none")
    with pytest.raises(ValueError, match="depth is not NaN"):
        write_shard(tmp_path, key_of(attrs), arrays, attrs)
    arrays["depth"] = np.full_like(arrays["depth"], np.nan)
    assert verify_shard(write_shard(tmp_path, key_of(attrs), arrays, attrs)).ok


@pytest.mark.parametrize("backend", BACKENDS)
def test_existing_shard_needs_overwrite(tmp_path, backend):
    attrs = make_attrs()
    key = key_of(attrs)
    first = synthetic_sequence(30, seed=1)
    path = write_shard(tmp_path, key, first, attrs, backend=backend)
    with pytest.raises(FileExistsError, match=str(path)):
        write_shard(tmp_path, key, synthetic_sequence(40, seed=2), attrs, backend=backend)
    second = synthetic_sequence(40, seed=2)
    assert write_shard(tmp_path, key, second, attrs, backend=backend, overwrite=True) == path
    with open_shard(path) as shard:
        assert shard.n_frames == 40
        assert_same(shard.read_all(), second)
    assert verify_shard(path).ok
    assert stray_temps(tmp_path) == [] and list_shards(tmp_path) == [path]


def test_list_shards_finds_committed_shards_only(tmp_path):
    arrays = synthetic_sequence(20)
    paths = []
    layout = [("S1", "Walking 1", "zarr"), ("S1", "Eating", "hdf5"), ("S9", "Walking 1", "zarr")]
    for subject, action, backend in layout:
        attrs = make_attrs(subject=subject, action=action)
        paths.append(write_shard(tmp_path, key_of(attrs), arrays, attrs, backend=backend))
    (tmp_path / ".tmp" / "h36m").mkdir(parents=True, exist_ok=True)
    (tmp_path / ".tmp" / "h36m" / "x.0123456789abcdef0123456789abcdef.h5").write_bytes(b"partial")
    (tmp_path / "notes.txt").write_text("not a shard")
    assert list_shards(tmp_path) == sorted(paths)
    assert list_shards(tmp_path, "h36m/S1/*") == sorted(paths[:2])
    assert list_shards(tmp_path, "*/Walking_1/*") == sorted([paths[0], paths[2]])
    assert list_shards(paths[1]) == [paths[1]]
    assert len(stray_temps(tmp_path)) == 1
    with pytest.raises(FileNotFoundError, match="no such cache directory"):
        list_shards(tmp_path / "missing")
