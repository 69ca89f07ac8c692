"""What every frame source yields, and one entry point over them.

A sequence's frames come either from a video file or from a list of image files. Both are read
in batches of `(n, H, W, 3)` uint8 RGB arrays with their frame indices, so that a long video is
never held in memory at once. Any decode problem raises `FrameSourceError` naming the file and
the frame, which precompute records in its report while the other sequences go on.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np


class FrameSourceError(RuntimeError):
    """A frame could not be read: names the file and, where known, the frame index."""

    def __init__(self, path: str | Path, frame: int | None, message: str):
        self.path = str(path)
        self.frame = frame
        self.message = message
        where = f"{self.path}" + (f", frame {frame}" if frame is not None else "")
        super().__init__(f"{where}: {message}")


@dataclass
class FrameBatch:
    frames: np.ndarray        # (n, H, W, 3) uint8 RGB
    frame_index: np.ndarray   # (n,) int64, index in the source stream
    files: tuple[str, ...]    # the file each frame came from (one video, or one image per frame)
    concealed: int = 0        # frames the decoder output with errors concealed (a damaged stream)

    def __len__(self) -> int:
        return len(self.frame_index)


@dataclass(frozen=True)
class FrameSpec:
    """Where a sequence's frames live, in a picklable form a worker can open.

    kind "video": `paths` is one video file; `frames` optionally selects frame indices (sorted).
    kind "images": `paths` lists one image per frame; `frames` gives their frame indices
    (default 0..n-1).
    """

    kind: str
    paths: tuple[str, ...]
    frames: tuple[int, ...] | None = None
    allow_short: bool = False   # video only: see video.iter_video_batches

    def __post_init__(self):
        if self.kind not in ("video", "images"):
            raise ValueError(f"FrameSpec.kind must be 'video' or 'images', got {self.kind!r}")
        if self.kind == "video" and len(self.paths) != 1:
            raise ValueError(f"a video FrameSpec takes exactly one path, got {len(self.paths)}")
        if self.kind == "images" and self.frames is not None and len(self.frames) != len(self.paths):
            raise ValueError(f"{len(self.paths)} images but {len(self.frames)} frame indices")

    @property
    def n_frames(self) -> int | None:
        """Frames the spec will yield, when known without decoding."""
        if self.frames is not None:
            return len(self.frames)
        return len(self.paths) if self.kind == "images" else None


def iter_frames(spec: FrameSpec, batch_size: int = 16, threads: int = 1,
                reuse_buffer: bool = False) -> Iterator[FrameBatch]:
    """Batches of the frames of `spec` (see `video.iter_video_batches`, `images.iter_image_batches`).
    `reuse_buffer` (videos): every batch comes in the same array; use a batch before the next."""
    if spec.kind == "video":
        from .video import iter_video_batches

        return iter_video_batches(spec.paths[0], batch_size=batch_size, frames=spec.frames, threads=threads,
                                  allow_short=spec.allow_short, reuse_buffer=reuse_buffer)
    from .images import iter_image_batches

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
