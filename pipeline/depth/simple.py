"""Depth backends that need no depth model: the detector's own landmark z, and none at all."""
from __future__ import annotations

import numpy as np

from auglift.pipeline.detect.base import Detections

from .base import DepthBackend, DepthOutput

LANDMARK_SPACES = {
    # space -> (detector extra, unit recorded in the shard)
    "world": ("landmark_z_world", "m, relative to the hip centre (BlazePose pose_world_landmarks)"),
    "image": ("landmark_z_image", "px (image-width scale), relative to the hip centre (BlazePose landmarks)"),
}


class LandmarkZDepth(DepthBackend):
    """BlazePose's own per-landmark z as the keypoint depth prior (embedded, offline default).

    It is a real model output, but not a depth map: z is relative to the hip centre (0 at the
    hips, larger = farther), so it carries the body's internal depth order and scale but no
    camera distance. With space="world" (default) it is `pose_world_landmarks` z, which
    BlazePose estimates in metres; space="image" is the image-landmark z, whose scale the
    model ties to the image width (times the width -> roughly pixels). Kind "landmark_z";
    a lifter trained on it must be tested on it too (the codec's root-relative depth is
    unchanged by the missing camera offset).
    """

    name = "landmark-z"
    kind = "landmark_z"

    def __init__(self, space: str = "world"):
        if space not in LANDMARK_SPACES:
            raise ValueError(f"landmark-z: unknown space {space!r}; choose from {sorted(LANDMARK_SPACES)}")
        super().__init__(space=space, source=LANDMARK_SPACES[space][0], unit=LANDMARK_SPACES[space][1])
        self.version = "1"

    @classmethod
    def required_extras(cls, space: str = "world", **_) -> tuple[str, ...]:
        return (LANDMARK_SPACES[space][0],) if space in LANDMARK_SPACES else ()

    def __call__(self, frames, detections: Detections) -> DepthOutput:
        extra = self.params["source"]
        if extra not in detections.extras:
            raise ValueError(f"depth backend landmark-z needs a detector that outputs {extra!r} "
                             f"(the mediapipe detector does); this detector gives {sorted(detections.extras)}")
        z = np.asarray(detections.extras[extra], np.float32).copy()
        valid = np.isfinite(z) & np.isfinite(detections.keypoints).all(-1)
        z[~valid] = np.nan
        return DepthOutput(z, valid)


class NoDepth(DepthBackend):
    """No depth cue: every value NaN, kind "none" (for xy / xyc lifters)."""

    name = "none"
    kind = "none"
    provenance = "none"

    def __init__(self):
        super().__init__()
        self.version = "1"

    def __call__(self, frames, detections: Detections) -> DepthOutput:
        shape = detections.confidence.shape
        return DepthOutput(np.full(shape, np.nan, np.float32), np.zeros(shape, bool))
