"""Video files -> batches of RGB frames, decoded with PyAV (FFmpeg), streamed.

Only one batch of frames is alive at a time. A file that cannot be opened, a packet that does
not decode, or a stream that ends before the frame count in its header raises
`FrameSourceError` naming the file and the frame, never a silent short sequence. Frames that
FFmpeg decodes with errors concealed (a damaged H.264 stream) are kept, and counted in
`FrameBatch.concealed` so that the run report says which sequences had them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .base import FrameBatch, FrameSourceError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int
    height: int
    fps: float | None
    n_frames: int | None    # from the container header; None when the header does not say


def _open(path: str | Path):
    import av

    path = Path(path)
    if not path.is_file():
        raise FrameSourceError(path, None, "no such video file")
    try:
        container = av.open(str(path))
    except Exception as e:  # av.error.* subclasses differ between PyAV versions
        raise FrameSourceError(path, None, f"cannot open video ({type(e).__name__}: {e})") from e
    if not container.streams.video:
        container.close()
        raise FrameSourceError(path, None, "file has no video stream")
    return container, container.streams.video[0]


def _plane(plane, width: int) -> np.ndarray:
    """A decoded plane as an (h, width) view of FFmpeg's buffer, row padding dropped (no copy)."""
    return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, :width]


def _to_rgb(frame, out: np.ndarray, i420: np.ndarray | None) -> np.ndarray | None:
    """Decoded frame -> `out` (H, W, 3) uint8 RGB, written in place; returns the I420 scratch
    buffer to pass to the next call.

    The common case (limited-range yuv420p, even size) goes through OpenCV's SIMD I420
    conversion, about twice as fast as FFmpeg's swscale here (same BT.601 matrix; values
    differ by rounding only, at most a few levels); anything else goes through swscale.
    The planes are gathered into one reused buffer rather than `frame.to_ndarray()`, which
    allocates a new array per frame: under Dask's worker default MALLOC_TRIM_THRESHOLD_ every
    such allocation is fresh pages from the kernel, which made decoding ~30 % dearer.
    """
    h, w = frame.height, frame.width
    if frame.format.name != "yuv420p" or w % 2 or h % 2:
        out[...] = frame.to_ndarray(format="rgb24")
        return i420
    import cv2

    if i420 is None or i420.shape != (h * 3 // 2, w):
        i420 = np.empty((h * 3 // 2, w), np.uint8)
    y, u, v = frame.planes
    quarter = (h // 2) * (w // 2)
    chroma = i420[h:].reshape(-1)
    i420[:h] = _plane(y, w)
    chroma[:quarter].reshape(h // 2, w // 2)[:] = _plane(u, w // 2)
    chroma[quarter:].reshape(h // 2, w // 2)[:] = _plane(v, w // 2)
    cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420, dst=out)
    return i420


def probe_video(path: str | Path) -> VideoInfo:
    """Size, frame rate and header frame count, without decoding."""
    container, stream = _open(path)
    try:
        rate = stream.average_rate or stream.guessed_rate
        return VideoInfo(str(path), int(stream.codec_context.width), int(stream.codec_context.height),
                         float(rate) if rate else None, int(stream.frames) or None)
    finally:
        container.close()


def list_videos(folder: str | Path) -> list[Path]:
    """Video files directly inside `folder`, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such video directory")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def iter_video_batches(path: str | Path, batch_size: int = 16, frames: Sequence[int] | None = None,
                       threads: int = 1, allow_short: bool = False, reuse_buffer: bool = False
                       ) -> Iterator[FrameBatch]:
    """Yield `FrameBatch`es of the video's frames in order (all of them, or the sorted `frames`).

    `threads` is FFmpeg's decoder thread count (1 keeps decoding off the model's core).
    `allow_short`: when `frames` asks for frames past the end of the video, stop quietly at the
    end instead of raising (for annotations a few frames longer than their video, as in some
    Human3.6M sequences); the caller sees it from the frame indices it got.
    `reuse_buffer`: yield every batch in the same array (no allocation per batch), for a consumer
    that is done with a batch before it asks for the next one.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    wanted = _checked_selection(path, frames)
    container, stream = _open(path)
    stream.codec_context.thread_count = max(1, int(threads))
    header_frames = int(stream.frames) or None
    size = (int(stream.codec_context.width), int(stream.codec_context.height))
    # A fresh batch array each time unless asked otherwise: the consumer may keep its frames.
    new_batch = lambda: np.empty((batch_size, size[1], size[0], 3), np.uint8)  # noqa: E731
    buf, idx, concealed = new_batch(), [], 0
    i420 = None
    i = -1      # index of the last frame decoded
    k = 0       # next position in `wanted`
    try:
        decoder = container.decode(stream)
        while (frame := _next_frame(path, decoder, i + 1)) is not None:
            i += 1
            if wanted is not None:
                if k >= len(wanted):
                    break
                if wanted[k] != i:
                    continue
                k += 1
            if (frame.width, frame.height) != size:
                raise FrameSourceError(path, i, f"frame size changed from {size[0]}x{size[1]} to "
                                                f"{frame.width}x{frame.height}")
            i420 = _to_rgb(frame, buf[len(idx)], i420)
            idx.append(i)
            concealed += bool(frame.is_corrupt)
            if len(idx) == batch_size:
                yield FrameBatch(buf, np.asarray(idx, np.int64), (str(path),), concealed)
                buf, idx, concealed = (buf if reuse_buffer else new_batch()), [], 0
        _check_ended_well(path, i + 1, header_frames, None if wanted is None else wanted[k:], allow_short)
        if idx:
            yield FrameBatch(buf[: len(idx)], np.asarray(idx, np.int64), (str(path),), concealed)
    finally:
        container.close()


def _checked_selection(path, frames: Sequence[int] | None) -> np.ndarray | None:
    wanted = None if frames is None else np.asarray(frames, np.int64)
    if wanted is not None and (len(wanted) == 0 or (np.diff(wanted) <= 0).any() or wanted[0] < 0):
        raise ValueError(f"{path}: selected frames must be non-empty, >= 0 and strictly increasing")
    return wanted


def _next_frame(path, decoder, index: int):
    """The decoder's next frame (number `index`), None at the end; a decode error names the frame."""
    try:
        return next(decoder)
    except StopIteration:
        return None
    except Exception as e:
        raise FrameSourceError(path, index, f"decode failed after {index} good frames "
                                            f"({type(e).__name__}: {e})") from e


def _check_ended_well(path, decoded: int, header_frames: int | None, still_wanted: np.ndarray | None,
                      allow_short: bool) -> None:
    """Raise when the decoder stopped before the selected frames, or before the header's count."""
    if still_wanted is not None and len(still_wanted) and not allow_short:
        raise FrameSourceError(path, int(still_wanted[0]), f"frame requested but the video ends after "
                                                           f"{decoded} frames")
    if still_wanted is None and header_frames is not None and decoded < header_frames:
        raise FrameSourceError(path, decoded, f"truncated: the header says {header_frames} frames "
                                              f"but only {decoded} could be decoded")
