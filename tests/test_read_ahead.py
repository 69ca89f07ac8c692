"""Reading training batches ahead in a thread: same batches and random draws, errors where they
happened, no reader left behind."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from auglift.core.codec import CodecConfig, CueCodec
from auglift.lifters.data import WindowDataset, WindowSpec
from auglift.lifters.read_ahead import read_ahead
from auglift.lifters.shards import resolve_shards

from test_data import make_shard


def readers_alive() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "auglift-read-ahead"]


@pytest.fixture
def loader(tmp_path):
    for i, n in enumerate((40, 57, 64)):
        make_shard(tmp_path, n, camera=f"cam{i}", seed=i)
    codec = CueCodec(CodecConfig(channels="xy", box_rescale=False))
    ds = WindowDataset(resolve_shards(tmp_path), codec, WindowSpec(3, "center", 1), shuffle=True, flip=0.5,
                       batch_size=16, shuffle_buffer=32, open_shards=2, chunk_frames=8, seed=5)
    ds.set_epoch(1)
    return DataLoader(ds, batch_size=None, num_workers=0)


def test_read_ahead_gives_the_loaders_batches_and_random_draws(loader):
    torch.manual_seed(3)
    direct = list(loader)
    rng_direct = torch.get_rng_state()
    torch.manual_seed(3)
    with read_ahead(loader, depth=2) as batches:
        ahead = list(batches)
    assert torch.equal(torch.get_rng_state(), rng_direct)   # the loader's iterator drew the same
    assert len(ahead) == len(direct) > 5
    for a, d in zip(ahead, direct):
        assert a.keys() == d.keys()
        for k in a:
            assert torch.equal(torch.as_tensor(a[k]), torch.as_tensor(d[k])), k
    assert not readers_alive()


def test_a_readers_error_is_raised_at_its_batch_and_the_reader_is_gone():
    def damaged():
        yield from range(3)
        raise ValueError("shard S1.Walking.cam0: checksum of keypoints_2d differs")

    got = []
    with pytest.raises(ValueError, match="checksum of keypoints_2d differs"):
        with read_ahead(damaged(), depth=4) as batches:
            for item in batches:
                got.append(item)
    assert got == [0, 1, 2]
    assert not readers_alive()


def test_leaving_early_stops_the_reader_within_its_depth():
    read = []

    def endless():
        i = 0
        while True:
            read.append(i)
            yield np.full(4, i)
            i += 1

    with read_ahead(endless(), depth=2) as batches:
        first = next(batches)
    assert first[0] == 0
    assert not readers_alive()
    # the reader stopped: at most the batch taken, the queue's 2 and the one it held when stopped
    assert len(read) <= 4


def test_setup_runs_in_the_reader_thread_before_the_first_read():
    events = []

    def source():
        events.append(("read", threading.current_thread().name))
        yield 1

    with read_ahead(source(), depth=1, setup=lambda: events.append(("setup", threading.current_thread().name))) as it:
        assert list(it) == [1]
    assert events == [("setup", "auglift-read-ahead"), ("read", "auglift-read-ahead")]
