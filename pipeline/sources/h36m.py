"""Human3.6M in either of its two common on-disk layouts.

3d-pose-baseline layout (the h36m.zip release, and the 10 fps copy in shared/data/h36m):
    <root>/cameras.h5                                  subject<k>/camera<c>/{R,T,f,c,k,p,Name}
    <root>/S<k>/MyPoses/3D_positions/<Action>.h5       dataset `3D_positions` (96, N) world mm
    <root>/S<k>/StackedHourglass/<Action_>.<cam>.h5    dataset `poses` (N, 16, 2) SH detections
Official-release layout:
    <root>/S<k>/MyPoseFeatures/D3_Positions/<Action>.cdf   variable `Pose` (1, N, 96) world mm
    <root>/S<k>/Videos/<Action>.<cam>.mp4                  50 fps
    <root>/cameras.h5   the same camera file: the release keeps its cameras in an encoded
                        metadata.xml that only its MATLAB code reads; cameras.h5 is that data.
Either layout may have the Videos folder; when a sequence's video exists it becomes the frame
source and fixes the pose-to-video frame step.

Frame rate. The release is 50 fps; shared/data/h36m keeps every 5th frame. Without a video the
step is inferred per root: the shortest of the 210 release sequences has 994 frames, so a root
whose shortest 3D sequence is under 900 frames is taken to be the 5x-decimated copy. Pass
`frame_step=` to override.

cameras.h5 stores R transposed: R (world->camera) = stored.T, and T is the camera centre.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from auglift.core.camera import Camera
from auglift.core.skeleton import to_h36m17

from .base import DatasetAdapter, DatasetError, Sequence, SequenceRef, check_array, require

CAMERAS = ("54138969", "55011271", "58860488", "60457274")
IMAGE_SIZE = {"54138969": (1000, 1002), "55011271": (1000, 1000),
              "58860488": (1000, 1000), "60457274": (1000, 1002)}
RELEASE_FPS = 50.0
SHORTEST_RELEASE_SEQUENCE = 994   # frames at 50 fps
DECIMATED_STEP = 5
# Spellings of the same action in different parts of the release (3D files vs detections/videos).
ALIASES = {"Photo": "TakingPhoto", "TakingPhoto": "Photo", "WalkDog": "WalkingDog", "WalkingDog": "WalkDog"}
SH_NOTE = ("Stacked-Hourglass detections (3d-pose-baseline release), MPII-16 mapped to H36M-17 "
           "(spine and neck synthesised); the release has no confidence scores")


def action_spellings(action: str, sep: str) -> list[str]:
    """Candidate file names of `action` in a part of the release that uses `sep` for spaces."""
    base, _, num = action.partition(" ")
    names = [base] + ([ALIASES[base]] if base in ALIASES else [])
    return [n + (sep + num if num else "") for n in names]


class H36MAdapter(DatasetAdapter):
    name = "h36m"
    dirnames = ("h36m", "human36m", "Human3.6M")
    SPLITS = {"train": ("S1", "S5", "S6", "S7", "S8"), "test": ("S9", "S11")}
    description = ("Human3.6M: <root>/cameras.h5 and S*/MyPoses/3D_positions/*.h5 (3d-pose-baseline) "
                   "or S*/MyPoseFeatures/D3_Positions/*.cdf (official release)")

    def __init__(self, root, frame_step: int | None = None):
        super().__init__(root)
        self.frame_step = frame_step
        self._cameras: dict[str, dict[str, Camera]] | None = None
        self._world: dict[str, np.ndarray] = {}
        self._inferred_step: tuple[int, str] | None = None

    def _looks_like_root(self, path: Path) -> bool:
        return any(path.glob("S*/MyPoses/3D_positions")) or any(path.glob("S*/MyPoseFeatures/D3_Positions"))

    # ------------------------------------------------------------------ listing
    def _pose_files(self, subject: str) -> dict[str, Path]:
        """action -> 3D file; the h5 of the baseline layout wins over the release's cdf."""
        out = {}
        for p in sorted((self.root / subject / "MyPoseFeatures" / "D3_Positions").glob("*.cdf")):
            out[p.stem] = p
        for p in sorted((self.root / subject / "MyPoses" / "3D_positions").glob("*.h5")):
            out[p.stem] = p
        return out

    def _subjects(self) -> list[str]:
        found = [p.name for p in self.root.glob("S*") if p.is_dir() and re.fullmatch(r"S\d+", p.name)]
        return sorted(found, key=lambda s: int(s[1:]))

    def _list(self, subjects):
        refs = []
        for subject in self._subjects():
            if subjects is not None and subject not in subjects:
                continue
            for action, path in self._pose_files(subject).items():
                refs += [self.ref(subject, action, cam, str(path.relative_to(self.root))) for cam in CAMERAS]
        return refs

    # ------------------------------------------------------------------ cameras
    def cameras(self, subject: str) -> dict[str, Camera]:
        """The 4 cameras of `subject` by id, from cameras.h5 (R, T in mm)."""
        if self._cameras is None:
            self._cameras = read_cameras_h5(require(self.root / "cameras.h5", "H36M camera parameters, "
                                                    "subject<k>/camera<c>/{R,T,f,c,k,p,Name}"))
        try:
            return self._cameras[subject]
        except KeyError:
            raise DatasetError(f"{self.root / 'cameras.h5'}: no cameras for {subject}") from None

    # ------------------------------------------------------------------ loading
    def world_joints(self, ref: SequenceRef) -> np.ndarray:
        """(T, 17, 3) world mm of the sequence (cached: the 4 cameras share one file)."""
        path = self.root / ref.source if ref.source else self._pose_files(ref.subject).get(ref.action)
        if path is None:
            raise DatasetError(f"{self.root / ref.subject}: no 3D file for action {ref.action!r}")
        key = str(path)
        if key not in self._world:
            raw = read_cdf_pose(path) if path.suffix == ".cdf" else read_h5_pose(path)
            self._world = {key: to_h36m17(raw, "h36m32")}   # keep one: the next ref is usually a sibling
        return self._world[key]

    def load(self, ref: SequenceRef) -> Sequence:
        cams = self.cameras(ref.subject)
        if ref.camera not in cams:
            raise DatasetError(f"{self.root / 'cameras.h5'}: {ref.subject} has no camera {ref.camera}")
        cam = cams[ref.camera]
        world = self.world_joints(ref)
        joints = cam.world_to_camera(world.astype(np.float64)).astype(np.float32)
        video = self._video(ref)
        step, _ = self._frame_step(len(world), video)
        kp, note = self._detections(ref, len(world))
        return Sequence("h36m", ref.subject, ref.action, ref.camera, joints, cam,
                        np.arange(len(world), dtype=np.int64) * step, RELEASE_FPS / step,
                        IMAGE_SIZE.get(ref.camera, (cam.width, cam.height)), video_path=video,
                        keypoints_2d=kp, confidence=None, detections_note=note,
                        extras={"frame_step": step})

    def _video(self, ref: SequenceRef) -> Path | None:
        for name in action_spellings(ref.action, " "):
            p = self.root / ref.subject / "Videos" / f"{name}.{ref.camera}.mp4"
            if p.exists():
                return p
        return None

    def _detections(self, ref: SequenceRef, n: int) -> tuple[np.ndarray | None, str]:
        folder = self.root / ref.subject / "StackedHourglass"
        for name in action_spellings(ref.action, "_"):
            path = folder / f"{name}.{ref.camera}.h5"
            if path.exists():
                poses = read_h5_dataset(path, "poses", (None, 16, 2), "SH detections (N, 16, 2) px")
                if len(poses) != n:
                    raise DatasetError(f"{path}: {len(poses)} detection frames, but the 3D file has {n}")
                return to_h36m17(poses.astype(np.float32), "mpii16"), SH_NOTE
        return None, f"no Stacked-Hourglass detection file for this sequence and camera in {folder}"

    # ------------------------------------------------------------------ frame rate
    def _frame_step(self, n_poses: int, video: Path | None) -> tuple[int, str]:
        if self.frame_step is not None:
            return int(self.frame_step), "given"
        if video is not None:
            n_video = video_frame_count(video)
            if n_video:
                return max(1, round(n_video / n_poses)), f"video {video.name} has {n_video} frames"
        if self._inferred_step is None:
            self._inferred_step = self._infer_step()
        return self._inferred_step

    def _infer_step(self) -> tuple[int, str]:
        counts = [pose_frame_count(p) for s in self._subjects() for p in self._pose_files(s).values()]
        if not counts:
            return 1, "no sequences"
        shortest = min(counts)
        if shortest < 900:
            return DECIMATED_STEP, (f"shortest sequence has {shortest} frames; the 50 fps release has none "
                                    f"under {SHORTEST_RELEASE_SEQUENCE}: taken as the {DECIMATED_STEP}x-decimated copy")
        return 1, f"shortest sequence has {shortest} frames: the 50 fps release"

    def describe(self) -> dict:
        d = super().describe()
        if self.root_found():
            step, why = (self.frame_step, "given") if self.frame_step else self._frame_step(1, None)
            d["frame_step"] = f"{step} ({why})"
        return d


# ---------------------------------------------------------------------------------- readers
def read_h5_dataset(path: Path, name: str, shape: tuple, what: str) -> np.ndarray:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if name not in f:
                raise DatasetError(f"{path}: no dataset {name!r} ({what}); has {sorted(f.keys())}")
            arr = f[name][()]
    except OSError as e:
        raise DatasetError(f"{path}: not a readable HDF5 file ({e})") from None
    return check_array(arr, shape, path, f"{name!r}")


def read_h5_pose(path: Path) -> np.ndarray:
    """(N, 32, 3) world mm from a 3d-pose-baseline `3D_positions` (96, N) file."""
    arr = read_h5_dataset(path, "3D_positions", (96, None), "3D positions (96, N) = 32 joints x 3, mm")
    return arr.T.reshape(-1, 32, 3)


def read_cdf_pose(path: Path) -> np.ndarray:
    """(N, 32, 3) world mm from an official D3_Positions `.cdf` (variable `Pose`, N x 96)."""
    import cdflib

    try:
        pose = np.asarray(cdflib.CDF(str(path)).varget("Pose"))
    except Exception as e:   # cdflib raises bare errors for unreadable files / missing variables
        raise DatasetError(f"{path}: cannot read variable 'Pose' from the CDF ({type(e).__name__}: {e})") from None
    if pose.size == 0 or pose.shape[-1] != 96:
        raise DatasetError(f"{path}: 'Pose' has shape {pose.shape}, expected (1, N, 96) or (N, 96)")
    return pose.reshape(-1, 32, 3)


def pose_frame_count(path: Path) -> int:
    if path.suffix == ".cdf":
        return len(read_cdf_pose(path))
    import h5py

    with h5py.File(path, "r") as f:
        return int(f["3D_positions"].shape[1])


def read_cameras_h5(path: Path) -> dict[str, dict[str, Camera]]:
    """{"S1": {"54138969": Camera, ...}, ...} from a 3d-pose-baseline cameras.h5."""
    import h5py

    out: dict[str, dict[str, Camera]] = {}
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DatasetError(f"{path}: not a readable HDF5 file ({e})") from None
    with f:
        for group in f:
            m = re.fullmatch(r"subject(\d+)", group)
            if not m:
                continue
            for cgroup in f[group]:
                g = f[group][cgroup]
                where = f"{path}:{group}/{cgroup}"
                try:
                    vals = {k: np.asarray(g[k][()], np.float64) for k in ("R", "T", "f", "c", "k", "p")}
                    name = bytes(np.asarray(g["Name"][()]).ravel().astype(np.uint8)).decode().strip("\x00 ")
                except KeyError as e:
                    raise DatasetError(f"{where}: missing {e} (needs R, T, f, c, k, p, Name)") from None
                check_array(vals["R"], (3, 3), where, "R")
                w, h = IMAGE_SIZE.get(name, (0, 0))
                out.setdefault(f"S{m.group(1)}", {})[name] = Camera(
                    R=vals["R"].T, T=vals["T"].ravel(), f=vals["f"].ravel(), c=vals["c"].ravel(),
                    k=vals["k"].ravel(), p=vals["p"].ravel(), width=w, height=h, name=name)
    return out


def video_frame_count(path: Path) -> int:
    """Frames in a video from its header (0 if unknown)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()
