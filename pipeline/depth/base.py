"""What a depth backend returns: one depth per keypoint, plus what kind of depth it is.

Backends that produce depth maps sample them at the detected keypoints with
`core.codec.sample_keypoint_depth` (min over a disc of radius 3 px, the paper's
occlusion-aware rule), the same sampler the simulator uses.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from auglift.pipeline.detect.base import Detections


@dataclass
class DepthOutput:
    depth: np.ndarray   # (n, K) float32; NaN = unknown (no keypoint, or no valid sample)
    valid: np.ndarray   # (n, K) bool: the value came from a valid sample


class DepthBackend(ABC):
    """Frames + their detections -> per-keypoint depth.

    `kind` is one of the cache's depth kinds ("metric", "relative_inverse", "landmark_z",
    "none"); `provenance` is what the shard records for its depth array.
    """

    name: str = ""
    version: str | None = None
    kind: str = "none"
    provenance: str = "real"

    def __init__(self, **params: Any):
        self.params = params

    @classmethod
    def required_extras(cls, **params: Any) -> tuple[str, ...]:
        """Detector extras (see Detector.extras) this backend needs with `params`; checked when
        a run is configured, before any model is built."""
        return ()

    @abstractmethod
    def __call__(self, frames: np.ndarray, detections: Detections) -> DepthOutput:
        """`(n, H, W, 3)` uint8 RGB and their n detections -> DepthOutput."""

    def describe(self) -> dict:
        """The shard attribute `depth_backend`: {name, version, params, kind}."""
        return {"name": self.name, "version": self.version, "params": dict(self.params), "kind": self.kind}

    def close(self) -> None:
        """Release the model."""
