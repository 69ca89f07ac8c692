"""Training batches read ahead in a thread of the training process, while the current step computes.

With `num_workers: 0` (train's default) the shard reads, the codec and the flips ran between the
optimiser steps, on the training process's critical path (results/benchmarks.md, bench_train).
A reader thread overlaps them with the step: torch's kernels release the GIL,
so the reader runs on another core, and it shares the process's shard memo (lifters/shard_memo.py),
which loader worker processes start empty every epoch.

Contract: the batches, their order and every random draw are those of iterating the loader
directly; the reader's exceptions (a damaged shard) are raised in the consumer at the batch
where they happened; on leaving the block the reader is stopped and joined, so nothing reads
shards after it (validation reads them next) and no thread outlives a run.
"""
from __future__ import annotations

import contextlib
import queue
import threading
from typing import Any, Callable, Iterable, Iterator

_END = object()


@contextlib.contextmanager
def read_ahead(loader: Iterable, depth: int, setup: Callable[[], None] | None = None) -> Iterator[Iterator[Any]]:
    """`loader`'s items, read up to `depth` ahead by a background thread (see the module docstring).

    `setup` runs first in the reader thread: the CUDA device is per thread, and a loader that pins
    batches must pin them for the training process's GPU, not for cuda:0."""
    # The iterator is made here, in the calling thread: creating a DataLoader's iterator draws
    # from torch's global RNG, which the training thread draws from too (dropout).
    source = iter(loader)
    ready: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            if setup is not None:
                setup()
            for item in source:
                if not put(item):
                    return
            put(_END)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, who raises it
            put(e)

    thread = threading.Thread(target=reader, name="auglift-read-ahead", daemon=True)
    thread.start()

    def items() -> Iterator[Any]:
        while True:
            item = ready.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    try:
        yield items()
    finally:
        stop.set()
        while thread.is_alive():   # empty the queue so a reader blocked in put() sees `stop`
            with contextlib.suppress(queue.Empty):
                ready.get_nowait()
            thread.join(0.05)
