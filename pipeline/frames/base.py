"""The types every frame reader shares: the batch it yields, where a sequence's frames live, and
the error naming the file and frame that could not be read."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
