"""MPI-INF-3DHP, training and test layouts.

Training (MATLAB v5 mat files, read with scipy):
    <root>/S<k>/Seq<j>/annot.mat     cells per camera: `annot2` (N, 56) px, `annot3` (N, 84) camera mm,
                                     `univ_annot3` (N, 84) (height-normalised); `frames` (N, 1);
                                     `cameras` (the camera id of each cell)
    <root>/S<k>/Seq<j>/camera.calibration   "Skeletool Camera Calibration File V1.0": per camera
                                     `name`, `size` W H, `intrinsic` 4x4 and `extrinsic` 4x4 row-major
                                     ([R | t] world->camera, t in mm)
    <root>/S<k>/Seq<j>/imageSequence/video_<cam>.avi
Test (MATLAB v7.3 = HDF5, read with h5py; arrays appear transposed relative to MATLAB):
    <root>/TS<k>/annot_data.mat      `annot2` (N, 1, 17, 2), `annot3` / `univ_annot3` (N, 1, 17, 3)
                                     camera mm, `valid_frame` (N, 1), `activity_annotation` (N, 1)
    <root>/TS<k>/imageSequence/img_%06d.jpg   (1-based)
    (the test folders may also sit under <root>/mpi_inf_3dhp_test_set/)

Training joints are the 28-joint set, test joints the 17-joint test order; both map to H36M-17
through core.skeleton. Training cameras default to the 8 of most works (0, 1, 2, 4, 5, 6, 7,
8: the chest-height ring, used by VNect and e.g. the mmpose and MeTRAbs preprocessing); pass
`cameras=range(14)` for all. The test set ships no calibration: its pinhole intrinsics are fitted
by least squares to its own annot2/annot3 pairs (`extras["intrinsics_fit_rms_px"]` reports the
fit; TS5/TS6 are distorted outdoor cameras, so their residual is larger). Invalid test frames
(`valid_frame` == 0) are dropped; `frame_index` keeps the original 0-based frame numbers.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from auglift.core.camera import Camera
from auglift.core.skeleton import to_h36m17

from .base import DatasetAdapter, DatasetError, Sequence, check_array, require

TRAIN_CAMERAS = (0, 1, 2, 4, 5, 6, 7, 8)
TRAIN_FPS = 25.0
TEST_FPS = {"TS1": 25.0, "TS2": 25.0, "TS3": 25.0, "TS4": 25.0, "TS5": 50.0, "TS6": 50.0}
TEST_IMAGE_SIZE = {"TS1": (2048, 2048), "TS2": (2048, 2048), "TS3": (2048, 2048), "TS4": (2048, 2048),
                   "TS5": (1920, 1080), "TS6": (1920, 1080)}
TEST_FOLDER = "mpi_inf_3dhp_test_set"
TEST_ACTION, TEST_CAMERA = "test", "0"
ACTIVITIES = ("Stand/Walk", "Exercise", "Sit on Chair", "Reach/Crouch", "On Floor", "Sports", "Misc.")


class MPIINF3DHPAdapter(DatasetAdapter):
    name = "3dhp"
    dirnames = ("mpi_inf_3dhp", "3dhp", "mpi-inf-3dhp")
    SPLITS = {"train": tuple(f"S{i}" for i in range(1, 9)), "test": tuple(f"TS{i}" for i in range(1, 7))}
    description = ("MPI-INF-3DHP: S*/Seq*/annot.mat + camera.calibration (train), "
                   "TS*/annot_data.mat (test, optionally under mpi_inf_3dhp_test_set/)")

    def __init__(self, root, cameras=TRAIN_CAMERAS, annotation: str = "annot3"):
        super().__init__(root)
        if annotation not in ("annot3", "univ_annot3"):
            raise ValueError(f"3dhp: annotation must be 'annot3' or 'univ_annot3', got {annotation!r}")
        self.train_cameras = tuple(int(c) for c in cameras)
        self.annotation = annotation
        self._mat: tuple[str, dict] | None = None

    def _looks_like_root(self, path: Path) -> bool:
        return any(path.glob("S*/Seq*/annot.mat")) or bool(self._test_dirs(path))

    @staticmethod
    def _test_dirs(root: Path) -> dict[str, Path]:
        out = {}
        for base in (root / TEST_FOLDER, root):
            for p in base.glob("TS*"):
                if re.fullmatch(r"TS\d+", p.name) and (p / "annot_data.mat").exists():
                    out.setdefault(p.name, p)
        return out

    def _list(self, subjects):
        refs = []
        for annot in self.root.glob("S*/Seq*/annot.mat"):
            subject, seq = annot.parent.parent.name, annot.parent.name
            if subjects is None or subject in subjects:
                refs += [self.ref(subject, seq, str(c), str(annot.parent.relative_to(self.root)))
                         for c in self.train_cameras]
        for name, folder in self._test_dirs(self.root).items():
            if subjects is None or name in subjects:
                refs.append(self.ref(name, TEST_ACTION, TEST_CAMERA, str(folder.relative_to(self.root))))
        return refs

    def load(self, ref) -> Sequence:
        folder = self.root / ref.source if ref.source else None
        if ref.subject.startswith("TS"):
            return self._load_test(ref, folder or self._test_dirs(self.root).get(ref.subject))
        return self._load_train(ref, folder or self.root / ref.subject / ref.action)

    # ------------------------------------------------------------------ training
    def _train_mat(self, path: Path) -> dict:
        if self._mat is None or self._mat[0] != str(path):
            self._mat = (str(path), read_train_annot(path, self.annotation))
        return self._mat[1]

    def _load_train(self, ref, folder: Path) -> Sequence:
        annot_path = require(folder / "annot.mat", "3DHP training annotations")
        mat = self._train_mat(annot_path)
        cam_id = int(ref.camera)
        ids = mat["cameras"]
        if cam_id not in ids:
            raise DatasetError(f"{annot_path}: no camera {cam_id} (has {ids})")
        cell = np.asarray(mat[self.annotation][ids.index(cam_id)], np.float64)
        check_array(cell, (None, 84), annot_path, f"{self.annotation} of camera {cam_id}")
        joints = to_h36m17(cell.reshape(-1, 28, 3), "3dhp28").astype(np.float32)
        frames = mat["frames"]
        if len(frames) != len(joints):
            raise DatasetError(f"{annot_path}: {len(frames)} frame numbers for {len(joints)} poses")
        calib = read_calibration(require(folder / "camera.calibration", "3DHP camera calibration"))
        if cam_id not in calib:
            raise DatasetError(f"{folder / 'camera.calibration'}: no camera {cam_id}")
        cam = calib[cam_id]
        video = folder / "imageSequence" / f"video_{cam_id}.avi"
        return Sequence("3dhp", ref.subject, ref.action, ref.camera, joints, cam, frames, TRAIN_FPS,
                        (cam.width, cam.height), video_path=video if video.exists() else None,
                        detections_note="the training set ships no 2D detections (annot2 is the GT projection)",
                        extras={"annotation": self.annotation})

    # ------------------------------------------------------------------ test
    def _load_test(self, ref, folder: Path | None) -> Sequence:
        if folder is None:
            raise DatasetError(f"{self.root}: no {ref.subject}/annot_data.mat (test set)")
        path = require(folder / "annot_data.mat", "3DHP test annotations (MATLAB v7.3)")
        ann = read_test_annot(path, self.annotation)
        valid = np.flatnonzero(ann["valid_frame"])
        if len(valid) == 0:
            raise DatasetError(f"{path}: no frame has valid_frame == 1")
        joints3 = ann[self.annotation][valid]
        # fit on annot3 (the metric GT) even when univ_annot3 is loaded: annot2 projects annot3
        f, c, rms = fit_intrinsics(ann["annot3"][valid], ann["annot2"][valid])
        w, h = TEST_IMAGE_SIZE.get(ref.subject, (int(round(2 * c[0])), int(round(2 * c[1]))))
        cam = Camera(R=np.eye(3), T=np.zeros(3), f=f, c=c, width=w, height=h, name=f"{ref.subject}-camera")
        images = [folder / "imageSequence" / f"img_{i + 1:06d}.jpg" for i in valid]
        activity = ann.get("activity_annotation")
        extras = {"annotation": self.annotation, "intrinsics_fit_rms_px": rms}
        if activity is not None:
            extras["activity"] = activity[valid].astype(np.int64)   # 1-based index into ACTIVITIES
        return Sequence("3dhp", ref.subject, ref.action, ref.camera,
                        to_h36m17(joints3, "3dhp17").astype(np.float32), cam, valid,
                        TEST_FPS.get(ref.subject, 25.0), (w, h),
                        image_paths=images if images[0].parent.is_dir() else None,
                        detections_note="the test set ships no 2D detections (annot2 is the GT projection)",
                        extras=extras)


# ---------------------------------------------------------------------------------- readers
def read_train_annot(path: Path, key: str = "annot3") -> dict:
    """{key: list of (N, 84) per cell, "frames": (N,), "cameras": [ids]} from a v5 annot.mat."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path), variable_names=[key, "frames", "cameras"])
    except Exception as e:   # scipy raises ValueError/TypeError/NotImplementedError on bad input
        raise DatasetError(f"{path}: not a readable MATLAB v5 file ({type(e).__name__}: {e})") from None
    for k in (key, "frames"):
        if k not in mat:
            raise DatasetError(f"{path}: no variable {k!r} (expected annot2/annot3/univ_annot3 cells, frames)")
    cells = [np.asarray(c) for c in np.asarray(mat[key], dtype=object).ravel()]
    ids = [int(v) for v in np.asarray(mat["cameras"]).ravel()] if "cameras" in mat else list(range(len(cells)))
    if len(ids) != len(cells):
        raise DatasetError(f"{path}: {len(cells)} {key} cells but {len(ids)} camera ids")
    return {key: cells, "frames": np.asarray(mat["frames"]).ravel().astype(np.int64), "cameras": ids}


def read_test_annot(path: Path, key: str = "annot3") -> dict:
    """Arrays of a v7.3 annot_data.mat: annot2 (N, 17, 2), annot3 / key (N, 17, 3), valid_frame (N,)."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DatasetError(f"{path}: not a readable MATLAB v7.3 (HDF5) file ({e})") from None
    out = {}
    with f:
        for name, dim in (("annot2", 2), ("annot3", 3), (key, 3)):
            if name not in f:
                raise DatasetError(f"{path}: no variable {name!r}; has {sorted(f.keys())}")
            arr = np.asarray(f[name][()], np.float64)
            if arr.ndim == 4 and arr.shape[1] == 1:
                arr = arr[:, 0]
            out[name] = check_array(arr, (None, 17, dim), path, f"{name!r} (after dropping the singleton axis)")
        if "valid_frame" not in f:
            raise DatasetError(f"{path}: no variable 'valid_frame'")
        out["valid_frame"] = np.asarray(f["valid_frame"][()]).ravel() > 0
        if "activity_annotation" in f:
            out["activity_annotation"] = np.asarray(f["activity_annotation"][()]).ravel()
    n = len(out["annot3"])
    for name, arr in out.items():
        if len(arr) != n:
            raise DatasetError(f"{path}: {name!r} has {len(arr)} frames, annot3 has {n}")
    return out


def read_calibration(path: Path) -> dict[int, Camera]:
    """Cameras of a "Skeletool Camera Calibration File V1.0" (mm): {camera id: Camera}."""
    lines = path.read_text().splitlines()
    if not lines or not lines[0].startswith("Skeletool Camera Calibration File"):
        raise DatasetError(f"{path}: not a Skeletool camera calibration file (first line {lines[:1]})")
    blocks: list[dict[str, list[str]]] = []
    for line in lines[1:]:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "name":
            blocks.append({"name": parts[1:]})
        elif blocks:
            blocks[-1][parts[0]] = parts[1:]
    cams = {}
    for b in blocks:
        try:
            cid = int(b["name"][0])
            K = np.array(b["intrinsic"], float).reshape(4, 4)
            E = np.array(b["extrinsic"], float).reshape(4, 4)
            w, h = (int(float(v)) for v in b["size"][:2])
        except (KeyError, ValueError, IndexError) as e:
            raise DatasetError(f"{path}: camera block {b.get('name')} malformed ({type(e).__name__}: {e}); "
                               "needs name, size, intrinsic (16 numbers), extrinsic (16 numbers)") from None
        R, t = E[:3, :3], E[:3, 3]
        cams[cid] = Camera(R=R, T=-R.T @ t, f=np.array([K[0, 0], K[1, 1]]), c=np.array([K[0, 2], K[1, 2]]),
                           width=w, height=h, name=str(cid))
    return cams


def fit_intrinsics(joints3: np.ndarray, joints2: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Pinhole f, c (px) that best map camera points (..., 3) to pixels (..., 2); and the rms px."""
    X = np.asarray(joints3, np.float64).reshape(-1, 3)
    uv = np.asarray(joints2, np.float64).reshape(-1, 2)
    ok = np.isfinite(X).all(1) & np.isfinite(uv).all(1) & (X[:, 2] > 0)
    if ok.sum() < 3:
        raise DatasetError("too few valid 2D/3D pairs to fit the camera intrinsics")
    f, c, res = np.zeros(2), np.zeros(2), []
    for a in range(2):
        A = np.stack([X[ok, a] / X[ok, 2], np.ones(ok.sum())], 1)
        (f[a], c[a]), *_ = np.linalg.lstsq(A, uv[ok, a], rcond=None)
        res.append(A @ np.array([f[a], c[a]]) - uv[ok, a])
    return f, c, float(np.sqrt(np.mean(np.square(res))))
