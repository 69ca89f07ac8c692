"""What a dataset adapter gives the pipeline: a `Sequence` per (subject, action, camera).

Each adapter reads one dataset in its native on-disk layout and returns sequences in one common
form: ground-truth 3D in millimetres, camera coordinates, Human3.6M-17 joint order, with the
camera, the frame numbers in the source video (or the image of each frame), and any 2D the
dataset ships. Listing is cheap (`list_sequences` returns `SequenceRef`s, small picklable ids)
and loading is done per sequence (`adapter.load(ref)`), so a task graph can ship a ref to a
worker and load there.

Conventions, for every adapter:
- `Sequence.cam` has R world->camera and T the camera centre, both in mm (X_cam = R (X_w - T)).
  Datasets whose camera moves (3DPW) give an identity camera and per-frame extrinsics in
  `extras["world_to_camera"]`.
- `frame_index[i]` is the frame number in the source video of pose i (or the index of the
  image `image_paths[i]`). Frames a dataset marks invalid are dropped, not NaN-filled.
- Missing or malformed files raise `DatasetError` naming the file and what was expected.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from auglift.core.camera import Camera
from auglift.core.config_io import registered
from auglift.core.skeleton import NUM_JOINTS


class DatasetError(RuntimeError):
    """A dataset file is missing or not what the adapter expects; the message names it."""


@dataclass(frozen=True)
class SequenceRef:
    """A sequence's id: all a worker needs to load it (`get_dataset(dataset, root).load(ref)`)."""

    dataset: str
    subject: str
    action: str
    camera: str
    root: str
    source: str = ""   # adapter-specific locator (e.g. the file the sequence comes from)

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.subject}/{self.action}/{self.camera}"


@dataclass
class Sequence:
    dataset: str
    subject: str
    action: str
    camera: str
    joints_3d_cam: np.ndarray | None          # (T, 17, 3) mm, camera coordinates, H36M-17
    cam: Camera | None
    frame_index: np.ndarray | None             # (T,) frame number in the video / image index; None: every frame
    fps: float | None
    image_size: tuple[int, int]                # (W, H) px
    video_path: Path | None = None
    image_paths: list[Path] | None = None      # one image per pose, aligned with frame_index
    keypoints_2d: np.ndarray | None = None     # (T, 17, 2) px from a 2D source the dataset ships
    confidence: np.ndarray | None = None       # (T, 17) of that source, None if it has none
    detections_note: str = ""
    guide_2d: np.ndarray | None = None         # (T, 17, 2) px: the actor's 2D where the dataset ships it
    intrinsics: dict | None = None             # shard attribute form, where there is no `cam` to give it
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.subject}/{self.action}/{self.camera}"

    def __len__(self) -> int:
        return 0 if self.frame_index is None else len(self.frame_index)

    def __post_init__(self):
        if self.frame_index is None:   # every frame of a video or image list, counted when read
            return
        self.frame_index = np.asarray(self.frame_index, np.int64)
        t = len(self.frame_index)

        def check(name, arr, tail):
            if arr is not None and tuple(np.shape(arr)) != (t, *tail):
                raise DatasetError(f"{self.key}: {name} has shape {np.shape(arr)}, expected {(t, *tail)}")

        check("joints_3d_cam", self.joints_3d_cam, (NUM_JOINTS, 3))
        check("keypoints_2d", self.keypoints_2d, (NUM_JOINTS, 2))
        check("confidence", self.confidence, (NUM_JOINTS,))
        check("guide_2d", self.guide_2d, (NUM_JOINTS, 2))
        if self.image_paths is not None and len(self.image_paths) != t:
            raise DatasetError(f"{self.key}: {len(self.image_paths)} image paths for {t} frames")


class DatasetAdapter:
    """Base of the dataset adapters. Subclasses set `name`, `dirnames`, `SPLITS` and implement
    `_list(split_subjects)` and `load(ref)`.

    `root` may be the dataset's own folder or the folder holding all datasets (the data root):
    in the latter case the first of `dirnames` that exists beneath it is used.
    """

    name: ClassVar[str] = ""
    dirnames: ClassVar[tuple[str, ...]] = ()
    SPLITS: ClassVar[dict[str, tuple[str, ...]]] = {}
    description: ClassVar[str] = ""

    def __init__(self, root: str | Path, **options):
        if options:
            raise TypeError(f"{self.name}: unknown options {sorted(options)}")
        self.given_root = Path(root)
        self.root = self._resolve_root(Path(root))

    # ------------------------------------------------------------------ root and splits
    def _looks_like_root(self, path: Path) -> bool:
        """Whether `path` holds this dataset's layout (overridden per adapter)."""
        return path.is_dir()

    def _resolve_root(self, root: Path) -> Path:
        if self._looks_like_root(root):
            return root
        for d in self.dirnames:
            if self._looks_like_root(root / d):
                return root / d
        for d in self.dirnames:   # not found: report the path where it was expected
            if root.name != d:
                return root / d
        return root

    def root_found(self) -> bool:
        return self._looks_like_root(self.root)

    @property
    def splits(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.SPLITS.items()}

    def subjects_for(self, split: str | None = None, subjects=None) -> list[str] | None:
        """The subject filter for `list_sequences`: None means every subject found."""
        chosen = None
        if split is not None:
            splits = self.splits
            if split not in splits:
                raise ValueError(f"{self.name}: unknown split {split!r}; known: {sorted(splits)}")
            chosen = list(splits[split])
        if subjects:
            subjects = [str(s) for s in subjects]
            chosen = subjects if chosen is None else [s for s in chosen if s in subjects]
        return chosen

    # ------------------------------------------------------------------ listing and loading
    def list_sequences(self, split: str | None = None, subjects=None) -> list[SequenceRef]:
        """Refs of every sequence x camera under the root, optionally of one split / subjects."""
        if not self.root_found():
            raise DatasetError(f"{self.name}: no dataset found at {self.root} "
                               f"(expected {self.layout_hint()})")
        refs = self._list(self.subjects_for(split, subjects))
        return sorted(refs, key=lambda r: (r.subject, r.action, r.camera))

    def _list(self, subjects: list[str] | None) -> list[SequenceRef]:
        raise NotImplementedError

    def load(self, ref: SequenceRef) -> Sequence:
        raise NotImplementedError

    def n_frames(self, ref: SequenceRef) -> int | None:
        """The sequence's frame count when it is cheap to know before loading (None: unknown)."""
        return None

    def ref(self, subject: str, action: str, camera: str, source: str = "") -> SequenceRef:
        return SequenceRef(self.name, str(subject), str(action), str(camera), str(self.root), source)

    def layout_hint(self) -> str:
        return self.description

    def describe(self) -> dict:
        return {"name": self.name, "root": str(self.root), "found": self.root_found(),
                "splits": self.splits, "layout": self.layout_hint()}


# ---------------------------------------------------------------------------------- registry
# name -> "module:class" (relative to this package; core.config_io.registered)
DATASETS: dict[str, str] = {
    "h36m": "h36m:H36MAdapter",
    "3dhp": "mpi_inf_3dhp:MPIINF3DHPAdapter",
    "3dpw": "pw3d:PW3DAdapter",
    "fit3d": "fit3d:Fit3DAdapter",
    "custom": "custom:CustomAdapter",
    "videos": "raw_frames:VideosAdapter",
    "images": "raw_frames:ImagesAdapter",
    "samples": "raw_frames:SamplesAdapter",
}


def available_datasets() -> list[str]:
    return sorted(DATASETS)


def dataset_class(name: str) -> type[DatasetAdapter]:
    return registered(DATASETS, __package__, name, "dataset")


def get_dataset(name: str, root: str | Path, **options) -> DatasetAdapter:
    """The adapter `name` over `root` (the dataset folder, or the data root holding it)."""
    return dataset_class(name)(root, **options)


# ---------------------------------------------------------------------------------- helpers
def select_sequences(dataset: str, root: str | Path, split: str | None = None, subjects=None,
                     actions=None) -> tuple[DatasetAdapter, list]:
    """The adapter of `dataset` and its sequences in `split` / `subjects`, with `actions` glob
    patterns on action names (e.g. ["Walking*"]); an empty selection is an error naming it."""

    adapter = get_dataset(dataset, root)
    refs = adapter.list_sequences(split=split, subjects=list(subjects) if subjects else None)
    if actions:
        refs = [r for r in refs if any(fnmatchcase(str(r.action), a) for a in actions)]
    if not refs:
        raise ValueError(f"no {dataset} sequences under {root} match subjects={subjects}, split={split}, "
                         f"actions={actions}")
    return adapter, refs


def require(path: Path, what: str) -> Path:
    """`path` if it exists, else a DatasetError saying what should have been there."""
    if not path.exists():
        raise DatasetError(f"{path}: missing ({what})")
    return path


def check_array(arr: np.ndarray, shape: tuple, path: Path | str, what: str) -> np.ndarray:
    """Check `arr` against `shape` (None = any size) and raise naming the file otherwise."""
    arr = np.asarray(arr)
    ok = arr.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, arr.shape))
    if not ok:
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise DatasetError(f"{path}: {what} has shape {arr.shape}, expected {want}")
    if not np.issubdtype(arr.dtype, np.number):
        raise DatasetError(f"{path}: {what} has dtype {arr.dtype}, expected numbers")
    return arr


def left_right_agreement(joints: np.ndarray) -> float:
    """Fraction of frames whose left/right labels agree with the facing direction.

    `joints` (T, 17, 3) H36M-17 in any right-handed frame. The person faces along
    nose - (head + thorax)/2; with up = thorax - pelvis, their right is facing x up, so
    (r_hip - l_hip) should point along it. A mirrored joint order (left and right swapped)
    gives about 0; a correct one close to 1.
    """
    j = np.asarray(joints, np.float64)
    facing = j[:, 9] - 0.5 * (j[:, 10] + j[:, 8])
    up = j[:, 8] - j[:, 0]
    right = np.cross(facing, up)
    return float(np.mean(np.sum((j[:, 1] - j[:, 4]) * right, axis=-1) > 0))
