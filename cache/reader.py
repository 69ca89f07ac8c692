"""Reading shards lazily: slices, batches and edge-padded windows, never the whole sequence."""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .backends import READERS
from .keys import backend_of
from .schema import ATTRS_CHECKSUM, REQUIRED_ARRAYS, attrs_checksum, version_problem


class ShardError(ValueError):
    """A path that is not a readable, complete auglift shard. The message names the path."""


def open_raw(path: Path):
    """Backend reader for `path`, with backend failures turned into a ShardError naming the file."""
    backend = backend_of(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such shard")
    try:
        return READERS[backend](path)
    except Exception as e:
        what = "truncated or corrupt HDF5 file" if backend == "hdf5" else "not a readable Zarr group"
        raise ShardError(f"{path}: {what} ({type(e).__name__}: {e})") from e


def load_attrs(path: Path, reader) -> dict:
    try:
        attrs = reader.attrs()
    except Exception as e:
        raise ShardError(f"{path}: unreadable 'auglift' attributes ({type(e).__name__}: {e})") from e
    if not isinstance(attrs, dict):
        raise ShardError(f"{path}: no 'auglift' attributes; not an auglift shard")
    return attrs


def attrs_problem(attrs: dict) -> str | None:
    """Why the attributes cannot be trusted (checksum absent or not matching), or None."""
    want = attrs.get(ATTRS_CHECKSUM)
    if not isinstance(want, str):
        return f"attribute '{ATTRS_CHECKSUM}' is missing: the attributes are not checksummed"
    try:
        got = attrs_checksum(attrs)
    except (TypeError, ValueError) as e:
        return f"attributes are not canonical JSON ({e})"
    if got != want:
        return f"attributes were modified after the shard was written ({ATTRS_CHECKSUM} does not match)"
    return None


def storage_problems(reader, name: str) -> list[str]:
    """Per-chunk checksums configured, and every chunk the shape needs stored (a missing chunk
    would read as the fill value)."""
    try:
        out = [] if reader.checksummed(name) else [
            f"array '{name}' has no per-chunk checksum (crc32c / fletcher32) in its storage"]
        stored, expected, first = reader.chunk_counts(name)
    except Exception as e:
        return [f"array '{name}': cannot inspect its chunks ({type(e).__name__}: {e})"]
    if stored < expected:
        out.append(f"array '{name}' is missing {expected - stored} of its {expected} chunks"
                   + (f", e.g. {first}" if first else ""))
    return out


def edge_rows(starts, length: int, n: int) -> np.ndarray:
    """The rows of windows `start .. start+length-1` of an n-frame sequence, rows outside it
    replaced by the first/last frame (edge padding): `(len(starts), length)` int64, or
    `(length,)` for a scalar start. The one windowing rule of readers and trainers."""
    starts = np.asarray(starts, np.int64)
    return np.clip(starts[..., None] + np.arange(length), 0, n - 1)


def array_problem(reader, name: str, info: Any, n_frames: int) -> str | None:
    """The first problem of one recorded array that can be seen without reading its data:
    recorded shape vs n_frames, on-disk shape vs recorded, then `storage_problems`."""
    shape = info.get("shape") if isinstance(info, dict) else None
    if not isinstance(shape, list) or not shape or shape[0] != n_frames:
        return f"array '{name}' is recorded with shape {shape} but n_frames is {n_frames}"
    try:
        on_disk = list(reader.shape(name))
    except Exception as e:
        return f"array '{name}' cannot be opened ({type(e).__name__}: {e})"
    if on_disk != shape:
        return f"array '{name}' has shape {tuple(on_disk)} but the attributes record {shape} (truncated or modified)"
    return next(iter(storage_problems(reader, name)), None)


class Shard:
    """One committed shard. Arrays are read on demand; use as a context manager or call close().

    A Shard can be pickled (e.g. into DataLoader or Dask workers): the copy reopens the file in
    the process that uses it.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self.backend = backend_of(self.path)
        except ValueError as e:
            raise ShardError(str(e)) from None
        self._reader = None
        self._pid = None
        try:
            self.attrs: dict[str, Any] = self._check(self._handle())
        except BaseException:
            self.close()
            raise
        self.n_frames: int = self.attrs["n_frames"]

    def _check(self, reader) -> dict:
        attrs = load_attrs(self.path, reader)
        if version_problem(attrs.get("format_version")):
            raise ShardError(f"{self.path}: {version_problem(attrs.get('format_version'))}")
        if attrs.get("complete") is not True:
            raise ShardError(f"{self.path}: incomplete shard (attribute 'complete' is not true)")
        recorded = attrs.get("arrays")
        if not isinstance(recorded, dict) or not isinstance(attrs.get("n_frames"), int):
            raise ShardError(f"{self.path}: corrupt attributes (no 'arrays' table or 'n_frames')")
        missing = [n for n in REQUIRED_ARRAYS if n not in recorded]
        if missing:
            raise ShardError(f"{self.path}: required arrays {missing} are missing")
        try:
            on_disk = set(reader.names())
        except Exception as e:
            raise ShardError(f"{self.path}: cannot list its arrays ({type(e).__name__}: {e})") from e
        for name, info in recorded.items():
            if name not in on_disk:
                raise ShardError(f"{self.path}: array '{name}' listed in attributes is missing")
            problem = array_problem(reader, name, info, attrs["n_frames"])
            if problem:
                raise ShardError(f"{self.path}: {problem}")
        problem = attrs_problem(attrs)  # after the shape checks, whose messages say more
        if problem:
            raise ShardError(f"{self.path}: {problem}")
        return attrs

    # -- handle management -----------------------------------------------------------------
    def _handle(self):
        if self._reader is None or self._pid != os.getpid():
            self._reader = open_raw(self.path)
            self._pid = os.getpid()
        return self._reader

    def close(self) -> None:
        if self._reader is not None and self._pid == os.getpid():
            self._reader.close()
        self._reader = None

    def __enter__(self) -> "Shard":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_reader"] = None
        state["_pid"] = None
        return state

    def __len__(self) -> int:
        return self.n_frames

    def __repr__(self) -> str:
        return f"Shard({str(self.path)!r}, key={self.key!r}, n_frames={self.n_frames})"

    # -- metadata ----------------------------------------------------------------------------
    @property
    def key(self) -> str:
        return self.attrs["key"]

    @property
    def array_names(self) -> list[str]:
        return list(self.attrs["arrays"])

    @property
    def n_keypoints(self) -> int:
        return int(self.attrs["arrays"]["keypoints_2d"]["shape"][1])

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._info(name)["shape"])

    def dtype(self, name: str) -> np.dtype:
        return np.dtype(self._info(name)["dtype"])

    def _info(self, name: str) -> dict:
        try:
            return self.attrs["arrays"][name]
        except KeyError:
            raise KeyError(f"{self.path}: no array '{name}' (has {self.array_names})") from None

    # -- data ------------------------------------------------------------------------------
    def read(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows [start, stop) of one array (Python slice semantics, negatives allowed)."""
        return self.read_all([name], start, stop)[name]

    def read_all(self, names: Sequence[str] | None = None, start: int = 0,
                 stop: int | None = None) -> dict[str, np.ndarray]:
        """Rows [start, stop) of several arrays (all by default), fetched together."""
        names = list(dict.fromkeys(names or self.array_names))
        for n in names:
            self._info(n)
        start, stop, _ = slice(start, stop).indices(self.n_frames)
        stop = max(start, stop)
        try:
            return self._handle().read_many(names, start, stop)
        except Exception as e:
            name, err = names[0], e
            for n in names:  # read them one by one to name the array that is damaged
                try:
                    self._handle().read(n, start, stop)
                except Exception as e1:
                    name, err = n, e1
                    break
            raise ShardError(f"{self.path}: reading '{name}' rows {start}:{stop} failed "
                             f"({type(err).__name__}: {err})") from e

    def iter_batches(self, batch_size: int,
                     names: Sequence[str] | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Consecutive batches of up to `batch_size` rows; only one batch is in memory at a time."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        names = list(names or self.array_names)
        for n in names:
            self._info(n)
        for start in range(0, self.n_frames, batch_size):
            yield self.read_all(names, start, start + batch_size)

    def window(self, start: int, length: int, names: Sequence[str] | None = None,
               pad: str | None = "edge") -> dict[str, np.ndarray]:
        """Rows start .. start+length-1; rows outside the sequence repeat the first/last frame.

        `start` may be negative and the window may run past the end (pad="edge"); with
        pad=None such a window raises IndexError. Only the rows inside the sequence are read.
        """
        if length < 1:
            raise ValueError(f"window length must be >= 1, got {length}")
        if pad not in ("edge", None):
            raise ValueError(f"pad must be 'edge' or None, got {pad!r}")
        t = self.n_frames
        if pad is None and (start < 0 or start + length > t):
            raise IndexError(f"{self.path}: window [{start}, {start + length}) is outside 0..{t}")
        lo = min(max(start, 0), t - 1)
        hi = min(max(start + length - 1, 0), t - 1)
        idx = edge_rows(start, length, t) - lo
        rows = self.read_all(names, lo, hi + 1)
        if start >= 0 and start + length <= t:
            return rows
        return {name: r[idx] for name, r in rows.items()}

    def copy_attrs(self) -> dict:
        """A deep copy of the attributes, safe to modify (e.g. to write a derived shard)."""
        return copy.deepcopy(self.attrs)


def open_shard(path: str | os.PathLike) -> Shard:
    """Open a committed shard (backend from the suffix).

    Raises FileNotFoundError if absent and ShardError (naming the path) if it is not an auglift
    shard, is incomplete, or its arrays do not match the recorded shapes. Checksums are not
    recomputed here; that is `verify_shard`'s job.
    """
    return Shard(path)
