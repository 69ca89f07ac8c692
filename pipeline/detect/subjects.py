"""Whose cues go into a shard: a dataset actor's (ground truth guides), or a tracked person's.

Three policies (`PeopleConfig.mode`; the precompute option `--people`):

- "subject" (default). A sequence with ground-truth 2D (an adapter's projected 3D, the samples'
  annotation) is *guided*: per frame the detector runs top-down on the actor's ground-truth box
  widened by `margin` (BlazePose: on a square crop of it; RTMPose: on that box), and the pose is
  kept only if it matches the actor (`people.match_to_guide`, median joint error <= `max_error`
  of the actor's size); otherwise the frame has NaN keypoints and confidence 0. The stored
  `bbox` is the extent of the kept pose's keypoints (not the ground-truth box). A sequence
  without ground truth is *tracked*: every person of every frame (`Detector.detect_people`) is
  linked into tracks (`people.track_people`) and the subject is the track chosen by `subject`
  ("longest", "largest" or a track id; `people.choose_track`).
- "all": as "subject", and a tracked sequence also gets one shard per other track.
- "frame": the detector's own per-frame choice (`__call__`: BlazePose's first person, RTMPose's
  `person` rule), no ground truth, no tracking; people may switch from frame to frame.

Every shard records per frame how its person was chosen (`person_selection`, codes
`people.SELECTION_CODES`), guided shards the match error (`match_error`), guided and tracked ones
the number of people the detector found (`people_count`), tracked ones the `track_id`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Detections, Detector, People, empty_detections, keypoint_box, pick_people
from .people import (
    MATCH_MAX_ERROR,
    SELECTION_CODES,
    SUBJECT_RULES,
    choose_track,
    guide_box,
    match_to_guide,
    track_people,
    track_rows,
    track_table,
)

PEOPLE_MODES = ("subject", "all", "frame")


@dataclass
class PeopleConfig:
    mode: str = "subject"               # PEOPLE_MODES
    subject: str = "longest"            # tracked videos: SUBJECT_RULES or a track id ("0", "3", ...)
    margin: float = 0.25                # guided: the actor's box is widened by this x its larger side
    max_error: float = MATCH_MAX_ERROR  # guided: largest median joint error / actor size that matches

    def check(self) -> "PeopleConfig":
        if self.mode not in PEOPLE_MODES:
            raise ValueError(f"people mode {self.mode!r}: choose from {PEOPLE_MODES}")
        if self.subject not in SUBJECT_RULES and not str(self.subject).isdigit():
            raise ValueError(f"subject {self.subject!r}: choose from {SUBJECT_RULES} or a track id (0, 1, ...)")
        if not (self.margin >= 0 and self.max_error > 0):
            raise ValueError("people margin must be >= 0 and max_error > 0")
        return self


def detect_per_frame(detector: Detector, frames: np.ndarray) -> tuple[Detections, dict[str, np.ndarray]]:
    """The detector's own per-frame choice ("frame" mode)."""
    det = detector(frames)
    codes = np.where(det.found, SELECTION_CODES["per_frame"], SELECTION_CODES["none"]).astype(np.int64)
    return det, {"person_selection": codes}


def detect_guided(detector: Detector, frames: np.ndarray, guide: np.ndarray, config: PeopleConfig
                  ) -> tuple[Detections, dict[str, np.ndarray]]:
    """Each frame's pose of the actor whose ground-truth 2D is `guide` (n, 17, 2); see module doc."""
    n = len(frames)
    out = empty_detections(n, detector.extras)
    codes = np.full(n, SELECTION_CODES["none"], np.int64)
    errors = np.full(n, np.nan, np.float32)
    counts = np.array([len(b) for b in detector.person_boxes(frames)], np.int64)
    boxes = guide_box(guide, config.margin)
    size = (frames.shape[2], frames.shape[1])
    for t in np.flatnonzero(np.isfinite(boxes).all(axis=1)):
        people = detector.people_in_boxes(frames[t], boxes[t][None])
        i, err = match_to_guide(people.keypoints, guide[t], config.max_error)
        errors[t] = err
        if i >= 0:
            _put(out, t, people, i)
            # the box the detector ran on came from ground truth: store the pose's own extent
            out.bbox[t] = keypoint_box(people.keypoints[i], size)
            codes[t] = SELECTION_CODES["ground_truth_match"]
    return out, {"person_selection": codes, "match_error": errors, "people_count": counts}


def _put(out: Detections, t: int, people: People, i: int) -> None:
    out.keypoints[t], out.confidence[t], out.bbox[t] = people.keypoints[i], people.confidence[i], people.bbox[i]
    for name in out.extras:
        out.extras[name][t] = people.extras[name][i]


@dataclass
class Tracks:
    """Everyone found in a sequence and their tracks (the first, detection pass of a tracked run)."""
    people: list[People]          # per frame
    ids: list[np.ndarray]         # per frame: (P_t,) track id of each person

    @classmethod
    def detect(cls, detector: Detector, frame_batches) -> "Tracks":
        people: list[People] = []
        for frames in frame_batches:
            people += detector.detect_people(frames)
        return cls(people, track_people([p.bbox for p in people], [p.keypoints for p in people]))

    def chosen(self, mode: str, rule: str) -> list[int]:
        """Track ids to write: the subject first, then ("all") every other track by id."""
        subject = choose_track(self.ids, [p.bbox for p in self.people], rule)
        if subject is None:
            return []
        others = sorted(k for k in track_table(self.ids) if k != subject) if mode == "all" else []
        return [subject, *others]

    def detections(self, track: int, start: int, stop: int, extras: tuple[str, ...]
                   ) -> tuple[Detections, dict[str, np.ndarray]]:
        """Frames start..stop-1 of `track` as Detections, with its per-frame arrays."""
        rows = track_rows(self.ids[start:stop], track)
        det = pick_people(self.people[start:stop], rows, extras)
        found = rows >= 0
        return det, {"person_selection": np.where(found, SELECTION_CODES["track"], SELECTION_CODES["none"]),
                     "track_id": np.where(found, track, -1).astype(np.int64),
                     "people_count": np.array([len(p) for p in self.people[start:stop]], np.int64)}
