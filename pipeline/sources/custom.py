"""Any mocap / video dataset, converted to one small documented format (see CUSTOM_FORMAT.md).

    <root>/<subject>/<action>.npz      or      <root>/<subject>/<action>.zarr/

One file per (subject, action) holds the 3D joints in any layout of core.skeleton, world or
camera coordinates, mm or m, and every camera that saw them. `write_custom_sequence` writes it;
the adapter reads it back as one `Sequence` per camera.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from auglift.core.camera import Camera
from auglift.core.skeleton import SKELETON_MAPS, confidence_to_h36m17, to_h36m17

from .base import DatasetAdapter, DatasetError, Sequence, check_array

STRING_FIELDS = ("skeleton", "units", "coords", "camera_names", "video", "frames", "keypoints_skeleton")
ARRAY_FIELDS = ("joints_3d", "R", "T", "f", "c", "k", "p", "image_size", "fps", "frame_index",
                "keypoints_2d", "keypoint_confidence")
UNITS = {"mm": 1.0, "m": 1000.0}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
UNREADABLE_CAMERA = "unreadable"  # camera of the one sequence listed for a file that does not validate


class CustomAdapter(DatasetAdapter):
    name = "custom"
    dirnames = ("custom",)
    SPLITS = {}
    description = "custom: <root>/<subject>/<action>.npz or .zarr (pipeline/sources/CUSTOM_FORMAT.md)"

    def __init__(self, root, splits: dict[str, list[str]] | None = None):
        super().__init__(root)
        self._splits = {k: list(v) for k, v in (splits or {}).items()}
        self._cache: tuple[str, dict] | None = None

    def _files(self, root: Path) -> list[Path]:
        return sorted(p for p in [*root.glob("*/*.npz"), *root.glob("*/*.zarr")] if is_custom_file(p))

    def _looks_like_root(self, path: Path) -> bool:
        return bool(self._files(path))

    @property
    def splits(self) -> dict[str, list[str]]:
        """Given splits, or one split "all" of every subject folder found."""
        if self._splits:
            return dict(self._splits)
        return {"all": sorted({p.parent.name for p in self._files(self.root)})}

    def _list(self, subjects):
        refs = []
        for path in self._files(self.root):
            subject = path.parent.name
            if subjects is not None and subject not in subjects:
                continue
            try:
                names = self._read(path)["camera_names"]
            except DatasetError:  # this file fails alone, when its sequence is loaded; the others run
                names = [UNREADABLE_CAMERA]
            refs += [self.ref(subject, path.stem, name, str(path.relative_to(self.root))) for name in names]
        return refs

    def _read(self, path: Path) -> dict:
        if self._cache is None or self._cache[0] != str(path):
            self._cache = (str(path), read_custom_file(path))
        return self._cache[1]

    def load(self, ref) -> Sequence:
        path = self.root / ref.source
        d = self._read(path)
        if ref.camera not in d["camera_names"]:
            raise DatasetError(f"{path}: no camera {ref.camera!r} (has {d['camera_names']})")
        i = d["camera_names"].index(ref.camera)
        scale = UNITS[d["units"]]
        joints = to_h36m17(d["joints_3d"].astype(np.float64) * scale, d["skeleton"])
        cam = Camera(R=d["R"][i], T=d["T"][i] * scale, f=d["f"][i], c=d["c"][i], k=d["k"][i], p=d["p"][i],
                     width=int(d["image_size"][i][0]), height=int(d["image_size"][i][1]), name=ref.camera)
        if d["coords"] == "world":
            joints = cam.world_to_camera(joints)
        frame_index = d["frame_index"]
        video, images = _frames_of(path, d, i, frame_index)
        kp = conf = None
        note = "no 2D keypoints in the file"
        if d.get("keypoints_2d") is not None:
            src = d["keypoints_skeleton"]
            kp = to_h36m17(d["keypoints_2d"][i].astype(np.float64), src).astype(np.float32)
            if d.get("keypoint_confidence") is not None:
                conf = confidence_to_h36m17(d["keypoint_confidence"][i], src).astype(np.float32)
            note = f"2D keypoints from the file ({src} mapped to H36M-17)" + ("" if conf is not None else ", no confidence")
        return Sequence("custom", ref.subject, ref.action, ref.camera, joints.astype(np.float32), cam, frame_index,
                        float(d["fps"]), (cam.width, cam.height), video_path=video, image_paths=images,
                        keypoints_2d=kp, confidence=conf, detections_note=note)


def _frames_of(path: Path, d: dict, i: int, frame_index: np.ndarray):
    def resolve(p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else path.parent / q

    if d.get("video") and d["video"][i]:
        return resolve(d["video"][i]), None
    if d.get("frames") and d["frames"][i]:
        folder = resolve(d["frames"][i])
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
        if len(files) <= int(frame_index.max()):
            raise DatasetError(f"{folder}: {len(files)} images, but frame_index goes up to {int(frame_index.max())}")
        return None, [files[int(k)] for k in frame_index]
    return None, None


# ---------------------------------------------------------------------------------- file i/o
def is_custom_file(path: Path) -> bool:
    """Whether `path` looks like a custom-format file (has joints_3d and skeleton), cheaply."""
    if path.suffix == ".zarr":
        return (path / "joints_3d").is_dir() and (path / "zarr.json").exists()

    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False
    return {"joints_3d.npy", "skeleton.npy"} <= names

def read_custom_file(path: Path) -> dict:
    """Read and validate one custom-format file (.npz or .zarr folder)."""
    raw: dict = {}
    if path.suffix == ".zarr":
        import zarr

        try:
            g = zarr.open_group(str(path), mode="r")
        except Exception as e:
            raise DatasetError(f"{path}: not a readable zarr group ({type(e).__name__}: {e})") from None
        raw = {k: np.asarray(g[k][...]) for k in g.array_keys()}
        raw.update({k: v for k, v in g.attrs.items() if k in STRING_FIELDS or k == "fps"})
    else:
        try:
            with np.load(path, allow_pickle=False) as z:
                raw = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise DatasetError(f"{path}: not a readable npz without pickles ({e})") from None
    return validate(raw, path)


def _text(v) -> str:
    return str(np.asarray(v).item()) if np.ndim(v) == 0 else str(v)


def _texts(v) -> list[str]:
    return [str(x) for x in np.atleast_1d(np.asarray(v))]


def validate(raw: dict, path: Path | str) -> dict:
    unknown = sorted(set(raw) - set(STRING_FIELDS) - set(ARRAY_FIELDS))
    if unknown:
        raise DatasetError(f"{path}: unknown fields {unknown} (see pipeline/sources/CUSTOM_FORMAT.md)")
    for k in ("joints_3d", "skeleton", "units", "coords", "camera_names", "f", "c", "image_size", "fps"):
        if k not in raw:
            raise DatasetError(f"{path}: missing field {k!r} (see pipeline/sources/CUSTOM_FORMAT.md)")
    d: dict = {"skeleton": _text(raw["skeleton"]), "units": _text(raw["units"]), "coords": _text(raw["coords"]),
               "camera_names": _texts(raw["camera_names"]), "fps": float(np.asarray(raw["fps"]).item())}
    if d["skeleton"] not in SKELETON_MAPS:
        raise DatasetError(f"{path}: skeleton {d['skeleton']!r} unknown; known: {sorted(SKELETON_MAPS)}")
    if d["units"] not in UNITS:
        raise DatasetError(f"{path}: units {d['units']!r}, expected 'mm' or 'm'")
    if d["coords"] not in ("world", "camera"):
        raise DatasetError(f"{path}: coords {d['coords']!r}, expected 'world' or 'camera'")
    n_src = SKELETON_MAPS[d["skeleton"]].num_source_joints
    joints = check_array(raw["joints_3d"], (None, n_src, 3), path, f"joints_3d ({d['skeleton']})")
    t, n_cam = len(joints), len(d["camera_names"])
    if d["coords"] == "camera" and n_cam != 1:
        raise DatasetError(f"{path}: camera-coordinate joints need exactly one camera, got {n_cam}")
    d["joints_3d"] = joints
    defaults = {"R": np.tile(np.eye(3), (n_cam, 1, 1)), "T": np.zeros((n_cam, 3)),
                "k": np.zeros((n_cam, 3)), "p": np.zeros((n_cam, 2))}
    if d["coords"] == "world" and not ("R" in raw and "T" in raw):
        raise DatasetError(f"{path}: world-coordinate joints need camera extrinsics R and T")
    for k, tail in (("R", (3, 3)), ("T", (3,)), ("f", (2,)), ("c", (2,)), ("k", (3,)), ("p", (2,)),
                    ("image_size", (2,))):
        v = raw.get(k, defaults.get(k))
        d[k] = check_array(v, (n_cam, *tail), path, k).astype(np.float64)
    d["frame_index"] = check_array(raw.get("frame_index", np.arange(t)), (t,), path, "frame_index").astype(np.int64)
    for k in ("video", "frames"):
        if k in raw:
            d[k] = _texts(raw[k])
            if len(d[k]) != n_cam:
                raise DatasetError(f"{path}: {k} lists {len(d[k])} entries for {n_cam} cameras")
    if "keypoints_2d" in raw:
        src = _text(raw.get("keypoints_skeleton", d["skeleton"]))
        if src not in SKELETON_MAPS:
            raise DatasetError(f"{path}: keypoints_skeleton {src!r} unknown")
        k2 = SKELETON_MAPS[src].num_source_joints
        d["keypoints_skeleton"] = src
        d["keypoints_2d"] = check_array(raw["keypoints_2d"], (n_cam, t, k2, 2), path, "keypoints_2d")
        if "keypoint_confidence" in raw:
            d["keypoint_confidence"] = check_array(raw["keypoint_confidence"], (n_cam, t, k2), path,
                                                   "keypoint_confidence")
    return d


def write_custom_sequence(path: str | Path, joints_3d, *, skeleton: str, units: str, coords: str,
                          camera_names, f, c, image_size, fps: float, R=None, T=None, k=None, p=None,
                          frame_index=None, video=None, frames=None, keypoints_2d=None,
                          keypoints_skeleton: str | None = None, keypoint_confidence=None) -> Path:
    """Write one custom-format sequence (.npz, or a .zarr folder if `path` ends in .zarr).

    The input is validated as the reader would, so a file this writes always loads.
    """
    path = Path(path)
    if path.suffix not in (".npz", ".zarr"):
        raise ValueError(f"{path}: a custom sequence file ends in .npz or .zarr")
    fields = {"joints_3d": joints_3d, "skeleton": skeleton, "units": units, "coords": coords,
              "camera_names": list(camera_names), "f": f, "c": c, "image_size": image_size, "fps": fps,
              "R": R, "T": T, "k": k, "p": p, "frame_index": frame_index, "video": video, "frames": frames,
              "keypoints_2d": keypoints_2d, "keypoints_skeleton": keypoints_skeleton,
              "keypoint_confidence": keypoint_confidence}
    fields = {name: v for name, v in fields.items() if v is not None}
    arrays = {name: np.asarray(v) for name, v in fields.items() if name in ARRAY_FIELDS}
    strings = {name: v for name, v in fields.items() if name in STRING_FIELDS}
    validate({**arrays, **strings}, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".zarr":
        import zarr

        g = zarr.open_group(str(path), mode="w")
        for name, arr in arrays.items():
            g.create_array(name, data=arr)
        g.attrs.update({name: (list(v) if not isinstance(v, str) else v) for name, v in strings.items()})
    else:
        np.savez(path, **arrays, **{name: np.asarray(v, dtype=str) for name, v in strings.items()})
    return path
