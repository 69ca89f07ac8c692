"""Writing shards atomically, and finding them.

A writer streams batches into `<root>/.tmp/<key>.<uuid>.<ext>` (same filesystem as the final
location), hashing as it goes. Only on a clean exit does it write the attributes (checksums,
n_frames, complete=True), fsync, and rename the temporary into `<root>/<key>.<ext>`. A crash at
any point leaves the final path absent, so a shard is either complete and verifiable or missing.
"""
from __future__ import annotations

import datetime as _dt
import errno
import fnmatch
import hashlib
import importlib.metadata
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .backends import WRITERS
from .keys import BACKENDS, backend_of, key_for, key_from_path, normalise_backend, shard_path, validate_key
from .schema import (
    ATTRS_CHECKSUM,
    REQUIRED_ARRAYS,
    attr_problems,
    attrs_checksum,
    coerce_array,
    depth_is_none,
    expected_tail,
    policy_violations,
    prepare_attrs,
)
from .temps import replaced_shard_path, shard_temp_path

DEFAULT_CHUNK_FRAMES = 1024
MAX_CHUNK_BYTES = 4 << 20  # keeps chunks of wide optional arrays (e.g. heatmaps) reasonable


def _auglift_version() -> str:
    try:
        return importlib.metadata.version("auglift")
    except Exception:  # not installed (running from a bare checkout)
        return "unknown"


def _fsync_tree(path: Path) -> None:
    """Flush a file, or every file and directory of a tree, to stable storage before the rename."""
    paths = [path] if path.is_file() else [Path(d) / f for d, _, fs in os.walk(path) for f in fs]
    if path.is_dir():
        paths += [Path(d) for d, _, _ in os.walk(path)]
    for p in paths:
        _fsync(p)


def _fsync(path: Path) -> None:
    """Flush one file or directory entry (a directory: the renames in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


class ShardWriter:
    """Stream one sequence into a shard; commit atomically on a clean `with` exit.

    >>> with ShardWriter(root, key, attrs) as w:
    ...     for batch in batches:
    ...         w.append(keypoints_2d=..., confidence=..., depth=..., frame_index=..., bbox=...)

    The set of arrays is fixed by the first append. Each batch is checked against the NaN policy
    of FORMAT.md and refused with an error naming the shard, row and frame. At most about one
    chunk per array is buffered, never the whole sequence.
    """

    def __init__(self, root: str | os.PathLike, key: str, attrs: Mapping[str, Any],
                 backend: str = "zarr", overwrite: bool = False,
                 chunk_frames: int = DEFAULT_CHUNK_FRAMES):
        self.root = Path(root)
        self.key = validate_key(key)
        self.backend = normalise_backend(backend)
        self.overwrite = overwrite
        self.attrs = prepare_attrs(attrs)
        problems = attr_problems(self.attrs)
        if problems:
            raise ValueError(f"shard {key}: bad attributes:\n  " + "\n  ".join(problems))
        implied = key_for(*(self.attrs[p] for p in ("dataset", "subject", "action", "camera")))
        if implied != self.key:
            raise ValueError(f"shard key {key!r} does not match its attributes, which give {implied!r}")
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
        self.chunk_frames = int(chunk_frames)
        self.path = shard_path(self.root, self.key, self.backend)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path}: shard already exists (pass overwrite=True to replace it)")
        suffix = BACKENDS[self.backend]
        self.tmp_path = shard_temp_path(self.root, self.key, suffix)
        self._writer = None
        self._specs: dict[str, tuple[np.dtype, tuple, int]] = {}  # name -> dtype, tail, chunk
        self._hash: dict[str, Any] = {}
        self._buffer: dict[str, list[np.ndarray]] = {}
        self._n = 0
        self._last_frame: int | None = None
        self._depth_none = depth_is_none(self.attrs)
        self._closed = False

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self.abort()
            return False
        self.close()
        return False

    def __del__(self):  # a writer dropped without close/abort must not leave a temp behind
        try:
            if not self._closed:
                if self._writer is not None:
                    warnings.warn(f"ShardWriter for {self.key} was never closed; discarding its "
                                  f"{self._n} frames", ResourceWarning, stacklevel=1)
                self.abort()
        except Exception:
            pass

    @property
    def n_frames(self) -> int:
        """Rows appended so far."""
        return self._n

    @property
    def buffered_frames(self) -> int:
        """Rows held in memory, not yet written (fewer than one chunk after every append)."""
        return max((sum(len(p) for p in parts) for parts in self._buffer.values()), default=0)

    # -- writing ---------------------------------------------------------------------------
    def append(self, arrays: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        """Append one batch of frames; every array gets the same number of rows."""
        if self._closed:
            raise RuntimeError(f"shard {self.key}: writer is closed")
        batch = {**(arrays or {}), **kwargs}
        try:
            batch = self._check_batch(batch)
            if self._writer is None:
                self._start(batch)
            for name, data in batch.items():
                self._hash[name].update(memoryview(data).cast("B"))
            self._n += len(batch["frame_index"])
            if len(batch["frame_index"]):
                self._last_frame = int(batch["frame_index"][-1])
            self._flush(batch)
        except BaseException:
            self.abort()
            raise

    def _check_batch(self, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        where = f"shard {self.key}"
        if self._specs and set(batch) != set(self._specs):
            raise ValueError(f"{where}: append got arrays {sorted(batch)} but the first append fixed "
                             f"{sorted(self._specs)}")
        missing = [n for n in REQUIRED_ARRAYS if n not in batch]
        if missing:
            raise ValueError(f"{where}: missing required arrays {missing}")
        out = {}
        for name, data in batch.items():
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_]+", name):
                raise ValueError(f"{where}: array name {name!r} must match [A-Za-z0-9_]+")
            target = self._specs[name][0] if name in self._specs else None
            try:
                out[name] = coerce_array(name, data, target)
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
        n = len(out["frame_index"])
        if out["keypoints_2d"].ndim != 3 or out["keypoints_2d"].shape[2] != 2:
            raise ValueError(f"{where}: array 'keypoints_2d' must have shape (T, K, 2), "
                             f"got {out['keypoints_2d'].shape}")
        k = out["keypoints_2d"].shape[1]
        for name, arr in out.items():
            if len(arr) != n:
                raise ValueError(f"{where}: array '{name}' has {len(arr)} rows but frame_index has {n}")
            tail = arr.shape[1:]
            want = self._specs[name][1] if name in self._specs else expected_tail(name, k)
            if want is not None and tail != want:
                raise ValueError(f"{where}: array '{name}' must have shape (T, {', '.join(map(str, want))})"
                                 f" with K={k}, got {arr.shape}")
            if any(d < 1 for d in tail):
                raise ValueError(f"{where}: array '{name}' has an empty trailing axis {arr.shape}")
        bad = policy_violations(out, self._n, self._last_frame, self._depth_none)
        if bad:
            raise ValueError(f"{where}: " + "; ".join(v.message() for v in bad))
        return out

    def _start(self, batch: dict[str, np.ndarray]) -> None:
        self.tmp_path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = WRITERS[self.backend](self.tmp_path)
        self._writer.set_attrs({**self.attrs, "key": self.key, "complete": False})
        for name, arr in batch.items():
            row_bytes = max(1, arr.itemsize * int(np.prod(arr.shape[1:], dtype=np.int64)))
            chunk = max(1, min(self.chunk_frames, MAX_CHUNK_BYTES // row_bytes))
            self._specs[name] = (arr.dtype, arr.shape[1:], chunk)
            self._writer.create(name, arr.dtype, arr.shape[1:], chunk)
            self._hash[name] = hashlib.sha256()
            self._buffer[name] = []

    def _flush(self, new: Mapping[str, np.ndarray] | None = None, final: bool = False) -> None:
        """Write the whole chunks that buffer + `new` make (everything if final); buffer the rest.

        Writing whole chunks means no chunk is ever read back and rewritten. What stays buffered
        is copied (fewer than one chunk of rows), since the caller may reuse its batch arrays.
        """
        for name in self._specs:
            parts = self._buffer[name] + ([new[name]] if new is not None else [])
            rows = sum(len(p) for p in parts)
            chunk = self._specs[name][2]
            n_write = rows if final else (rows // chunk) * chunk
            if n_write == 0:
                if new is not None and len(new[name]):
                    self._buffer[name].append(new[name].copy())
                continue
            data = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
            self._writer.append(name, data[:n_write])
            self._buffer[name] = [data[n_write:].copy()] if n_write < rows else []

    def abort(self) -> None:
        """Discard everything written so far; the final path is left untouched."""
        self._closed = True
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:
                pass
            self._writer = None
        _remove(self.tmp_path)

    def close(self) -> Path:
        """Write the attributes and checksums, then rename the shard into place."""
        if self._closed:
            raise RuntimeError(f"shard {self.key}: writer is already closed")
        try:
            if self._writer is None or self._n == 0:
                raise ValueError(f"shard {self.key}: no frames were appended; refusing an empty shard")
            self._flush(final=True)
            final_attrs = {
                **self.attrs,
                "key": self.key,
                "n_frames": self._n,
                "arrays": {name: {"shape": [self._n, *tail], "dtype": str(dtype.newbyteorder("=")),
                                  "sha256": self._hash[name].hexdigest()}
                           for name, (dtype, tail, _) in self._specs.items()},
                "complete": True,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "auglift_version": _auglift_version(),
            }
            final_attrs[ATTRS_CHECKSUM] = attrs_checksum(final_attrs)
            self._writer.set_attrs(final_attrs)
            self._writer.close()
            _fsync_tree(self.tmp_path)
            self._commit()
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self._writer = None
        return self.path

    def _commit(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        old = None
        if self.path.exists() or self.path.is_symlink():
            if not self.overwrite:
                raise FileExistsError(f"{self.path}: shard already exists (pass overwrite=True to replace)")
            old = replaced_shard_path(self.tmp_path)
            os.rename(self.path, old)
        try:
            if self.backend == "hdf5" and old is None:
                os.link(self.tmp_path, self.path)  # fails if another writer got there first
                os.unlink(self.tmp_path)
            else:
                os.rename(self.tmp_path, self.path)
        except OSError as e:
            if old is not None:
                os.rename(old, self.path)
            if e.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise FileExistsError(f"{self.path}: shard appeared while writing (another writer?)") from e
            raise
        _fsync(self.path.parent)
        if old is not None:
            _remove(old)


def write_shard(root: str | os.PathLike, key: str, arrays: Mapping[str, Any], attrs: Mapping[str, Any],
                backend: str = "zarr", overwrite: bool = False,
                chunk_frames: int = DEFAULT_CHUNK_FRAMES) -> Path:
    """Write a whole sequence held in memory as one shard; returns its final path."""
    with ShardWriter(root, key, attrs, backend=backend, overwrite=overwrite, chunk_frames=chunk_frames) as w:
        w.append(arrays)
    return w.path


def is_shard_path(path: Path) -> bool:
    """Whether `path` looks like a committed shard (by suffix and kind, not by content)."""
    try:
        backend = backend_of(path)
    except ValueError:
        return False
    return path.is_dir() if backend == "zarr" else path.is_file()


def list_shards(root: str | os.PathLike, pattern: str | None = None) -> list[Path]:
    """Committed shards under `root` (recursive, sorted); `pattern` is a glob on the key.

    Hidden directories, and so `.tmp` with its interrupted writes, are never entered.
    """
    root = Path(root)
    if is_shard_path(root):
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such cache directory")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            if d.startswith("."):
                continue
            if d.endswith(BACKENDS["zarr"]):
                found.append(here / d)
            else:
                keep.append(d)
        dirnames[:] = keep
        found += [here / f for f in filenames if f.endswith(BACKENDS["hdf5"]) and not f.startswith(".")]
    if pattern is not None:
        found = [p for p in found if fnmatch.fnmatchcase(key_from_path(root, p), pattern)]
    return sorted(found)
