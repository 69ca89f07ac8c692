"""The shards one precompute task writes for its sequence, and whose cues each one gets.

A sequence gives one shard (its job key) holding its subject, plus, with `people: all` on a
sequence without ground truth, one shard per other tracked person under the key whose camera
component is `<camera>-track<id>` (e.g. `videos/clip/video/0-track2`). Policies:
pipeline/detect/subjects.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from auglift.cache import key_for
from auglift.pipeline.detect.people import SELECTION_CODES, people_summary
from auglift.pipeline.detect.subjects import PeopleConfig, Tracks, detect_guided, detect_per_frame


@dataclass
class ShardOutput:
    key: str
    camera: str                       # the attrs' camera name (carries the track suffix)
    track: int | None                 # tracked shards: the track id
    select: Callable[[np.ndarray, int], tuple[Any, dict[str, np.ndarray]]]   # (frames, first row)
    policy: str                       # "ground_truth", "tracked" or "per_frame"
    boxes: list[np.ndarray] = field(default_factory=list)     # kept boxes, for the summary
    counts: list[np.ndarray] = field(default_factory=list)    # people per frame, when known

    def record(self, det, arrays: dict[str, np.ndarray]) -> None:
        self.boxes.append(det.bbox)
        if "people_count" in arrays:
            self.counts.append(arrays["people_count"])

    def summary(self) -> dict:
        """people_summary of what was written; people_per_frame is null when not counted."""
        out = people_summary(np.concatenate(self.counts) if self.counts else np.zeros(0, np.int64),
                             np.concatenate(self.boxes))
        if not self.counts:
            out["people_per_frame"] = None
        return out

    def attrs(self, config: PeopleConfig, tracks: dict[int, str] | None = None) -> dict:
        """The shard attribute `people` (its summary is added at the end of the sequence)."""
        out = {"policy": self.policy, "mode": config.mode, "track_id": self.track,
               "selection_codes": SELECTION_CODES}
        if self.policy == "ground_truth":
            out.update(crop="actor's ground-truth 2D box", margin=config.margin, max_error=config.max_error)
        if self.policy == "tracked":
            out.update(subject_rule=config.subject, tracks=tracks)
        return out


def track_key(job, track: int) -> tuple[str, str]:
    camera = f"{job.camera}-track{track}"
    return key_for(job.dataset, job.subject, job.action, camera), camera


def plan_outputs(job, detector, config: PeopleConfig, frame_batches: Callable[[], Any]) -> list[ShardOutput]:
    """The shards of `job` (subject first). Tracked sequences run the detection pass here over
    `frame_batches()` (an iterator of (n, H, W, 3) arrays); the others detect batch by batch."""
    extras = detector.extras
    if config.mode == "frame":
        return [ShardOutput(job.key, job.camera, None, lambda f, r0: detect_per_frame(detector, f), "per_frame")]
    guide = getattr(job, "guide_2d", None)
    if guide is not None:
        return [ShardOutput(job.key, job.camera, None,
                            lambda f, r0: detect_guided(detector, f, guide[r0:r0 + len(f)], config), "ground_truth")]
    tracks = Tracks.detect(detector, frame_batches())
    chosen = tracks.chosen(config.mode, config.subject)
    outs = []
    for i, k in enumerate(chosen or [-1]):
        key, camera = (job.key, job.camera) if i == 0 else track_key(job, k)
        outs.append(ShardOutput(key, camera, k if k >= 0 else None,
                                lambda f, r0, k=k: tracks.detections(k, r0, r0 + len(f), extras), "tracked"))
    return outs


def track_keys(outputs: list[ShardOutput]) -> dict[int, str] | None:
    """{track id: shard key} of a tracked sequence's shards (JSON keys are strings)."""
    if outputs[0].policy != "tracked":
        return None
    return {str(o.track): o.key for o in outputs if o.track is not None}
