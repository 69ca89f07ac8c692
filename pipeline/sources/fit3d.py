"""Fit3D (AIFit, CVPR 2021): fitness exercises filmed by 4 cameras at 50 fps, 900 x 900.

Layout (as the imar_vision_datasets_tools read it):
    <root>/train/<subject>/joints3d_25/<action>.json                {"joints3d_25": N x 25 x 3} world metres
    <root>/train/<subject>/camera_parameters/<camera>/<action>.json {"extrinsics": {"R": 3x3, "T": 1x3},
                                                                     "intrinsics_wo_distortion": {"f", "c"},
                                                                     "intrinsics_w_distortion": {"f", "c", "k", "p"}}
    <root>/train/<subject>/videos/<camera>/<action>.mp4
X_cam = R (X_world - T), so T is the camera centre; the distortion model is Human3.6M's (same
formula as pipeline.camera.project). Poses and video frames are aligned one to one.

joints3d_25: the first 17 joints are Human3.6M-17 in H36M order (the tools' limb list joins them
exactly as H36M-17 and hangs the other 8, feet and hand points, off the ankles and wrists);
skeleton.py's "fit3d25" map keeps those 17. Each load checks left/right against the facing
direction (`extras["left_right_agreement"]`, ~1 when the order is as assumed, ~0 if mirrored).

Split: the test subjects' ground truth is not public, so the paper's protocol trains on
s03-s09 and tests on the held-out training subjects s10 and s11 ("test" split here).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from auglift.core.camera import Camera
from auglift.core.skeleton import to_h36m17

from .base import DatasetAdapter, DatasetError, Sequence, check_array, left_right_agreement, require

CAMERAS = ("50591643", "58860488", "60457274", "65906101")
FPS = 50.0
IMAGE_SIZE = (900, 900)


class Fit3DAdapter(DatasetAdapter):
    name = "fit3d"
    dirnames = ("fit3d", "Fit3D")
    SPLITS = {"train": ("s03", "s04", "s05", "s06", "s07", "s08", "s09"), "test": ("s10", "s11")}
    description = "Fit3D: train/s*/joints3d_25/*.json, camera_parameters/<cam>/*.json, videos/<cam>/*.mp4"

    def __init__(self, root, distortion: bool = True):
        super().__init__(root)
        self.distortion = distortion
        self._joints: tuple[str, np.ndarray] | None = None

    def _looks_like_root(self, path: Path) -> bool:
        return any(path.glob("train/s*/joints3d_25"))

    def _list(self, subjects):
        refs = []
        for folder in sorted((self.root / "train").glob("s*/joints3d_25")):
            subject = folder.parent.name
            if subjects is not None and subject not in subjects:
                continue
            for j in sorted(folder.glob("*.json")):
                refs += [self.ref(subject, j.stem, cam) for cam in CAMERAS
                         if (folder.parent / "camera_parameters" / cam / j.name).exists()]
        return refs

    def world_joints(self, subject: str, action: str) -> np.ndarray:
        """(T, 25, 3) world metres (cached: the 4 cameras share one file)."""
        path = require(self.root / "train" / subject / "joints3d_25" / f"{action}.json", "Fit3D joints3d_25")
        if self._joints is None or self._joints[0] != str(path):
            data = read_json(path)
            if "joints3d_25" not in data:
                raise DatasetError(f"{path}: no key 'joints3d_25' (has {sorted(data)})")
            self._joints = (str(path), check_array(np.asarray(data["joints3d_25"], np.float64),
                                                   (None, 25, 3), path, "joints3d_25"))
        return self._joints[1]

    def load(self, ref) -> Sequence:
        world = self.world_joints(ref.subject, ref.action)
        cam_path = self.root / "train" / ref.subject / "camera_parameters" / ref.camera / f"{ref.action}.json"
        cam = read_camera(require(cam_path, "Fit3D camera parameters"), ref.camera, self.distortion)
        joints = cam.world_to_camera(to_h36m17(world * 1000.0, "fit3d25")).astype(np.float32)
        video = self.root / "train" / ref.subject / "videos" / ref.camera / f"{ref.action}.mp4"
        return Sequence("fit3d", ref.subject, ref.action, ref.camera, joints, cam, np.arange(len(world)), FPS,
                        IMAGE_SIZE, video_path=video if video.exists() else None,
                        detections_note="Fit3D ships no 2D detections",
                        extras={"left_right_agreement": left_right_agreement(joints)})


def read_json(path: Path) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: not valid JSON ({e})") from None


def read_camera(path: Path, name: str, distortion: bool = True) -> Camera:
    """A Fit3D camera JSON -> Camera in mm."""
    data = read_json(path)
    try:
        ext = data["extrinsics"]
        intr = data["intrinsics_w_distortion" if distortion else "intrinsics_wo_distortion"]
        R = check_array(np.asarray(ext["R"], np.float64), (3, 3), path, "extrinsics.R")
        T = np.asarray(ext["T"], np.float64).ravel()
        f, c = np.asarray(intr["f"], np.float64).ravel(), np.asarray(intr["c"], np.float64).ravel()
        k = np.asarray(intr.get("k", np.zeros(3)), np.float64).ravel()
        p = np.asarray(intr.get("p", np.zeros(2)), np.float64).ravel()
    except (KeyError, TypeError) as e:
        raise DatasetError(f"{path}: missing {e} (needs extrinsics {{R, T}} and "
                           "intrinsics_w_distortion {f, c, k, p} / intrinsics_wo_distortion {f, c})") from None
    if T.shape != (3,) or f.shape != (2,) or c.shape != (2,) or k.shape != (3,) or p.shape != (2,):
        raise DatasetError(f"{path}: camera arrays have shapes T{T.shape} f{f.shape} c{c.shape} k{k.shape} "
                           f"p{p.shape}, expected T(3) f(2) c(2) k(3) p(2)")
    return Camera(R=R, T=T * 1000.0, f=f, c=c, k=k, p=p, width=IMAGE_SIZE[0], height=IMAGE_SIZE[1], name=name)
