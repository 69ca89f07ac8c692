"""A short Python API for notebooks: cues for one image, lift videos to 3D, open a cache.

    import auglift
    cues = auglift.cues_for_image("frame.jpg")       # {"keypoints_2d": (17, 2) px, "confidence": (17,), ...}
    run = auglift.lift(["clip.mp4"], out="lifted")   # what `auglift lift` does; run.records[0]["npz"]
    cache = auglift.open_cache("runs/cache")         # {key: Shard}, each verified when first opened

`lift` is the code path of `auglift lift` (the command only parses its options and calls it), and
`cues_for_image` builds the same detector and depth backend as precompute, so a notebook sees what
the command line writes.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from auglift.cache import Shard, list_shards, open_shard
from auglift.cache.keys import key_from_path
from auglift.core.skeleton import H36M17_JOINTS
from auglift.lifters.shards import depth_families, resolve_shards
from auglift.lifters.lift import LiftOptions, default_checkpoint, lift_shards
from auglift.pipeline.depth import build_depth
from auglift.pipeline.detect import build_detector
from auglift.pipeline.frames import frames_of_source
from auglift.pipeline.frames.images import read_image
from auglift.pipeline.precompute import PrecomputeConfig, precompute_inputs


@dataclass(frozen=True)
class LiftRun:
    records: list[dict]   # one per lifted sequence: the contents of its lift.json
    failed: int           # sequences whose precompute failed (named in the log and the cache report)


def lift(inputs: Sequence[str | Path], out: str | Path, checkpoint: str | Path | None = None,
         model: str = "videopose3d", channels: str = "xycd", config: PrecomputeConfig | None = None,
         all_people: bool = False, render: bool = True, allow_depth_kind_mismatch: bool = False,
         progress: bool = False, log: Callable[[str], None] | None = print) -> LiftRun:
    """Video files, image folders or caches -> 3D poses under `out` (see lifters/lift.py).

    Videos and image folders go through precompute first (same graph, resumable; cues in
    `out/cache`); caches (a root or shards) are lifted as they are. Without `checkpoint`, the
    default lifter `make lifters` trained for `model`, `channels` and the cues' depth family.
    Raises ValueError when nothing could be precomputed.
    """
    out, inputs = Path(out), [Path(p) for p in inputs]
    caches = [p for p in inputs if p.is_dir() and list_shards(p)]
    cfg = config or PrecomputeConfig(workers=0)
    if all_people:
        cfg = dataclasses.replace(cfg, people="all")
    shard_paths, failed = precompute_inputs([p for p in inputs if p not in caches], out / "cache", cfg,
                                            progress=progress, log=log)
    if not caches and not shard_paths:
        raise ValueError("no sequence could be precomputed; nothing to lift")
    shards = resolve_shards([*caches, *shard_paths])
    if checkpoint is None:
        checkpoint = default_checkpoint(model, channels, depth_families(shards)[0])
    options = LiftOptions(Path(checkpoint), allow_depth_kind_mismatch=allow_depth_kind_mismatch, render=render)
    return LiftRun(lift_shards(shards, out, options, frames_for=frames_of_source, log=log), failed)


def cues_for_image(image: str | Path | np.ndarray, detector: str = "mediapipe", depth: str = "landmark-z",
                   detector_params: Mapping[str, Any] | None = None,
                   depth_params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One RGB image (a file, or an (H, W, 3) uint8 array) -> its person's H36M-17 cues.

    Returns keypoints_2d (17, 2) pixels, confidence (17,), depth (17,) of the backend's `depth_kind`,
    joints (names) and the backends' descriptions. No person: NaN keypoints and confidence 0.
    These are the raw cached cues; the codec of a lifter's checkpoint turns them into its input.
    """
    frame = read_image(image) if isinstance(image, (str, Path)) else np.asarray(image)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {frame.shape} {frame.dtype}")
    det = build_detector(detector, **dict(detector_params or {}))
    dep = build_depth(depth, **dict(depth_params or {}))
    try:
        found = det(frame[None])
        cue = dep(frame[None], found)
    finally:
        det.close()
        dep.close()
    return {"keypoints_2d": found.keypoints[0], "confidence": found.confidence[0], "depth": cue.depth[0],
            "depth_kind": dep.kind, "joints": list(H36M17_JOINTS), "detector": det.describe(),
            "depth_backend": dep.describe()}


class CacheView(Mapping[str, Shard]):
    """The shards under a cache root by key, each opened (and checked, cache/FORMAT.md) on first use."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: no such cache directory")
        self._paths = {key_from_path(self.root, p): p for p in list_shards(self.root)}
        self._open: dict[str, Shard] = {}

    def __getitem__(self, key: str) -> Shard:
        if key not in self._open:
            self._open[key] = open_shard(self._paths[key])
        return self._open[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def __repr__(self) -> str:
        return f"CacheView({str(self.root)!r}, {len(self)} shards)"


def open_cache(root: str | Path) -> CacheView:
    """The cache under `root` as a read-only mapping {key: Shard}; nothing is read until asked."""
    return CacheView(root)
