"""3DPW (3D Poses in the Wild): one moving phone camera, one or two actors per sequence.

Layout:
    <root>/sequenceFiles/{train,validation,test}/<sequence>.pkl
    <root>/imageFiles/<sequence>/image_%05d.jpg            (0-based, 30 fps)
Each pickle (Python 2, latin1) holds `sequence`, `jointPositions` (one (N, 72) array per actor:
SMPL-24 joints, world metres), `cam_poses` (N, 4, 4) world->camera, `cam_intrinsics` (3, 3),
`campose_valid` (one (N,) flag array per actor), `poses2d` (one (N, 3, 18) array per actor:
OpenPose COCO-18 x, y, confidence), `img_frame_ids`, `genders`, SMPL parameters. Pickles are
read with the restricted unpickler (pipeline.safe_pickle).

Ids: subject = the sequence name, action = "actor<k>" (k = index into the per-actor lists),
camera = "phone". Frames whose `campose_valid` is 0 are dropped (the camera pose is not aligned
to the image there); `frame_index` keeps the image numbers.

The camera moves, so `Sequence.cam` is the identity (joints are already in camera coordinates)
with the phone's intrinsics, and `extras["world_to_camera"]` holds the per-frame (T, 4, 4)
extrinsics in mm. The 2D keypoints are 3DPW's own OpenPose detections, COCO-18 -> COCO-17 ->
H36M-17 with their confidences; frames where OpenPose found the actor unreliably are all zeros
with confidence 0.

Two actors, one image: 3DPW is evaluated per actor (every actor of every test sequence, on the
frames whose `campose_valid` is 1: the usual 3DPW protocol, which is what this adapter yields,
one sequence per actor). The AugLift paper does not say how an actor's person is picked among
the detections of a frame, so precompute pins it with the actor's own ground truth: the 3D
joints projected through the intrinsics give the actor's 2D, the detector runs on the actor's
box (that 2D's extent widened by 25 % of its larger side; BlazePose on a crop of it), and its
pose is kept only if its median joint distance to that 2D is at most 0.25 of the actor's size;
otherwise the frame gets NaN keypoints and confidence 0, never the other actor's cues
(pipeline/detect/subjects.py; each shard records `person_selection` and `match_error`).
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from auglift.core.camera import Camera
from auglift.core.skeleton import H36M17_PARENTS, NUM_JOINTS, confidence_to_h36m17, to_h36m17
from auglift.pipeline.safe_pickle import load_pickle

from .base import DatasetAdapter, DatasetError, Sequence, check_array, require

SPLIT_FOLDERS = ("train", "validation", "test")
FPS = 30.0
CAMERA = "phone"
# COCO-17 joint i is OpenPose COCO-18 joint COCO18_TO_COCO17[i] (OpenPose adds a neck at 1).
COCO18_TO_COCO17 = (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10)
# Mean H36M-17 bone lengths (mm) of the training subjects S1 S5 S6 S7 S8, bone i joining joint i+1
# to its parent (order of skeleton.bone_lengths); tests/test_datasets_real.py recomputes them.
H36M_TRAIN_BONE_LENGTHS = np.array([135.5, 451.7, 447.0, 135.5, 451.7, 447.0, 241.5, 255.5, 117.1,
                                    115.0, 150.5, 282.0, 249.9, 150.5, 282.0, 249.9])


class PW3DAdapter(DatasetAdapter):
    name = "3dpw"
    dirnames = ("3dpw", "3DPW")
    description = "3DPW: sequenceFiles/{train,validation,test}/*.pkl and imageFiles/<sequence>/image_%05d.jpg"

    def __init__(self, root):
        super().__init__(root)
        self._pkl: tuple[str, dict] | None = None

    def _looks_like_root(self, path: Path) -> bool:
        return (path / "sequenceFiles").is_dir()

    @property
    def splits(self) -> dict[str, list[str]]:
        """Sequence names per split folder (3DPW's 'subjects' are its sequences)."""
        base = self.root / "sequenceFiles"
        return {s: sorted(p.stem for p in (base / s).glob("*.pkl")) for s in SPLIT_FOLDERS}

    def _list(self, subjects):
        refs = []
        for split in SPLIT_FOLDERS:
            for p in sorted((self.root / "sequenceFiles" / split).glob("*.pkl")):
                if subjects is not None and p.stem not in subjects:
                    continue
                try:
                    n_actors = len(self._read(p)["jointPositions"])
                except (DatasetError, pickle.UnpicklingError):  # fails alone when loaded; the others run
                    n_actors = 1
                refs += [self.ref(p.stem, f"actor{k}", CAMERA, str(p.relative_to(self.root))) for k in range(n_actors)]
        return refs

    def _read(self, path: Path) -> dict:
        if self._pkl is None or self._pkl[0] != str(path):
            self._pkl = (str(path), read_sequence_pickle(path))
        return self._pkl[1]

    def _find(self, sequence: str) -> Path:
        for split in SPLIT_FOLDERS:
            p = self.root / "sequenceFiles" / split / f"{sequence}.pkl"
            if p.exists():
                return p
        raise DatasetError(f"{self.root / 'sequenceFiles'}: no {sequence}.pkl in {', '.join(SPLIT_FOLDERS)}")

    def load(self, ref) -> Sequence:
        path = self.root / ref.source if ref.source else self._find(ref.subject)
        data = self._read(require(path, "3DPW sequence pickle"))
        try:
            actor = int(ref.action.removeprefix("actor"))
            world = np.asarray(data["jointPositions"][actor], np.float64)
        except (ValueError, IndexError):
            raise DatasetError(f"{path}: no actor {ref.action!r} "
                               f"({len(data['jointPositions'])} actors: actor0..)") from None
        n = len(world)
        world = check_array(world, (n, 72), path, f"jointPositions[{actor}]").reshape(n, 24, 3)
        poses = check_array(data["cam_poses"], (n, 4, 4), path, "cam_poses")
        valid = np.asarray(data["campose_valid"][actor]).ravel().astype(bool)
        if len(valid) != n:
            raise DatasetError(f"{path}: campose_valid[{actor}] has {len(valid)} frames, jointPositions {n}")
        keep = np.flatnonzero(valid)
        # per-frame world -> camera, metres -> mm
        joints_m = np.einsum("tij,tkj->tki", poses[keep, :3, :3], world[keep]) + poses[keep, None, :3, 3]
        joints = to_h36m17(joints_m * 1000.0, "smpl24").astype(np.float32)
        K = check_array(data["cam_intrinsics"], (3, 3), path, "cam_intrinsics")
        f, c = np.array([K[0, 0], K[1, 1]]), np.array([K[0, 2], K[1, 2]])
        images = [self.root / "imageFiles" / ref.subject / f"image_{i:05d}.jpg" for i in keep]
        size = image_size(images[0] if images else None, c)
        cam = Camera(R=np.eye(3), T=np.zeros(3), f=f, c=c, width=size[0], height=size[1], name=CAMERA)
        w2c = poses[keep].copy()
        w2c[:, :3, 3] *= 1000.0
        kp, conf, note = None, None, "no poses2d in the pickle"
        if data.get("poses2d") is not None and len(data["poses2d"]) > actor:
            p2 = check_array(data["poses2d"][actor], (n, 3, 18), path, f"poses2d[{actor}]")
            coco = np.transpose(p2[keep], (0, 2, 1))[:, list(COCO18_TO_COCO17)]
            kp = to_h36m17(coco[..., :2], "coco17").astype(np.float32)
            conf = confidence_to_h36m17(coco[..., 2], "coco17").astype(np.float32)
            note = "3DPW's own OpenPose detections (COCO-18 -> COCO-17 -> H36M-17), with their confidences"
        return Sequence("3dpw", ref.subject, ref.action, ref.camera, joints, cam, keep, FPS, size,
                        image_paths=images if images and images[0].parent.is_dir() else None,
                        keypoints_2d=kp, confidence=conf, detections_note=note,
                        extras={"world_to_camera": w2c, "dropped_invalid_frames": int(n - len(keep))})


def read_sequence_pickle(path: Path) -> dict:
    data = load_pickle(path)
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a dict, got {type(data).__name__}")
    missing = [k for k in ("jointPositions", "cam_poses", "cam_intrinsics", "campose_valid") if k not in data]
    if missing:
        raise DatasetError(f"{path}: missing keys {missing} (3DPW sequence file)")
    return data


def image_size(first_image: Path | None, c: np.ndarray) -> tuple[int, int]:
    """(W, H) from the first image's header, else twice the principal point (3DPW's are centred)."""
    if first_image is not None and first_image.exists():
        from PIL import Image

        with Image.open(first_image) as im:
            return im.size
    return int(round(2 * c[0])), int(round(2 * c[1]))


def standardize_to_h36m(joints: np.ndarray, target_bone_lengths=H36M_TRAIN_BONE_LENGTHS,
                        recentre: bool = True) -> np.ndarray:
    """Give `(T, 17, 3)` H36M-17 poses the target bone lengths, keeping every bone's direction.

    `recentre`: first move the pelvis to the midpoint of the hips, where Human3.6M's pelvis
    is (SMPL's sits higher and further back). Then, from the pelvis outwards, each joint is
    placed at its parent plus the target length along the bone's original direction, so the
    pose and the root position stay and only the proportions change. `target_bone_lengths` is
    (16,) in the order of `skeleton.bone_lengths` (default: H36M training-subject means, mm).
    """
    j = np.array(joints, np.float64, copy=True)
    if j.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"expected (..., 17, 3) joints, got {j.shape}")
    target = np.asarray(target_bone_lengths, np.float64)
    if target.shape != (NUM_JOINTS - 1,):
        raise ValueError(f"expected 16 target bone lengths, got shape {target.shape}")
    if recentre:
        j[..., 0, :] = 0.5 * (j[..., 1, :] + j[..., 4, :])
    out = j.copy()
    for child in range(1, NUM_JOINTS):   # parents always come before children in H36M-17
        parent = H36M17_PARENTS[child]
        bone = j[..., child, :] - j[..., parent, :]
        norm = np.linalg.norm(bone, axis=-1, keepdims=True)
        direction = np.divide(bone, norm, out=np.zeros_like(bone), where=norm > 0)
        out[..., child, :] = out[..., parent, :] + target[child - 1] * direction
    return out.astype(np.result_type(joints, np.float32))
