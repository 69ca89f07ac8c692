"""Streaming windows: geometry and edge padding, shuffling, worker/rank splits, flipping, codec fit."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from auglift.cache import key_for, write_shard
from auglift.core.camera import project
from auglift.core.codec import CodecConfig, CueCodec
from auglift.core.skeleton import H36M17_LEFT, H36M17_RIGHT
from auglift.lifters.data import (
    ShuffleBuffer,
    WindowDataset,
    WindowSpec,
    flip_frames,
    root_relative_metres,
)
from auglift.lifters.shards import fit_codec, resolve_shards

W, H = 1000, 1002


def shard_attrs(subject="S1", action="Walking 1", camera="54138969", kind="metric"):
    return {"dataset": "handmade", "subject": subject, "action": action, "camera": camera,
            "image_size": [W, H], "intrinsics": None, "fps": 10, "skeleton": "h36m17",
            "detector": {"name": "handmade", "version": None, "params": {}},
            "depth_backend": {"name": "handmade", "version": None, "params": {}, "kind": kind},
            "config_hash": "handmade0", "provenance": {"keypoints_2d": "simulated", "confidence": "simulated",
                                                       "depth": "simulated"}}


def make_shard(root, n, subject="S1", action="Walking 1", camera="54138969", seed=0, kind="metric"):
    """A shard whose joint j of row t sits at x = t + j/100 px (the row is readable from the cues)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float32)
    kp = np.stack([t[:, None] + np.arange(17) / 100.0 + np.zeros((n, 17)),
                   rng.uniform(200, 800, (n, 17))], axis=-1).astype(np.float32)
    joints = rng.normal(0, 300, (n, 17, 3)).astype(np.float32)
    joints[..., 2] += 4500.0
    arrays = {"keypoints_2d": kp, "confidence": rng.uniform(0, 1, (n, 17)).astype(np.float32),
              "depth": joints[..., 2] / 1000.0, "frame_index": np.arange(n) * 5,
              "bbox": np.tile([0.0, 0.0, 10.0, 10.0], (n, 1)).astype(np.float32), "joints_3d_cam": joints}
    return write_shard(root, key_for("handmade", subject, action, camera), arrays,
                       shard_attrs(subject, action, camera, kind))


def row_of(inputs: torch.Tensor) -> np.ndarray:
    """Decode the source row from x of joint 0 (codec 'xy' without box rescale: x / W * 2 - 1)."""
    return np.rint((inputs[..., 0, 0].numpy().astype(np.float64) + 1.0) * W / 2.0).astype(int)


@pytest.fixture
def plain_codec():
    return CueCodec(CodecConfig(channels="xy", box_rescale=False))


@pytest.fixture
def shards(tmp_path):
    for i, n in enumerate((37, 50, 64, 5)):
        make_shard(tmp_path, n, camera=f"cam{i}", seed=i)
    return resolve_shards(tmp_path)


def test_centre_windows_are_edge_padded(tmp_path, plain_codec):
    make_shard(tmp_path, 10)
    infos = resolve_shards(tmp_path)
    ds = WindowDataset(infos, plain_codec, WindowSpec(length=5, predicts="center", stride=1))
    items = list(ds)
    assert len(items) == 10
    expect = [np.clip(np.arange(c - 2, c + 3), 0, 9) for c in range(10)]
    for c, item in enumerate(items):
        assert item["inputs"].shape == (5, 17, 2)
        np.testing.assert_array_equal(row_of(item["inputs"]), expect[c])
        assert item["rows"].tolist() == [c] and item["frame_index"].tolist() == [5 * c]
    # the target is the centre frame's GT, root-relative, in metres
    with __import__("cache").open_shard(infos[0].path) as s:
        gt = s.read("joints_3d_cam")
    np.testing.assert_allclose(items[3]["target"][0].numpy(), (gt[3] - gt[3, :1]) / 1000.0, atol=1e-6)
    # training stride: centres every 3rd frame
    ds = WindowDataset(infos, plain_codec, WindowSpec(5, "center", stride=3))
    assert [int(it["rows"][0]) for it in ds] == [0, 3, 6, 9]


def test_seq2seq_chunks_cover_every_frame(tmp_path, plain_codec):
    make_shard(tmp_path, 23, camera="a")
    make_shard(tmp_path, 4, camera="b")
    infos = resolve_shards(tmp_path)
    spec = WindowSpec(length=8, predicts="all", stride=8, cover_all=True)
    items = list(WindowDataset(infos, plain_codec, spec))
    long = [it for it in items if it["shard"] == 0]
    assert [it["rows"][0].item() for it in long] == [0, 8, 15]  # last chunk shifted to end at 22
    for it in long:
        np.testing.assert_array_equal(row_of(it["inputs"]), it["rows"].numpy())
        assert it["valid"].all() and it["target"].shape == (8, 17, 3)
    short = [it for it in items if it["shard"] == 1]
    assert len(short) == 1
    np.testing.assert_array_equal(row_of(short[0]["inputs"]), [0, 1, 2, 3, 3, 3, 3, 3])
    assert short[0]["valid"].tolist() == [True] * 4 + [False] * 4


def test_shuffle_buffer_is_bounded_and_emits_each_item_once():
    rng = np.random.default_rng(0)
    buf = ShuffleBuffer(capacity=16, rng=rng)
    seen = []
    for start in range(0, 100, 7):
        block = {"x": np.arange(start, min(start + 7, 100))}
        for part in buf.push(block):
            seen += part["x"].tolist()
        assert buf.size <= 16 and len(buf.store["x"]) == 16
        assert len(seen) == min(start + 7, 100) - buf.size  # nothing lost, nothing duplicated
    for part in buf.drain():
        seen += part["x"].tolist()
    assert sorted(seen) == list(range(100))
    assert seen != list(range(100))


def test_shuffled_epoch_covers_all_windows_once(shards, plain_codec):
    ds = WindowDataset(shards, plain_codec, WindowSpec(3, "center", 1), shuffle=True, batch_size=16,
                       shuffle_buffer=32, open_shards=2, chunk_frames=8, seed=3)
    assert ds.buffer_capacity() == 32
    expected = Counter((s, r) for s, info in enumerate(shards) for r in range(info.n_frames))

    def epoch(e):
        ds.set_epoch(e)
        got = []
        for batch in ds:
            assert len(batch["inputs"]) <= 16
            got += list(zip(batch["shard"].tolist(), batch["rows"][:, 0].tolist()))
            # inputs still belong to their metadata after shuffling
            np.testing.assert_array_equal(row_of(batch["inputs"][:, 1]), batch["rows"][:, 0].numpy())
        return got

    e0, e0_again, e1 = epoch(0), epoch(0), epoch(1)
    assert Counter(e0) == expected and Counter(e1) == expected
    assert e0 == e0_again and e0 != e1
    assert e0 != sorted(e0)


def test_buffer_capacity_respects_memory_cap(shards, plain_codec):
    ds = WindowDataset(shards, plain_codec, WindowSpec(243, "all", 243), shuffle=True,
                       shuffle_buffer=10**6, max_buffer_mb=1.0)
    assert ds.buffer_capacity() * ds.window_bytes() <= 2**20 < (ds.buffer_capacity() + 1) * ds.window_bytes()


def test_worker_and_rank_splits_are_disjoint_and_complete(tmp_path, plain_codec):
    for i in range(7):
        make_shard(tmp_path, 6 + i, camera=f"c{i}", seed=i)
    infos = resolve_shards(tmp_path)
    for epoch in (0, 1):
        parts = []
        for rank in range(2):
            ds = WindowDataset(infos, plain_codec, WindowSpec(1), shuffle=True, rank=rank, world_size=2, seed=1)
            ds.set_epoch(epoch)
            parts += [ds.split_order(w, 3) for w in range(3)]
        flat = [i for p in parts for i in p]
        assert sorted(flat) == list(range(7))
    # and through a real multi-process DataLoader: every window exactly once
    ds = WindowDataset(infos, plain_codec, WindowSpec(1), shuffle=True, batch_size=4, seed=2)
    got = Counter()
    for batch in DataLoader(ds, batch_size=None, num_workers=2):
        got.update(zip(batch["shard"].tolist(), batch["rows"][:, 0].tolist()))
    assert got == Counter((s, r) for s, i in enumerate(infos) for r in range(i.n_frames))


def test_flip_swaps_sides_and_twice_is_identity(tmp_path):
    rng = np.random.default_rng(1)
    frames = {"keypoints_2d": rng.uniform(0, W, (4, 17, 2)).astype(np.float32),
              "confidence": rng.uniform(0, 1, (4, 17)).astype(np.float32),
              "depth": rng.uniform(2, 6, (4, 17)).astype(np.float32),
              "joints_3d_cam": rng.normal(0, 500, (4, 17, 3)).astype(np.float32)}
    once = flip_frames(frames, W)
    twice = flip_frames(once, W)
    for k in frames:  # exact up to float32 rounding of W - 1 - (W - 1 - x)
        np.testing.assert_allclose(twice[k], frames[k], rtol=0, atol=1e-4)
    for left, r in zip(H36M17_LEFT, H36M17_RIGHT):
        np.testing.assert_allclose(once["keypoints_2d"][:, left, 0], W - 1 - frames["keypoints_2d"][:, r, 0])
        np.testing.assert_array_equal(once["keypoints_2d"][:, left, 1], frames["keypoints_2d"][:, r, 1])
        np.testing.assert_array_equal(once["joints_3d_cam"][:, r, 0], -frames["joints_3d_cam"][:, left, 0])
        np.testing.assert_array_equal(once["depth"][:, left], frames["depth"][:, r])
    np.testing.assert_array_equal(once["confidence"][:, 0], frames["confidence"][:, 0])  # pelvis stays


def test_flipped_2d_matches_projection_of_flipped_3d():
    """With the principal point at the image centre, mirroring pixels == mirroring the 3D pose."""
    rng = np.random.default_rng(2)
    joints = rng.normal(0, 400, (6, 17, 3))
    joints[..., 2] += 5000.0
    f, c = np.array([1145.0, 1144.0]), np.array([(W - 1) / 2.0, 500.0])
    frames = {"keypoints_2d": project(joints, f, c).astype(np.float32), "joints_3d_cam": joints.astype(np.float32)}
    mirrored = flip_frames(frames, W)
    np.testing.assert_allclose(mirrored["keypoints_2d"], project(mirrored["joints_3d_cam"], f, c), atol=1e-2)


def test_dataset_flip_targets_match_inputs(shards):
    codec = fit_codec(shards, CodecConfig(channels="xycd"))
    spec = WindowSpec(1)
    plain = next(iter(WindowDataset(shards, codec, spec, batch_size=1000)))
    mirrored = next(iter(WindowDataset(shards, codec, spec, batch_size=1000, flip=1.0)))
    assert mirrored["flipped"].all() and not plain["flipped"].any()
    perm = np.arange(17)
    perm[list(H36M17_LEFT)], perm[list(H36M17_RIGHT)] = H36M17_RIGHT, H36M17_LEFT
    t0, t1 = plain["target"].numpy(), mirrored["target"].numpy()
    np.testing.assert_allclose(t1[..., 0], -t0[..., perm, 0], atol=1e-6)
    np.testing.assert_allclose(t1[..., 1:], t0[..., perm, 1:], atol=1e-6)
    # depth and confidence channels follow their joints
    np.testing.assert_allclose(mirrored["inputs"][..., 2:].numpy(), plain["inputs"][..., perm, 2:].numpy(), atol=1e-6)
    # mirrored x in screen units: x' = -x - 2/W before box rescaling; the box is flip-invariant
    sx = mirrored["inputs"][..., 0].numpy()
    assert np.all(np.abs(sx + plain["inputs"][..., perm, 0].numpy() + 2.0 / W) < 1e-4)


@pytest.mark.parametrize("spec", [WindowSpec(1), WindowSpec(9, "center", 2), WindowSpec(5, "all", 3, cover_all=True)])
def test_half_flipped_windows_equal_the_all_or_none_flipped_ones(shards, spec):
    """Each window of a flip=0.5 epoch (its subset of frames encoded apart) equals, bit for bit,
    the same window with flip 0 or 1 (the whole block encoded), as its `flipped` flag says."""
    codec = fit_codec(shards, CodecConfig(channels="xycd"))
    runs = [next(iter(WindowDataset(shards, codec, spec, batch_size=5000, flip=f, chunk_frames=64, seed=1)))
            for f in (0.0, 1.0, 0.5)]
    plain, mirrored, mixed = ({k: v.numpy() for k, v in r.items()} for r in runs)
    f = mixed["flipped"]
    assert 0 < f.sum() < len(f) and np.array_equal(mixed["rows"], plain["rows"])
    for k in ("inputs", "target"):
        expect = np.where(f.reshape(-1, *[1] * (plain[k].ndim - 1)), mirrored[k], plain[k])
        np.testing.assert_array_equal(mixed[k], expect)


def test_codec_fit_streamed_equals_in_memory(shards):
    streamed = fit_codec(shards, CodecConfig(channels="xy"), chunk_frames=7)
    from auglift.cache import open_shard

    data = [(open_shard(i.path).read("keypoints_2d"), np.array(i.image_size)) for i in shards]
    whole = CueCodec(CodecConfig(channels="xy")).fit([(np.concatenate([d for d, _ in data]), data[0][1])])
    assert streamed.mean_box == pytest.approx(whole.mean_box, rel=1e-9)


def test_target_is_root_relative_metres():
    j = np.array([[[1000.0, 2000.0, 5000.0], [1500.0, 2000.0, 4000.0]]])
    np.testing.assert_allclose(root_relative_metres(j), [[[0, 0, 0], [0.5, 0, -1.0]]])


def test_resolve_and_filters(tmp_path, plain_codec):
    make_shard(tmp_path, 5, subject="S1")
    make_shard(tmp_path, 5, subject="S9")
    assert [i.subject for i in resolve_shards(tmp_path, subjects=["S9"])] == ["S9"]
    assert len(resolve_shards(str(tmp_path / "**" / "*.zarr"))) == 2
    assert len(resolve_shards(tmp_path, pattern="handmade/S1/*")) == 1
    with pytest.raises(FileNotFoundError, match="nope"):
        resolve_shards(tmp_path / "nope")
    with pytest.raises(ValueError, match="S5"):
        resolve_shards(tmp_path, subjects=["S5"])


def test_missing_ground_truth_is_refused(tmp_path, plain_codec):
    arrays = {"keypoints_2d": np.zeros((3, 17, 2), np.float32), "confidence": np.ones((3, 17), np.float32),
              "depth": np.ones((3, 17), np.float32), "frame_index": np.arange(3),
              "bbox": np.zeros((3, 4), np.float32)}
    path = write_shard(tmp_path, key_for("handmade", "S1", "NoGT", "c"), arrays, shard_attrs(action="NoGT", camera="c"))
    infos = resolve_shards(tmp_path)
    with pytest.raises(ValueError, match=str(path.name)):
        WindowDataset(infos, plain_codec, WindowSpec(1))
    assert len(list(WindowDataset(infos, plain_codec, WindowSpec(1), with_target=False))) == 3
    with pytest.raises(ValueError, match="fit"):
        WindowDataset(infos, CueCodec(CodecConfig(channels="xy")), WindowSpec(1), with_target=False)


def test_the_loader_reads_the_ordinal_array_the_simulator_writes_for_any_bin():
    """One name per bin, also for a fractional one (a 2.5 mm bin once read `ordinal_2.5mm` while
    the simulator wrote `ordinal_2p5mm`, and the loader fell back to ground truth silently)."""
    from auglift.core.codec import CodecConfig, CueCodec
    from auglift.lifters.data import needed_arrays
    from auglift.pipeline.simulate import SimulateConfig
    from auglift.pipeline.simulate.sequence import shard_attrs

    for bin_mm in (2.5, 10.0, 100.0):
        written = shard_attrs(SimulateConfig(ordinal_bins_mm=(bin_mm,)), dataset="h36m", subject="S1",
                              action="A", camera="c", cam=_Cam(), image_size=(10, 10), fps=10, config_hash="x",
                              real_keypoints=False, virtual=False)["provenance"]
        codec = CueCodec(CodecConfig(channels="xyo", box_rescale=False, ordinal_bin=bin_mm))
        (name,) = [n for n in needed_arrays(codec, False, list(written)) if n.startswith("ordinal")]
        assert name in written


class _Cam:
    R = np.eye(3)
    T = np.zeros(3)

    def intrinsics(self):
        return None
