"""auglift: cached (x, y, confidence, depth) keypoint features for 3D human-pose lifters.

The repository root is this package (pyproject maps `auglift` to it): `auglift.cache` (shards,
at the bottom), `auglift.core` (skeleton, camera, cue codec, config I/O), `auglift.pipeline`
(detect + depth -> shards), `auglift.lifters` (train, evaluate, predict), `auglift.studies` (the
paper's studies), `auglift.cli` (the `auglift` command) and `auglift.commands` (its commands).

For a notebook, three calls (imported on first use, so `import auglift` stays light):

    cues = auglift.cues_for_image("frame.jpg")          # H36M-17 x, y, confidence, depth
    records = auglift.lift(["clip.mp4"], out="lifted")  # what `auglift lift` does
    cache = auglift.open_cache("runs/cache")            # {key: verified Shard}, opened lazily
"""
from __future__ import annotations

__version__ = "0.1.0"
_API = ("cues_for_image", "lift", "open_cache")


def __getattr__(name: str):
    # Lazy: the API pulls in torch and the detectors, which `import auglift` alone should not.
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'auglift' has no attribute {name!r}")


__all__ = ["__version__", *_API]
