"""Adapters for frames without a dataset around them: a folder of videos, folders of images, and
the shared real sample frames. They list and load sequences like every other adapter (registry
in `base.DATASETS`), so precompute treats them alike; what differs is only where frames, fps and
ground truth come from.

- `videos`: every video file directly in the root (default `<data>/videos`); one sequence per
  file, key `videos/<file stem>/video/0`, fps read from the container.
- `images`: every sub-folder of the root holding images is one sequence (or the root itself, if
  it holds images), frames in file-name order; key `images/<folder>/frames/0`.
- `samples`: the shared real H36M / MPI-INF-3DHP sample frames (default `<data>/samples`). One
  sequence per image (each is a single frame of a different sequence), its person chosen by the
  image's ground-truth 2D (`part`), carrying the image's ground-truth 3D (`S`, camera metres ->
  mm, 3DHP order mapped to H36M-17) and the camera intrinsics of the sample pickles. Keys:
  `samples/h36m-S1/Directions_1-000001/54138969`, `samples/3dhp-TS1/test-002001/0`,
  `samples/3dhp-S4/Seq2-001033/0`.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

from auglift.core.skeleton import to_h36m17
from auglift.pipeline.frames.images import list_images
from auglift.pipeline.frames.video import VIDEO_SUFFIXES, FrameSourceError, list_videos, probe_video
from auglift.pipeline.safe_pickle import load_pickle

from .base import DatasetAdapter, DatasetError, Sequence, SequenceRef


class VideosAdapter(DatasetAdapter):
    name = "videos"
    dirnames = ("videos",)
    description = f"a folder of video files ({', '.join(VIDEO_SUFFIXES)})"

    def _looks_like_root(self, path: Path) -> bool:
        return path.is_dir() and bool(list_videos(path))

    def _list(self, subjects: list[str] | None) -> list[SequenceRef]:
        return [self.ref(p.stem, "video", "0", source=p.name) for p in list_videos(self.root)
                if subjects is None or p.stem in subjects]

    def n_frames(self, ref: SequenceRef) -> int | None:
        return _probe(Path(ref.root) / ref.source)[0]

    def load(self, ref: SequenceRef) -> Sequence:
        path = Path(ref.root) / ref.source
        return Sequence(self.name, ref.subject, ref.action, ref.camera, joints_3d_cam=None, cam=None,
                        frame_index=None, fps=_probe(path)[1], image_size=(0, 0), video_path=path)


def _probe(path: Path) -> tuple[int | None, float | None]:
    """(frames, fps) of a video, (None, None) when it cannot be read: listing must not stop there;
    decoding reports the file and frame. The header is read once per file version (n_frames at
    planning and load's fps ask for the same file)."""
    try:
        return read_once(_probe_file, path)
    except (OSError, FrameSourceError):
        return None, None


def _probe_file(path: Path) -> tuple[int | None, float | None]:
    info = probe_video(path)
    return info.n_frames, info.fps


def read_once(reader, path: Path):
    """`reader(path)`, read once per file version (mtime and size): a replaced file is read again.
    Callers must not mutate what it returns (it is shared)."""
    st = path.stat()
    return _read_version(reader, str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=256)
def _read_version(reader, path: str, mtime_ns: int, size: int):
    return reader(Path(path))


class ImagesAdapter(DatasetAdapter):
    name = "images"
    description = "a folder of images, or a folder of image folders (one sequence each)"

    def _resolve_root(self, root: Path) -> Path:
        return root   # no default place: the user names the folder

    def _looks_like_root(self, path: Path) -> bool:
        return path.is_dir() and bool(self._folders(path))

    @staticmethod
    def _folders(root: Path) -> list[Path]:
        if list_images(root):
            return [root]
        return [p for p in sorted(root.iterdir()) if p.is_dir() and list_images(p)]

    def _list(self, subjects: list[str] | None) -> list[SequenceRef]:
        return [self.ref(f.name, "frames", "0", source=str(f.relative_to(self.root)))
                for f in self._folders(self.root) if subjects is None or f.name in subjects]

    def n_frames(self, ref: SequenceRef) -> int | None:
        return len(list_images(Path(ref.root) / ref.source))

    def load(self, ref: SequenceRef) -> Sequence:
        images = list_images(Path(ref.root) / ref.source)
        return Sequence(self.name, ref.subject, ref.action, ref.camera, joints_3d_cam=None, cam=None,
                        frame_index=None, fps=None, image_size=(0, 0), image_paths=images)


_H36M_NAME = re.compile(r"^(S\d+)_(.+)\.(\d+)_(\d+)\.jpg$")   # S1_Directions_1.54138969_000001.jpg
_3DHP_TEST = re.compile(r"^(TS\d+)_(\d+)\.jpg$")               # TS1_002001.jpg
_3DHP_TRAIN = re.compile(r"^(S\d+)_(Seq\d+)_Cam(\d+)_(\d+)\.jpg$")  # S4_Seq2_Cam0_001033.jpg
# (annotation file, corpus, camera pickle) of the shared samples
_SAMPLE_FILES = (("h36m_test_h36m_body3d.npz", "h36m", "h36m_cameras.pkl"),
                 ("3dhp_test_3dhp_test.npz", "3dhp", "3dhp_cameras_test.pkl"),
                 ("3dhp_test_3dhp_train.npz", "3dhp", "3dhp_cameras_train.pkl"))


class SamplesAdapter(DatasetAdapter):
    name = "samples"
    dirnames = ("samples",)
    description = "the shared sample frames: " + ", ".join(f for f, _, _ in _SAMPLE_FILES) + " and their images"

    def _looks_like_root(self, path: Path) -> bool:
        return path.is_dir() and any((path / f).is_file() for f, _, _ in _SAMPLE_FILES)

    def _list(self, subjects: list[str] | None) -> list[SequenceRef]:
        refs = []
        for npz_name, corpus, _ in _SAMPLE_FILES:
            npz = self.root / npz_name
            if not npz.is_file():
                raise DatasetError(f"{npz}: sample annotation file missing (is {self.root} the shared samples folder?)")
            for base in (Path(str(n)).name for n in _sample_arrays(npz)[0]):
                subject, action, camera = _sample_key_parts(corpus, base)[:3]
                if subjects is None or subject in subjects:   # source: the image, what errors name
                    refs.append(self.ref(subject, action, camera, source=f"{corpus}_{base}"))
        return refs

    def n_frames(self, ref: SequenceRef) -> int | None:
        return 1

    def load(self, ref: SequenceRef) -> Sequence:
        corpus, base = ref.source.split("_", 1)
        cam_name, (_, s_3d, parts), row = _sample_row(Path(ref.root), corpus, base)
        joints = np.asarray(s_3d[row], np.float64)[:, :3] * 1000.0   # camera metres -> mm
        part = np.asarray(parts[row], np.float64)[..., :2]
        if corpus == "3dhp":
            joints, part = to_h36m17(joints, "3dhp17"), to_h36m17(part, "3dhp17")
        _, _, _, frame, cam_key = _sample_key_parts(corpus, base)
        cams_path = Path(ref.root) / cam_name
        cams = read_once(load_pickle, cams_path) if cams_path.is_file() else None
        notes = [] if cams is not None else [f"intrinsics unknown ({cams_path} missing)"]
        return Sequence(self.name, ref.subject, ref.action, ref.camera, joints_3d_cam=joints[None].astype(np.float32),
                        cam=None, frame_index=[frame], fps=None, image_size=(0, 0),
                        image_paths=[Path(ref.root) / ref.source],
                        guide_2d=part[None].astype(np.float32),
                        intrinsics=_intrinsics(cams.get(cam_key) if cams else None), extras={"notes": notes})


def _sample_row(root: Path, corpus: str, base: str) -> tuple[str, tuple, int]:
    """(camera pickle name, the annotation file's arrays, row) of sample image `base` of `corpus`."""
    for npz_name, c, cam_name in _SAMPLE_FILES:
        if c == corpus:
            arrays = _sample_arrays(root / npz_name)
            rows = [i for i, n in enumerate(arrays[0]) if Path(str(n)).name == base]
            if rows:
                return cam_name, arrays, rows[0]
    raise DatasetError(f"{root / f'{corpus}_{base}'}: no row of the {corpus} sample annotation files names this image")


def _sample_arrays(npz: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(imgname, S, part) of a sample annotation file, read once per file version, not once per
    sample (every sample of a file is one sequence)."""
    return read_once(_load_sample_arrays, npz)


def _load_sample_arrays(npz: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(npz, allow_pickle=False) as d:
        return d["imgname"], d["S"], d["part"]


def _sample_key_parts(corpus: str, base: str) -> tuple[str, str, str, int, object]:
    """(subject, action, camera, frame, camera-pickle key) of a sample image's file name."""
    if corpus == "h36m":
        m = _H36M_NAME.match(base)
        subject, action, camera, frame = m.group(1), m.group(2), m.group(3), int(m.group(4))
        return f"h36m-{subject}", f"{action}-{frame:06d}", camera, frame, (subject, camera)
    m_test, m_train = _3DHP_TEST.match(base), _3DHP_TRAIN.match(base)
    if m_test:
        subject, frame = m_test.group(1), int(m_test.group(2))
        return f"3dhp-{subject}", f"test-{frame:06d}", "0", frame, subject
    subject, seq, camera, frame = m_train.group(1), m_train.group(2), m_train.group(3), int(m_train.group(4))
    return f"3dhp-{subject}", f"{seq}-{frame:06d}", camera, frame, f"{subject}_{seq}_Cam{camera}"


def _intrinsics(cam: dict | None) -> dict | None:
    if cam is None:
        return None
    flat = {k: np.asarray(v, np.float64).ravel().tolist() for k, v in cam.items() if k in ("f", "c", "k", "p")}
    return {"f": flat["f"], "c": flat["c"], "k": flat.get("k"), "p": flat.get("p")}
