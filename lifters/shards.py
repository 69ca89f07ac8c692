"""Which shards a lifter reads, and the cue codec fitted on them.

`resolve_shards` turns cache roots, shard paths and globs into `ShardInfo`s (a shard's
description, read without its arrays), filtered by subject, dataset and key glob.
`check_depth_inputs` / `training_depth_family` refuse shard sets whose depth cannot feed one d
channel, before any work; `fit_codec` fits the codec's training-set statistics (mean box, depth
family) by streaming the shards. Each is memoised per process on what it is a pure function of.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from auglift.cache import depth_family, list_shards, open_shard
from auglift.cache.store import is_shard_path
from auglift.core.codec import CodecConfig, CueCodec

from .shard_memo import shard_token

_INFO_MEMO: dict[tuple, "ShardInfo"] = {}     # ShardInfo.read, per process
_CODEC_MEMO: dict[tuple, dict] = {}           # fit_codec's state dicts, per process


@dataclass(frozen=True)
class ShardInfo:
    """What the dataset needs to know about a shard without reading its arrays."""

    path: str
    key: str
    dataset: str
    subject: str
    action: str
    camera: str
    n_frames: int
    image_size: tuple[int, int]
    num_keypoints: int
    arrays: tuple[str, ...]
    config_hash: str
    depth_kind: str
    skeleton: str = ""

    @classmethod
    def read(cls, path: str | os.PathLike) -> "ShardInfo":
        """The shard's description, read once per process: memoised by (path, inode, mtime), since
        a committed shard is never changed in place (cache/FORMAT.md: a rewrite is a new file or
        directory renamed into place), so a replaced shard is read anew."""
        memo = shard_token(path)
        if memo not in _INFO_MEMO:
            _INFO_MEMO[memo] = cls._read(path)
        return _INFO_MEMO[memo]

    @classmethod
    def _read(cls, path: str | os.PathLike) -> "ShardInfo":
        with open_shard(path) as s:
            a = s.attrs
            return cls(str(s.path), s.key, str(a["dataset"]), str(a["subject"]), str(a["action"]),
                       str(a["camera"]), s.n_frames, tuple(int(v) for v in a["image_size"]),
                       s.n_keypoints, tuple(s.array_names), str(a.get("config_hash", "")),
                       str((a.get("depth_backend") or {}).get("kind", "")), str(a.get("skeleton", "")))


def resolve_shards(specs: str | os.PathLike | Sequence[str | os.PathLike], subjects: Sequence[str] | None = None,
                   datasets: Sequence[str] | None = None, pattern: str | None = None) -> list[ShardInfo]:
    """Shards named by cache roots, shard paths or globs, filtered by subject / dataset / key glob.

    Raises FileNotFoundError naming the spec when a spec matches nothing, and ValueError when the
    filters leave no shard.
    """
    if isinstance(specs, (str, os.PathLike)):
        specs = [specs]
    paths: list[Path] = []
    for spec in specs:
        spec = str(spec)
        if any(ch in spec for ch in "*?["):
            found = [Path(p) for p in sorted(glob.glob(spec, recursive=True)) if is_shard_path(Path(p))]
            if pattern is not None:
                found = [p for p in found if _key_matches(p, pattern)]
        else:
            if not Path(spec).exists():
                raise FileNotFoundError(f"{spec}: no such cache root or shard")
            found = list_shards(spec, pattern)
        if not found:
            raise FileNotFoundError(f"{spec}: no shards found" + (f" matching {pattern!r}" if pattern else ""))
        paths += found
    infos = [ShardInfo.read(p) for p in dict.fromkeys(p.resolve() for p in paths)]
    if subjects is not None:
        infos = [i for i in infos if i.subject in set(subjects)]
    if datasets is not None:
        infos = [i for i in infos if i.dataset in set(datasets)]
    if not infos:
        raise ValueError(f"no shard in {list(map(str, specs))} matches subjects={subjects} datasets={datasets}")
    return sorted(infos, key=lambda i: (i.key, i.path))


def check_depth_inputs(infos: Sequence[ShardInfo], channels: str) -> None:
    """Refuse, before any work, shards whose depth cannot feed one depth channel: a depth channel
    on shards without depth (kind "none"), or shards of several depth families (metric and relative
    depth in one channel would mean different things; simulated and real landmark z are one family).
    Channel sets without "d" are not checked."""
    if "d" not in channels:
        return
    none = [i for i in infos if i.depth_kind == "none"]
    if none:
        raise ValueError(f"{none[0].path}: channels {channels!r} need depth but this shard has none (depth kind "
                         f"'none'; {len(none)} of {len(infos)} shards); use a channel set without d or a cache "
                         f"with depth")
    first: dict[str, ShardInfo] = {}
    for i in infos:
        first.setdefault(depth_family(i.depth_kind or "none"), i)
    if len(first) > 1:
        examples = "; ".join(f"{i.path} is {i.depth_kind!r}" for _, i in sorted(first.items()))
        raise ValueError(f"shards mix depth families {sorted(first)} ({examples}); one depth channel must hold one "
                         f"family (cache.depth_family): train on caches of one kind")


def _key_matches(path: Path, pattern: str) -> bool:
    return fnmatch.fnmatchcase(ShardInfo.read(path).key, pattern)


def depth_families(shards: Sequence[ShardInfo]) -> list[str]:
    """The depth families (cache.depth_family) of `shards`, sorted; unknown kinds are an error."""
    return sorted({depth_family(i.depth_kind or "none") for i in shards})


def training_depth_family(shards: Sequence[ShardInfo], config: CodecConfig) -> str | None:
    """The one depth family a lifter with a d channel learns from `shards` (None without d).

    Refuses what `check_depth_inputs` refuses, and a `config.depth_kind` that the shards
    contradict, naming the kinds: each would make the d channel mean two things.
    """
    if "d" not in config.channels:
        return config.depth_kind
    check_depth_inputs(shards, config.channels)
    family = depth_families(shards)[0]
    if config.depth_kind is not None and config.depth_kind != family:
        raise ValueError(f"codec.depth_kind is {config.depth_kind!r} but the training shards are "
                         f"{family!r} depth (e.g. {shards[0].path})")
    return family


def fit_codec(shards: Sequence[ShardInfo], config: CodecConfig, chunk_frames: int = 8192) -> CueCodec:
    """The cue codec with its training-set statistics (mean box, depth family), streamed over `shards`.

    Memoised per process on (shards, config): the fit is a pure function of them, and studies
    train many lifters on one training set; each call gets its own codec (a copy)."""
    memo = (tuple(shards), repr(config), chunk_frames)
    if memo not in _CODEC_MEMO:
        _CODEC_MEMO[memo] = _fit_codec(shards, config, chunk_frames).state_dict()
    return CueCodec.from_state_dict(_CODEC_MEMO[memo])


def _fit_codec(shards: Sequence[ShardInfo], config: CodecConfig, chunk_frames: int) -> CueCodec:
    codec = CueCodec(dataclasses.replace(config, depth_kind=training_depth_family(shards, config)))
    if not config.box_rescale:
        return codec

    def batches():
        for info in shards:
            with open_shard(info.path) as s:
                for b in s.iter_batches(chunk_frames, ["keypoints_2d"]):
                    yield b["keypoints_2d"], np.asarray(info.image_size)

    return codec.fit(batches())
