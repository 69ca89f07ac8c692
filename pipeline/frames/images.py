"""Image files (a folder or an explicit list) -> batches of RGB frames.

Decoded with Pillow, which refuses truncated files outright (OpenCV would return a half-grey
image with only a warning on stderr). EXIF orientation is not applied: dataset frames are
stored the way their annotations were made.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .base import FrameBatch, FrameSourceError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside `folder`, sorted by name (zero-padded names sort in time)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such image directory")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_image(path: str | Path, frame: int | None = None) -> np.ndarray:
    """One image as `(H, W, 3)` uint8 RGB; `FrameSourceError` naming the file if it is unreadable."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FrameSourceError(path, frame, "no such image file")
    try:
        with Image.open(path) as im:
            im.load()  # decode now, so a truncated file fails here and not later
            return np.asarray(im.convert("RGB"))
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError... depending on the codec
        raise FrameSourceError(path, frame, f"cannot decode image ({type(e).__name__}: {e})") from e


def iter_image_batches(paths: Sequence[str | Path], batch_size: int = 16,
                       frame_index: Sequence[int] | None = None) -> Iterator[FrameBatch]:
    """Yield `FrameBatch`es of the images in order; all images of a sequence must share one size."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not paths:
        raise ValueError("no image files given")
    index = np.arange(len(paths), dtype=np.int64) if frame_index is None else np.asarray(frame_index, np.int64)
    if len(index) != len(paths):
        raise ValueError(f"{len(paths)} images but {len(index)} frame indices")
    size = None
    for start in range(0, len(paths), batch_size):
        frames, files = [], []
        for p, f in zip(paths[start:start + batch_size], index[start:start + batch_size]):
            img = read_image(p, int(f))
            if size is None:
                size = img.shape
            elif img.shape != size:
                raise FrameSourceError(p, int(f), f"image is {img.shape[1]}x{img.shape[0]} but the sequence's "
                                                  f"first image is {size[1]}x{size[0]}")
            frames.append(img)
            files.append(str(p))
        yield FrameBatch(np.stack(frames), index[start:start + len(frames)].copy(), tuple(files))
