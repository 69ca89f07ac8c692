"""Frame readers: videos and image files, read in batches, and one entry point over them.

A sequence's frames come either from a video file or from a list of image files. Both are read
in batches of `(n, H, W, 3)` uint8 RGB arrays with their frame indices, so that a long video is
never held in memory at once. Any decode problem raises `FrameSourceError` naming the file and
the frame, which precompute records in its report while the other sequences go on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from .base import FrameBatch, FrameSourceError, FrameSpec
from .images import iter_image_batches
from .video import iter_video_batches


def iter_frames(spec: FrameSpec, batch_size: int = 16, threads: int = 1,
                reuse_buffer: bool = False) -> Iterator[FrameBatch]:
    """Batches of the frames of `spec` (see `video.iter_video_batches`, `images.iter_image_batches`).
    `reuse_buffer` (videos): every batch comes in the same array; use a batch before the next."""
    if spec.kind == "video":
        return iter_video_batches(spec.paths[0], batch_size=batch_size, frames=spec.frames, threads=threads,
                                  allow_short=spec.allow_short, reuse_buffer=reuse_buffer)
    return iter_image_batches(spec.paths, batch_size=batch_size, frame_index=spec.frames)



def source_attr(spec: FrameSpec) -> dict:
    """The shard attribute `source`: where the frames were read from (absolute paths), so that
    tools like `auglift lift` can show them again."""
    return {"kind": spec.kind, "paths": [str(Path(p).resolve()) for p in spec.paths],
            "frames": None if spec.frames is None else [int(f) for f in spec.frames]}


def frames_of_source(source: dict | None, frame_index) -> Iterator[np.ndarray] | None:
    """RGB frames `(H, W, 3)` of a shard's `source` attribute at `frame_index`, one per shard row;
    None when the shard has no such attribute or a file is gone."""
    if not source or not all(Path(p).is_file() for p in source.get("paths", ())):
        return None
    wanted = [int(f) for f in np.asarray(frame_index)]
    if source["kind"] == "video":
        spec = FrameSpec("video", tuple(source["paths"]), tuple(wanted), allow_short=True)
    else:
        frames = source.get("frames")
        spec = FrameSpec("images", tuple(source["paths"]), None if frames is None else tuple(frames))

    def frames_at() -> Iterator[np.ndarray]:
        keep = set(wanted)
        for batch in iter_frames(spec):
            for frame, index in zip(batch.frames, batch.frame_index):
                if int(index) in keep:
                    yield frame

    return frames_at()


__all__ = ["FrameBatch", "FrameSourceError", "FrameSpec", "frames_of_source", "iter_frames", "source_attr"]
