"""The sequences a precompute run turns into shards: one `SequenceJob` per shard.

Where the frames come from, per `--dataset`:
- `videos`: every video file directly in ROOT (default `<data>/videos`); one shard per file,
  key `videos/<file stem>/video/0`.
- `images`: every sub-folder of ROOT holding images is one sequence (or ROOT itself, if it holds
  images), frames in file-name order; key `images/<folder>/frames/0`.
- `samples`: the shared real H36M / MPI-INF-3DHP sample frames (ROOT default `<data>/samples`).
  One shard per image (each is a single frame of a different sequence), its person chosen by the
  image's ground-truth 2D (`part`), carrying the image's ground-truth 3D (`S`, camera metres -> mm, 3DHP order mapped to H36M-17) as `joints_3d_cam`
  and, when `pipeline.safe_pickle` is available, the camera intrinsics from the sample pickles.
  Keys: `samples/h36m-S1/Directions_1-000001/54138969`, `samples/3dhp-TS1/test-002001/0`,
  `samples/3dhp-S4/Seq2-001033/0`.
- any dataset adapter of `pipeline.sources` (`get_dataset(name, root)`): one shard per
  (subject, action, camera) that has frames; the sequence is loaded on the worker, and only the
  frames with ground truth (`Sequence.frame_index`) are processed; the ground truth projected
  through the sequence's camera (`guide_2d`) picks the actor's person in each frame.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from auglift.cache import key_for
from auglift.core.skeleton import to_h36m17
from auglift.pipeline.frames import FrameSpec
from auglift.pipeline.frames.images import list_images
from auglift.pipeline.frames.video import VIDEO_SUFFIXES, FrameSourceError, list_videos, probe_video
from auglift.pipeline.safe_pickle import load_pickle
from auglift.pipeline.sources.base import available_datasets, get_dataset

BUILTIN_DATASETS = ("videos", "images", "samples")


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


def _key(*parts: str) -> str:
    return key_for(*parts)


def video_job(path: str | Path) -> SequenceJob:
    """One video file -> its job, key `videos/<file stem>/video/0`."""

    path = Path(path)
    n, fps = None, None
    try:
        info = probe_video(path)
        n, fps = info.n_frames, info.fps
    except FrameSourceError:
        pass  # the task reports it with the file and frame; listing must not stop here
    return SequenceJob(_key("videos", path.stem, "video", "0"), "videos", path.stem, "video", "0",
                       FrameSpec("video", (str(path),)), fps=fps, n_frames=n)


def video_jobs(root: str | Path) -> list[SequenceJob]:
    jobs = [video_job(path) for path in list_videos(root)]
    if not jobs:
        raise ValueError(f"{root}: no video files (looked for {', '.join(VIDEO_SUFFIXES)})")
    return jobs


def image_jobs(root: str | Path) -> list[SequenceJob]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such image directory")
    folders = [root] if list_images(root) else sorted(p for p in root.iterdir() if p.is_dir())
    jobs = []
    for folder in folders:
        images = list_images(folder)
        if images:
            jobs.append(SequenceJob(_key("images", folder.name, "frames", "0"), "images", folder.name, "frames", "0",
                                    FrameSpec("images", tuple(map(str, images))), n_frames=len(images)))
    if not jobs:
        raise ValueError(f"{root}: no images in it or in its sub-folders")
    return jobs


# ------------------------------------------------------------------------------------ samples
_H36M_NAME = re.compile(r"^(S\d+)_(.+)\.(\d+)_(\d+)\.jpg$")   # S1_Directions_1.54138969_000001.jpg
_3DHP_TEST = re.compile(r"^(TS\d+)_(\d+)\.jpg$")               # TS1_002001.jpg
_3DHP_TRAIN = re.compile(r"^(S\d+)_(Seq\d+)_Cam(\d+)_(\d+)\.jpg$")  # S4_Seq2_Cam0_001033.jpg


def _load_cameras(path: Path) -> dict | None:
    return load_pickle(path) if path.is_file() else None


def _intrinsics(cam: dict | None) -> dict | None:
    if cam is None:
        return None
    flat = {k: np.asarray(v, np.float64).ravel().tolist() for k, v in cam.items() if k in ("f", "c", "k", "p")}
    return {"f": flat["f"], "c": flat["c"], "k": flat.get("k"), "p": flat.get("p")}


def sample_jobs(root: str | Path) -> list[SequenceJob]:
    """One job per shared sample image (see module docstring)."""

    root = Path(root)
    table = [("h36m_test_h36m_body3d.npz", "h36m", "h36m_cameras.pkl"),
             ("3dhp_test_3dhp_test.npz", "3dhp", "3dhp_cameras_test.pkl"),
             ("3dhp_test_3dhp_train.npz", "3dhp", "3dhp_cameras_train.pkl")]
    jobs = []
    for npz_name, corpus, cam_name in table:
        npz = root / npz_name
        if not npz.is_file():
            raise FileNotFoundError(f"{npz}: sample annotation file missing (is {root} the shared samples folder?)")
        with np.load(npz, allow_pickle=False) as d:
            names, S = [str(n) for n in d["imgname"]], np.asarray(d["S"], np.float64)
            parts = np.asarray(d["part"], np.float64)[..., :2]
        cams = _load_cameras(root / cam_name)
        for name, s, part in zip(names, S, parts):
            base = Path(name).name
            joints = s[:, :3] * 1000.0  # camera metres -> mm
            if corpus == "h36m":
                m = _H36M_NAME.match(base)
                subject, action, camera, frame = m.group(1), m.group(2), m.group(3), int(m.group(4))
                cam = cams.get((subject, camera)) if cams else None
                key_parts = (f"h36m-{subject}", f"{action}-{frame:06d}", camera)
            else:
                joints, part = to_h36m17(joints, "3dhp17"), to_h36m17(part, "3dhp17")
                m_test, m_train = _3DHP_TEST.match(base), _3DHP_TRAIN.match(base)
                if m_test:
                    subject, frame, camera = m_test.group(1), int(m_test.group(2)), "0"
                    cam = cams.get(subject) if cams else None
                    key_parts = (f"3dhp-{subject}", f"test-{frame:06d}", camera)
                else:
                    subject, seq, camera, frame = (m_train.group(1), m_train.group(2), m_train.group(3),
                                                   int(m_train.group(4)))
                    cam = cams.get(f"{subject}_{seq}_Cam{camera}") if cams else None
                    key_parts = (f"3dhp-{subject}", f"{seq}-{frame:06d}", camera)
            image = root / f"{corpus}_{base}"
            job = SequenceJob(_key("samples", *key_parts), "samples", *key_parts,
                              frames=FrameSpec("images", (str(image),), (frame,)), fps=None,
                              intrinsics=_intrinsics(cam), joints_3d_cam=joints[None].astype(np.float32),
                              guide_2d=part[None].astype(np.float32), n_frames=1)
            if cams is None:
                job.notes.append("intrinsics unknown (pipeline.safe_pickle unavailable)")
            jobs.append(job)
    return jobs


# ---------------------------------------------------------------------------------- adapters
def adapter_jobs(dataset: str, root: str | Path, split: str | None = None,
                 subjects: list[str] | None = None) -> list[SequenceJob]:
    """Jobs for every sequence of a `pipeline.sources` adapter; loaded later, on the worker."""

    adapter = get_dataset(dataset, root)
    refs = adapter.list_sequences(split=split, subjects=subjects)
    if not refs:
        raise ValueError(f"no {dataset} sequences under {root} (split={split}, subjects={subjects})")
    return [SequenceJob(_key(dataset, r.subject, r.action, r.camera), dataset, str(r.subject), str(r.action),
                        str(r.camera), adapter=(dataset, str(root), r)) for r in refs]


def resolve_adapter_job(job: SequenceJob) -> SequenceJob:
    """Load an adapter job's sequence (on the worker): frames, ground truth, camera, fps."""
    if job.adapter is None:
        return job

    name, root, ref = job.adapter
    seq = get_dataset(name, root).load(ref)
    frame_index = getattr(seq, "frame_index", None)
    frames = None if frame_index is None else tuple(int(f) for f in np.asarray(frame_index))
    video, images = getattr(seq, "video_path", None), getattr(seq, "image_paths", None)
    if video:
        spec = FrameSpec("video", (str(video),), frames, allow_short=True)
    elif images:
        spec = FrameSpec("images", tuple(map(str, images)), frames)
    else:
        raise FileNotFoundError(f"{job.key}: the {name} adapter found no video or images for this sequence "
                                f"under {root} (mocap-only data cannot be precomputed; simulate it instead)")
    cam = getattr(seq, "cam", None)
    gt = getattr(seq, "joints_3d_cam", None)
    # The actor's ground truth projected into the image is what picks their person in every frame.
    guide = None if gt is None or cam is None else cam.project(np.asarray(gt, np.float64)).astype(np.float32)
    return SequenceJob(job.key, job.dataset, job.subject, job.action, job.camera, spec,
                       fps=getattr(seq, "fps", None), intrinsics=cam.intrinsics() if cam is not None else None,
                       joints_3d_cam=None if gt is None else np.asarray(gt, np.float32), guide_2d=guide,
                       n_frames=spec.n_frames, notes=list(job.notes))


def build_jobs(dataset: str, root: str | Path, split: str | None = None,
               subjects: list[str] | None = None) -> list[SequenceJob]:
    """All jobs of `dataset` under `root`, sorted by key (the order `--part` splits)."""
    if dataset == "videos":
        jobs = video_jobs(root)
    elif dataset == "images":
        jobs = image_jobs(root)
    elif dataset == "samples":
        jobs = sample_jobs(root)
    else:
        if dataset not in available_datasets():
            raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(BUILTIN_DATASETS)} (raw frames) "
                             f"and the adapters {', '.join(available_datasets())}")
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
            groups["videos"].append(video_job(path))
        elif path.is_dir() and list_videos(path):
            groups["videos"] += video_jobs(path)
        elif path.is_dir() and (list_images(path) or any(p.is_dir() and list_images(p) for p in path.iterdir())):
            groups["images"] += image_jobs(path)
        else:
            raise ValueError(f"{path}: not a video file ({', '.join(VIDEO_SUFFIXES)}), a folder of videos or "
                             f"images, or a cache of shards")
    for name, jobs in groups.items():
        keys = [j.key for j in jobs]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f"several inputs map to the same sequence key {dup[0]!r}; rename one of them")
    return {name: sorted(jobs, key=lambda j: j.key) for name, jobs in groups.items() if jobs}
