"""The sequences a precompute run turns into shards: one `SequenceJob` per shard.

Every `--dataset` is an adapter of `pipeline.sources` (`get_dataset(name, root)`), the raw-frame
ones (`videos`, `images`, `samples`, pipeline/sources/raw_frames.py) included: one shard per
(subject, action, camera) that has frames; the sequence is loaded on the worker, and only the
frames with ground truth (`Sequence.frame_index`) are processed; the actor's 2D (shipped by the
dataset, or its ground truth projected through the sequence's camera: `guide_2d`) picks their
person in each frame. `input_jobs` makes the jobs of a user's own files through the same adapters.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from auglift.cache import key_for
from auglift.pipeline.frames import FrameSpec
from auglift.pipeline.frames.video import VIDEO_SUFFIXES, list_videos
from auglift.pipeline.sources.base import DatasetAdapter, SequenceRef, get_dataset


@dataclass(eq=False)
class SequenceJob:
    key: str
    dataset: str
    subject: str
    action: str
    camera: str
    frames: FrameSpec | None = None          # None: filled in on the worker from `adapter`
    fps: float | None = None
    intrinsics: dict | None = None
    joints_3d_cam: np.ndarray | None = None  # (T, 17, 3) mm, aligned with the frames, or None
    guide_2d: np.ndarray | None = None       # (T, 17, 2) px: the actor's ground-truth 2D (selects the person)
    n_frames: int | None = None              # for the progress bar, when known up front
    adapter: tuple[str, str, Any] | None = None   # (dataset, data root, SequenceRef)
    notes: list[str] = field(default_factory=list)

    @property
    def main_file(self) -> str | None:
        """The file an error is reported against: the frames' file, else the adapter's source."""
        if self.frames is not None:
            return self.frames.paths[0]
        if self.adapter is not None:
            ref = self.adapter[2]
            source = getattr(ref, "source", "")
            return str(Path(getattr(ref, "root", self.adapter[1])) / source) if source else self.adapter[1]
        return None


# ---------------------------------------------------------------------------------- adapters
def adapter_jobs(dataset: str, root: str | Path, split: str | None = None,
                 subjects: list[str] | None = None) -> list[SequenceJob]:
    """Jobs for every sequence of a `pipeline.sources` adapter; loaded later, on the worker."""

    adapter = get_dataset(dataset, root)
    refs = adapter.list_sequences(split=split, subjects=subjects)
    if not refs:
        raise ValueError(f"no {dataset} sequences under {root} (split={split}, subjects={subjects})")
    return [ref_job(adapter, r) for r in refs]


def ref_job(adapter: DatasetAdapter, ref: SequenceRef) -> SequenceJob:
    """The job of one sequence of `adapter`, loaded later on the worker."""
    return SequenceJob(key_for(ref.dataset, ref.subject, ref.action, ref.camera), ref.dataset, str(ref.subject),
                       str(ref.action), str(ref.camera), n_frames=adapter.n_frames(ref),
                       adapter=(ref.dataset, str(adapter.given_root), ref))


def resolve_adapter_job(job: SequenceJob) -> SequenceJob:
    """Load an adapter job's sequence (on the worker): frames, ground truth, camera, fps."""
    if job.adapter is None:
        return job

    name, root, ref = job.adapter
    seq = get_dataset(name, root).load(ref)
    frames = None if seq.frame_index is None else tuple(int(f) for f in np.asarray(seq.frame_index))
    video, images = seq.video_path, seq.image_paths
    if video:
        spec = FrameSpec("video", (str(video),), frames, allow_short=frames is not None)
    elif images:
        spec = FrameSpec("images", tuple(map(str, images)), frames)
    else:
        raise FileNotFoundError(f"{job.key}: the {name} adapter found no video or images for this sequence "
                                f"under {root} (mocap-only data cannot be precomputed; simulate it instead)")
    cam, gt, guide = seq.cam, seq.joints_3d_cam, seq.guide_2d
    if guide is None and gt is not None and cam is not None:
        # The actor's ground truth projected into the image is what picks their person in every frame.
        guide = cam.project(np.asarray(gt, np.float64)).astype(np.float32)
    intrinsics = seq.intrinsics or (cam.intrinsics() if cam is not None else None)
    return SequenceJob(job.key, job.dataset, job.subject, job.action, job.camera, spec, fps=seq.fps,
                       intrinsics=intrinsics, joints_3d_cam=None if gt is None else np.asarray(gt, np.float32),
                       guide_2d=guide, n_frames=spec.n_frames or job.n_frames,
                       notes=[*job.notes, *seq.extras.get("notes", ())])


def build_jobs(dataset: str, root: str | Path, split: str | None = None,
               subjects: list[str] | None = None) -> list[SequenceJob]:
    """All jobs of `dataset` under `root`, sorted by key (the order `--part` splits)."""
    jobs = adapter_jobs(dataset, root, split, subjects)
    keys = [j.key for j in jobs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError(f"{dataset}: several sequences map to the same shard key: {dup[:5]}")
    return sorted(jobs, key=lambda j: j.key)


def split_part(jobs: list[SequenceJob], part: tuple[int, int] | None) -> list[SequenceJob]:
    """Part i of N (0 <= i < N): every N-th job of the key-sorted list, starting at i.

    Round-robin over sorted keys gives every part a similar mix of sequences, and the same
    split on every machine of a job array (no coordination needed).
    """
    if part is None:
        return list(jobs)
    i, n = part
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"--part {i}/{n}: need 0 <= i < N")
    return sorted(jobs, key=lambda j: j.key)[i::n]


# ------------------------------------------------------------------------- a user's own inputs
def input_jobs(paths: list[str | Path]) -> dict[str, list[SequenceJob]]:
    """A user's video files and image folders -> precompute jobs, grouped by dataset name.

    A video file is one sequence (dataset `videos`); a folder of images is one sequence and a
    folder of image folders one per sub-folder (dataset `images`); a folder of videos gives one
    sequence per video. Anything else is a ValueError naming the path. Keys as in `video_jobs` /
    `image_jobs`; two inputs that would share a key are refused.
    """

    groups: dict[str, list[SequenceJob]] = {"videos": [], "images": []}
    for path in map(Path, paths):
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
            videos = get_dataset("videos", path.parent)
            groups["videos"].append(ref_job(videos, videos.ref(path.stem, "video", "0", source=path.name)))
        elif path.is_dir() and list_videos(path):
            groups["videos"] += adapter_jobs("videos", path)
        elif path.is_dir() and get_dataset("images", path).root_found():
            groups["images"] += adapter_jobs("images", path)
        else:
            raise ValueError(f"{path}: not a video file ({', '.join(VIDEO_SUFFIXES)}), a folder of videos or "
                             f"images, or a cache of shards")
    for name, jobs in groups.items():
        keys = [j.key for j in jobs]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f"several inputs map to the same sequence key {dup[0]!r}; rename one of them")
    return {name: sorted(jobs, key=lambda j: j.key) for name, jobs in groups.items() if jobs}
