"""The per-process shard memo: later epochs read no file, batches do not depend on the budget, a
replaced shard is read again, a shard over the budget streams."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from auglift.cache import key_for, open_shard, write_shard
from auglift.core.codec import CodecConfig, CueCodec
from auglift.lifters import shard_memo
from auglift.lifters.data import WindowDataset, WindowSpec
from auglift.lifters.shards import resolve_shards
from auglift.lifters.shard_memo import MEMO

from test_data import make_shard, shard_attrs


@pytest.fixture(autouse=True)
def empty_memo():
    MEMO.clear()
    yield
    MEMO.clear()


@pytest.fixture
def opens(monkeypatch):
    """Counts the shard files the memo opens."""
    count = {"n": 0}
    real = shard_memo.open_shard

    def counting(path):
        count["n"] += 1
        return real(path)

    monkeypatch.setattr(shard_memo, "open_shard", counting)
    return count


def epoch_batches(infos, epoch: int, memo_mb: float, stride: int = 2) -> list[dict[str, torch.Tensor]]:
    ds = WindowDataset(infos, CueCodec(CodecConfig(channels="xycd", box_rescale=False)),
                       WindowSpec(3, "center", stride), shuffle=True, flip=0.5, batch_size=8, seed=4, memo_mb=memo_mb)
    ds.set_epoch(epoch)
    return list(ds)


def same(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(torch.equal(x[k], y[k]) for x, y in zip(a, b) for k in x)


def test_second_epoch_reads_no_file_and_batches_equal_streaming(tmp_path, opens):
    for i, n in enumerate((37, 50, 64)):
        make_shard(tmp_path, n, camera=f"cam{i}", seed=i)
    infos = resolve_shards(tmp_path)
    streamed = [epoch_batches(infos, e, memo_mb=0) for e in (0, 1)]
    assert opens["n"] == 6 and MEMO.nbytes == 0          # budget 0: every epoch opens every shard
    opens["n"] = 0
    memoised = [epoch_batches(infos, e, memo_mb=64) for e in (0, 1)]
    assert opens["n"] == 3                               # the first epoch only
    assert MEMO.nbytes > 0
    assert all(same(s, m) for s, m in zip(streamed, memoised))


def test_a_replaced_shard_is_read_again(tmp_path, opens):
    make_shard(tmp_path, 40, seed=0)
    infos = resolve_shards(tmp_path)
    before = epoch_batches(infos, 0, memo_mb=64)
    assert same(before, epoch_batches(infos, 0, memo_mb=64)) and opens["n"] == 1
    make_replacement(tmp_path)
    after = epoch_batches(resolve_shards(tmp_path), 0, memo_mb=64)
    assert opens["n"] == 2                                 # the new commit was opened ...
    assert not same(before, after)                         # ... and its values are the ones used
    assert same(after, epoch_batches(resolve_shards(tmp_path), 0, memo_mb=0))


def make_replacement(root):
    """Commit a shard with other values over the one `make_shard(root, 40, seed=0)` wrote."""
    rng = np.random.default_rng(9)
    n = 40
    arrays = {"keypoints_2d": rng.uniform(100, 900, (n, 17, 2)).astype(np.float32),
              "confidence": rng.uniform(0, 1, (n, 17)).astype(np.float32),
              "depth": rng.uniform(3, 5, (n, 17)).astype(np.float32), "frame_index": np.arange(n) * 5,
              "bbox": np.tile([0.0, 0.0, 10.0, 10.0], (n, 1)).astype(np.float32),
              "joints_3d_cam": (rng.normal(0, 300, (n, 17, 3)) + [0, 0, 4500]).astype(np.float32)}
    return write_shard(root, key_for("handmade", "S1", "Walking 1", "54138969"), arrays, shard_attrs(),
                       overwrite=True)


def test_a_shard_over_the_budget_streams(tmp_path, opens):
    make_shard(tmp_path, 300, seed=0)
    infos = resolve_shards(tmp_path)
    small = [epoch_batches(infos, e, memo_mb=0.001) for e in (0, 1)]   # 1 KiB: the shard does not fit
    assert opens["n"] == 2 and MEMO.nbytes == 0
    assert all(same(a, b) for a, b in zip(small, [epoch_batches(infos, e, memo_mb=0) for e in (0, 1)]))


def test_least_recently_used_shards_leave_first(tmp_path):
    for i in range(3):
        make_shard(tmp_path, 64, camera=f"cam{i}", seed=i)
    infos = resolve_shards(tmp_path)
    one = sum(a.nbytes for a in _arrays_of(infos[0]).values())
    epoch_batches(infos, 0, memo_mb=2.5 * one / 2**20)      # room for two shards
    assert len(MEMO.entries) == 2 and MEMO.nbytes <= 2.5 * one


def _arrays_of(info):
    with open_shard(info.path) as s:
        return s.read_all(["keypoints_2d", "confidence", "depth", "joints_3d_cam", "frame_index"])


def test_a_shard_deleted_after_it_was_memoised_fails_naming_it(tmp_path):
    path = make_shard(tmp_path, 40, seed=0)
    infos = resolve_shards(tmp_path)
    epoch_batches(infos, 0, memo_mb=64)
    shutil.rmtree(path)
    with pytest.raises(FileNotFoundError, match=f"{path}: no such shard"):
        epoch_batches(infos, 0, memo_mb=64)
