"""What a 2D detector backend returns, and how one person is chosen per frame.

Every backend maps its own layout onto H36M-17 (core.skeleton) and returns one pose per
frame from `__call__` (its own per-frame choice); backends that can also return every person
(`detect_people`, `people_in_boxes`) serve ground-truth matching and tracking
(pipeline.detect.people, pipeline.detect.subjects). In `__call__`, a frame with nobody in it
gets NaN keypoints, confidence 0 and an all-NaN box (the cache's "no detection" spelling),
never an exception.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from auglift.core.skeleton import NUM_JOINTS

from .people import distinct_people

PERSON_MODES = ("largest", "confident")


@dataclass
class Detections:
    keypoints: np.ndarray      # (n, 17, 2) float32 pixels; NaN where nobody was found
    confidence: np.ndarray     # (n, 17) float32 in [0, 1]; 0 where nobody was found
    bbox: np.ndarray           # (n, 4) float32 x0, y0, x1, y1; all NaN where nobody was found
    # Per-frame backend outputs beyond (x, y, c), e.g. BlazePose's "landmark_z" (n, 17).
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.keypoints)

    @property
    def found(self) -> np.ndarray:
        """(n,) bool: whether a person was detected in each frame."""
        return np.isfinite(self.bbox).all(axis=1)


@dataclass
class People:
    """Every person found in one frame (P >= 0 of them), in H36M-17."""
    keypoints: np.ndarray      # (P, 17, 2) float32 pixels
    confidence: np.ndarray     # (P, 17) float32 in [0, 1]
    bbox: np.ndarray           # (P, 4) float32 x0, y0, x1, y1
    extras: dict[str, np.ndarray] = field(default_factory=dict)   # name -> (P, 17)

    def __len__(self) -> int:
        return len(self.keypoints)

    def subset(self, index: np.ndarray) -> "People":
        return People(self.keypoints[index], self.confidence[index], self.bbox[index],
                      {k: v[index] for k, v in self.extras.items()})


def empty_people(extras: tuple[str, ...] = ()) -> People:
    return People(np.zeros((0, NUM_JOINTS, 2), np.float32), np.zeros((0, NUM_JOINTS), np.float32),
                  np.zeros((0, 4), np.float32), {name: np.zeros((0, NUM_JOINTS), np.float32) for name in extras})


def pick_people(people: list[People], rows: np.ndarray, extras: tuple[str, ...] = ()) -> Detections:
    """One person per frame: `rows[t]` indexes frame t's People; -1 gives "no detection"."""
    out = empty_detections(len(people), extras)
    for t, (p, i) in enumerate(zip(people, np.asarray(rows).tolist())):
        if i < 0:
            continue
        out.keypoints[t], out.confidence[t], out.bbox[t] = p.keypoints[i], p.confidence[i], p.bbox[i]
        for name in extras:
            out.extras[name][t] = p.extras[name][i]
    return out


def empty_detections(n: int, extras: tuple[str, ...] = ()) -> Detections:
    """`n` frames with nobody detected."""
    return Detections(np.full((n, NUM_JOINTS, 2), np.nan, np.float32), np.zeros((n, NUM_JOINTS), np.float32),
                      np.full((n, 4), np.nan, np.float32),
                      {name: np.full((n, NUM_JOINTS), np.nan, np.float32) for name in extras})


def keypoint_box(keypoints: np.ndarray, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """`(K, 2)` -> `(4,)` extent of the finite keypoints, clipped to the image if its (W, H) is given."""
    kp = keypoints[np.isfinite(keypoints).all(axis=-1)]
    if len(kp) == 0:
        return np.full(4, np.nan, np.float32)
    box = np.concatenate([kp.min(axis=0), kp.max(axis=0)])
    if image_size is not None:
        w, h = image_size
        box = np.clip(box, 0, [w - 1, h - 1, w - 1, h - 1])
    return box.astype(np.float32)


def select_person(boxes: np.ndarray, scores: np.ndarray | None = None, mode: str = "largest") -> int:
    """Index of the person to keep among P candidates (P >= 1).

    - "largest": the biggest box area; the person nearest the camera is usually the subject.
    - "confident": the highest mean keypoint confidence `scores` (P, K); better in crowds where
      a large, partly visible bystander fills the frame.
    Ties go to the lower index (the detector's own ranking).
    """
    if mode not in PERSON_MODES:
        raise ValueError(f"unknown person selection {mode!r}; choose from {PERSON_MODES}")
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        raise ValueError("select_person needs at least one candidate")
    if mode == "confident":
        if scores is None:
            raise ValueError("person='confident' needs keypoint scores")
        return int(np.argmax(np.nan_to_num(np.asarray(scores, np.float64)).mean(axis=-1)))
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    return int(np.argmax(np.nan_to_num(area)))


class Detector(ABC):
    """A 2D pose detector: RGB frames in, one H36M-17 pose per frame out.

    Instances hold loaded models and are reused across sequences by one worker; `reset` is called
    at the start of every sequence so that a tracking backend never carries state across them.
    """

    name: str = ""
    version: str | None = None
    extras: tuple[str, ...] = ()   # names of the per-frame extras this backend fills in

    def __init__(self, **params: Any):
        self.params = params

    @abstractmethod
    def __call__(self, frames: np.ndarray) -> Detections:
        """`(n, H, W, 3)` uint8 RGB -> Detections of n frames."""

    def person_boxes(self, frames: np.ndarray) -> list[np.ndarray]:
        """Every person's box `(P, 4)` xyxy in each RGB frame (backends that can find several)."""
        raise NotImplementedError(f"detector {self.name!r} cannot find several people in a frame")

    def people_in_boxes(self, frame: np.ndarray, boxes: np.ndarray) -> People:
        """The pose of the person in each of `boxes` (P, 4) xyxy of one RGB frame (top-down)."""
        raise NotImplementedError(f"detector {self.name!r} cannot take person boxes")

    def detect_people(self, frames: np.ndarray) -> list[People]:
        """Every person in every frame: `person_boxes`, then `people_in_boxes`, then one pose per
        body (`people.distinct_people`: two boxes on one person give the same pose twice)."""
        out = []
        for frame, boxes in zip(frames, self.person_boxes(frames)):
            found = self.people_in_boxes(frame, boxes)
            out.append(found.subset(distinct_people(found.keypoints, found.confidence, found.bbox)))
        return out

    def reset(self) -> None:
        """Forget any state carried from frame to frame (called once per sequence)."""

    def describe(self) -> dict:
        """The shard attribute `detector`: {name, version, params}."""
        return {"name": self.name, "version": self.version, "params": dict(self.params)}

    def close(self) -> None:
        """Release the model (graphs, sessions)."""
