"""The two storage backends behind one small interface: Zarr v3 groups and HDF5 files.

Both keep the attribute dict as JSON under the name "auglift" (a Zarr group attribute holding the
dict; an HDF5 root attribute holding the JSON string, which sidesteps HDF5's attribute types).
zarr and h5py are imported here, lazily, so that importing `cache` stays cheap.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .schema import ATTR_KEY

# HDF5 gzip is readable by every HDF5 tool (lzf would need h5py); shuffle helps float columns.
# fletcher32 checksums every chunk as stored: HDF5 refuses to decode a chunk whose bytes changed.
H5_COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True, "fletcher32": True}


class ZarrWriter:
    suffix = ".zarr"

    def __init__(self, path: Path):
        import zarr

        self._group = zarr.open_group(store=str(path), mode="w-", zarr_format=3)
        self._arrays: dict[str, Any] = {}

    def create(self, name: str, dtype: np.dtype, tail: tuple, chunk_frames: int) -> None:
        from zarr.codecs import Crc32cCodec, ZstdCodec

        # zstd (zarr's default) compresses keypoint tracks well; crc32c over the compressed bytes
        # makes a chunk whose bytes changed fail to decode. Every chunk is written, even one that
        # equals the fill value, so that a missing chunk file is always damage (see chunk_counts).
        self._arrays[name] = self._group.create_array(
            name, shape=(0, *tail), chunks=(chunk_frames, *tail), dtype=dtype,
            compressors=[ZstdCodec(), Crc32cCodec()], config={"write_empty_chunks": True})

    def append(self, name: str, data: np.ndarray) -> None:
        self._arrays[name].append(data, axis=0)

    def set_attrs(self, attrs: dict) -> None:
        self._group.attrs[ATTR_KEY] = attrs

    def close(self) -> None:
        self._arrays.clear()


class H5Writer:
    suffix = ".h5"

    def __init__(self, path: Path):
        import h5py

        self._file = h5py.File(path, "w-")
        self._arrays: dict[str, Any] = {}

    def create(self, name: str, dtype: np.dtype, tail: tuple, chunk_frames: int) -> None:
        self._arrays[name] = self._file.create_dataset(
            name, shape=(0, *tail), maxshape=(None, *tail), chunks=(chunk_frames, *tail),
            dtype=dtype, **H5_COMPRESSION)

    def append(self, name: str, data: np.ndarray) -> None:
        ds = self._arrays[name]
        n = ds.shape[0]
        ds.resize(n + len(data), axis=0)
        ds[n:] = data

    def set_attrs(self, attrs: dict) -> None:
        self._file.attrs[ATTR_KEY] = json.dumps(attrs, allow_nan=False)

    def close(self) -> None:
        self._arrays.clear()
        if self._file.id.valid:
            self._file.close()


def _grid(shape: tuple[int, ...], chunks: tuple[int, ...]) -> list[range]:
    return [range(-(-int(n) // int(c))) for n, c in zip(shape, chunks)]


class ZarrReader:
    """Lazy access to a Zarr shard: slicing reads only the chunks it touches."""

    def __init__(self, path: Path):
        import zarr

        self._path = Path(path)
        self._group = zarr.open_group(store=str(path), mode="r", use_consolidated=False)
        # Every array's metadata in one concurrent pass: each sync zarr call is a round trip
        # through zarr's I/O thread (~1 ms), which dominated streaming small shards. If a member
        # is damaged, arrays open one by one instead, so that the error comes from that array.
        try:
            self._arrays: dict[str, Any] = dict(self._group.arrays())
            self._complete = True
        except Exception:
            self._arrays, self._complete = {}, False

    def attrs(self) -> Any:
        return self._group.attrs.asdict().get(ATTR_KEY)

    def names(self) -> list[str]:
        return sorted(self._arrays) if self._complete else sorted(self._group.array_keys())

    def _get(self, name: str):
        if name not in self._arrays:
            if self._complete:
                raise KeyError(f"no array {name!r} in the Zarr group")
            self._arrays[name] = self._group[name]
        return self._arrays[name]

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._get(name).shape)

    def dtype(self, name: str) -> np.dtype:
        return np.dtype(self._get(name).dtype)

    def chunk_counts(self, name: str) -> tuple[int, int, str | None]:
        """(chunks stored, chunks the shape needs, first missing chunk key or None).

        Zarr reads a missing chunk as the fill value, so presence is checked here, from one
        directory listing of the array.
        """

        meta = self._get(name).metadata
        encode = meta.chunk_key_encoding.encode_chunk_key
        base = os.path.join(self._path, name)
        # keys relative to the array's folder, "/"-separated (string slicing: this runs at every
        # shard open, and pathlib's per-file parsing cost more than the listing itself)
        stored = {f"{d[len(base) + 1:]}/{f}".replace(os.sep, "/").lstrip("/")
                  for d, _, fs in os.walk(base) for f in fs}
        expected = [encode(c) for c in itertools.product(*_grid(meta.shape, meta.chunk_grid.chunk_shape))]
        missing = [k for k in expected if k not in stored]
        return len(expected) - len(missing), len(expected), (missing[0] if missing else None)

    def checksummed(self, name: str) -> bool:
        """Whether the array's codec chain verifies a crc32c per chunk."""
        return any(getattr(c, "to_dict", lambda: {})().get("name") == "crc32c"
                   for c in self._get(name).metadata.codecs)

    def read(self, name: str, start: int, stop: int) -> np.ndarray:
        return np.asarray(self._get(name)[start:stop])

    def read_many(self, names: list[str], start: int, stop: int) -> dict[str, np.ndarray]:
        """Several arrays' rows in one trip through zarr's event loop (reads run concurrently)."""

        from zarr.core.sync import sync  # what zarr's own synchronous API runs its coroutines with

        arrays = [self._get(n).async_array for n in names]

        async def gather():
            return await asyncio.gather(*(a.getitem(slice(start, stop)) for a in arrays))

        return {n: np.asarray(v) for n, v in zip(names, sync(gather()))}

    def close(self) -> None:
        self._arrays.clear()


class H5Reader:
    """Lazy access to an HDF5 shard: dataset slicing reads only the chunks it touches."""

    def __init__(self, path: Path):
        import h5py

        self._file = h5py.File(path, "r")

    def attrs(self) -> Any:
        raw = self._file.attrs.get(ATTR_KEY)
        if raw is None:
            return None
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8")
        return json.loads(raw)

    def names(self) -> list[str]:
        import h5py

        return sorted(k for k, v in self._file.items() if isinstance(v, h5py.Dataset))

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._file[name].shape)

    def dtype(self, name: str) -> np.dtype:
        return np.dtype(self._file[name].dtype)

    def chunk_counts(self, name: str) -> tuple[int, int, str | None]:
        """(chunks allocated, chunks the shape needs, None): HDF5 reads an unallocated chunk as
        the fill value, so the count is checked (the writer allocates every chunk)."""
        ds = self._file[name]
        if ds.chunks is None:
            return 1, 1, None
        expected = int(np.prod([len(r) for r in _grid(ds.shape, ds.chunks)]))
        return int(ds.id.get_num_chunks()), expected, None

    def checksummed(self, name: str) -> bool:
        """Whether the dataset's filter pipeline verifies a fletcher32 checksum per chunk."""
        return bool(self._file[name].fletcher32)

    def read(self, name: str, start: int, stop: int) -> np.ndarray:
        return self._file[name][start:stop]

    def read_many(self, names: list[str], start: int, stop: int) -> dict[str, np.ndarray]:
        return {n: self.read(n, start, stop) for n in names}

    def close(self) -> None:
        if self._file.id.valid:
            self._file.close()


WRITERS = {"zarr": ZarrWriter, "hdf5": H5Writer}
READERS = {"zarr": ZarrReader, "hdf5": H5Reader}
