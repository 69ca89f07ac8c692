"""A per-process memo of shard arrays already read and checked, so that later epochs, and later
trainings or evaluations in the same process, read no file.

Why: on a study's small lifters the step is cheap and the time goes into opening shards (Zarr
groups, attributes and per-chunk checksums) and reading them, once per shard per epoch. The memo
keeps what an open `Shard` returned — bytes whose attributes, shapes and chunk checksums were
checked on that read — so nothing enters training or scoring unchecked. A shard replaced on disk
(a new commit is a new directory or file: another inode or mtime) is read again.

Bounded: at most `budget_mb` MiB per process, least recently used shards leave first; a shard
larger than the budget is streamed block by block as before. Values are the same either way, so
batches and trained weights do not depend on the budget. DataLoader worker processes start with
an empty memo every epoch, so it helps when `num_workers` is 0 (the studies' setting).
"""
from __future__ import annotations

import os
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from auglift.cache import open_shard

DEFAULT_BUDGET_MB = 1024.0


def shard_token(path: str | os.PathLike) -> tuple:
    """What changes when a shard is replaced: a committed shard is never changed in place
    (cache/FORMAT.md: a rewrite is a new file or directory renamed into place, a new inode); a
    Zarr group's attributes live in its zarr.json, not in the directory entry, so its mtime too."""
    st = os.stat(path)
    meta = Path(path) / "zarr.json"
    return os.path.abspath(path), st.st_ino, st.st_mtime_ns, meta.stat().st_mtime_ns if meta.exists() else None


class _InMemory:
    """Read access to memoised arrays, shaped like `Shard.read_all` (fresh arrays each call)."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays

    def read_all(self, names: Sequence[str], lo: int, hi: int) -> dict[str, np.ndarray]:
        return {n: self.arrays[n][lo:hi].copy() for n in names}


class ShardMemo:
    """{shard path: (token, {array name: array})}, least recently used first."""

    def __init__(self) -> None:
        self.entries: OrderedDict[str, tuple[tuple, dict[str, np.ndarray]]] = OrderedDict()
        self.nbytes = 0

    def clear(self) -> None:
        self.entries.clear()
        self.nbytes = 0

    def _lookup(self, path: str, names: Sequence[str]) -> dict[str, np.ndarray] | None:
        entry = self.entries.get(path)
        if entry is None:
            return None
        token, arrays = entry
        try:
            now = shard_token(path)
        except OSError:   # gone: open_shard below names the file and the problem
            now = None
        if token != now or any(n not in arrays for n in names):
            self._drop(path)   # replaced on disk, or read for another codec: read again
            return None
        self.entries.move_to_end(path)
        return arrays

    def _drop(self, path: str) -> None:
        _, arrays = self.entries.pop(path)
        self.nbytes -= sum(a.nbytes for a in arrays.values())

    def _store(self, path: str, token: tuple, arrays: dict[str, np.ndarray], budget: int) -> None:
        size = sum(a.nbytes for a in arrays.values())
        while self.entries and self.nbytes + size > budget:
            self._drop(next(iter(self.entries)))
        self.entries[path] = (token, arrays)
        self.nbytes += size

    @contextmanager
    def source(self, path: str, names: Sequence[str], budget_mb: float) -> Iterator[object]:
        """Something with `read_all(names, lo, hi)` for shard `path`: the memo when it holds the
        shard's `names`, else the open shard — read whole into the memo first when it fits."""
        budget = int(budget_mb * 2**20)
        arrays = self._lookup(path, names) if budget > 0 else None
        if arrays is not None:
            yield _InMemory(arrays)
            return
        with open_shard(path) as shard:   # first: a missing or damaged shard fails here, named
            token = shard_token(path) if budget > 0 else None
            size = sum(int(np.prod(shard.shape(n))) * shard.dtype(n).itemsize for n in names)
            if token is None or size > budget:
                yield shard
                return
            arrays = shard.read_all(list(names), 0, shard.n_frames)
        self._store(path, token, arrays, budget)
        yield _InMemory(arrays)


MEMO = ShardMemo()   # this process's
