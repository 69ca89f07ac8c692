"""`auglift lift`: cached cues of any sequence -> 3D poses, written per sequence with a rendered video.

For every shard, under `<out>/<shard key>/`:
- `lift.npz`: `joints_3d` (T, 17, 3) float32, H36M-17, camera frame, millimetres, root-relative
  (pelvis at 0); `keypoints_2d` (T, 17, 2) px, `confidence` (T, 17), `depth` (T, 17) (the raw
  cue, of the kind in the JSON), `frame_index` (T,), `person_found` (T,) bool, `bbox` (T, 4);
  frames without a person have NaN `joints_3d` rows and `person_found` False;
- `lift.json`: what made it (detector, depth backend and kind, checkpoint path and SHA-256, the
  lifter and what it was trained on), units, the frames without a person;
- `lift.mp4`: the frames with the 2D skeleton, beside the 3D skeleton (one output frame per
  shard row, at the shard's fps), and `contact_sheet.png`: up to 8 of those frames.

Predictions come from `lifters.predict.predict`, the path `evaluate` scores, so a lifted cache
and an evaluated cache give the same numbers. Temporal lifters see each frame's neighbours
(edge frames repeated at a sequence's ends).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np

from auglift.cache import open_shard
from auglift.core.skeleton import H36M17_JOINTS

from .checkpoint import build_from_checkpoint, describe, load_checkpoint
from .shards import ShardInfo
from .predict import check_depth_kinds, check_skeleton, predict, trained_depth_family
from .render import blank_frames, compose, contact_sheet, pose_extent, sample_indices, write_video

# The lifters `make lifters` trains, by (model, channels); `default_checkpoint` finds them.
LIFTERS_ENV = "AUGLIFT_LIFTERS"
DEFAULT_LIFTERS_DIR = Path(__file__).resolve().parent.parent / "runs" / "lifters"
# (the shard's `source` attribute, its frame_index) -> RGB frames, one per row, or None
FramesFor = Callable[[dict | None, np.ndarray], "Iterator[np.ndarray] | None"]


@dataclass(frozen=True)
class LiftOptions:
    checkpoint: Path
    batch_size: int = 4096
    device: str = "cpu"
    allow_depth_kind_mismatch: bool = False
    render: bool = True


def lifters_dir() -> Path:
    return Path(os.environ.get(LIFTERS_ENV) or DEFAULT_LIFTERS_DIR)


def default_checkpoint(model: str, channels: str, depth_kind: str) -> Path:
    """Where `make lifters` puts the default lifter for (model, channels, depth family).

    Raises FileNotFoundError naming the path and the command that makes it.
    """
    family = depth_kind if "d" in channels else "any"
    path = lifters_dir() / f"{model}_{channels}_{family}" / "last.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no default {model} {channels} lifter for {family!r} depth. Run `make lifters` (trains the "
            f"default lifters on simulated H36M cues of the embedded default's kind, 20-40 min on 2 cores), or pass "
            f"--checkpoint")
    return path


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def lift_shards(shards: Sequence[ShardInfo], out: str | Path, options: LiftOptions,
                frames_for: FramesFor | None = None, log: Callable[[str], None] | None = print) -> list[dict]:
    """Lift every shard into `out` (see the module docstring); returns each sequence's JSON record.

    `frames_for(source, frame_index)` gives the sequence's RGB frames for the video, from the
    shard's `source` attribute (None: grey stand-ins of the shard's image size).
    """
    ckpt = load_checkpoint(options.checkpoint)
    check_skeleton(ckpt, shards, where=f"{options.checkpoint}: ")
    check_depth_kinds(ckpt, shards, options.allow_depth_kind_mismatch, where=f"{options.checkpoint}: ")
    model, codec = build_from_checkpoint(ckpt, options.device)
    preds = predict(model, codec, shards, options.batch_size, options.device, with_target=False)
    lifter = {"checkpoint": str(Path(options.checkpoint).resolve()), "sha256": file_sha256(options.checkpoint),
              "label": describe(ckpt), "model": ckpt["model"]["name"], "channels": codec.config.channels,
              "receptive_field": int(ckpt["model"]["receptive_field"]), "depth_kind": trained_depth_family(ckpt),
              "trained_on": {k: ckpt["train_shards"].get(k) for k in ("datasets", "subjects", "depth_kinds",
                                                                      "frames", "config_hashes")}}
    records = []
    for info, pose in zip(shards, preds.pred):
        records.append(write_sequence(info, pose, Path(out), lifter, options.render, frames_for))
        if log:
            r = records[-1]
            log(f"{info.key}: {r['n_frames']} frames, {r['n_frames_without_person']} without a person -> "
                f"{Path(out) / info.key}")
    return records


def write_sequence(info: ShardInfo, pose: np.ndarray, out: Path, lifter: dict, render: bool,
                   frames_for: FramesFor | None) -> dict:
    """Write one sequence's npz, JSON and (if `render`) video and contact sheet; returns the JSON record."""
    with open_shard(info.path) as shard:
        arrays = shard.read_all(["keypoints_2d", "confidence", "depth", "frame_index", "bbox"])
        attrs = dict(shard.attrs)
    found = person_found(arrays["keypoints_2d"], arrays["confidence"])
    joints = np.where(found[:, None, None], pose, np.nan).astype(np.float32)
    folder = out / info.key
    folder.mkdir(parents=True, exist_ok=True)
    with atomic(folder / "lift.npz") as tmp:
        np.savez_compressed(tmp, joints_3d=joints, person_found=found, **arrays)
    record = {
        "key": info.key, "shard": info.path, "n_frames": int(len(joints)),
        "n_frames_without_person": int((~found).sum()),
        "frames_without_person": arrays["frame_index"][~found].tolist(),
        "joints": list(H36M17_JOINTS), "units": {"joints_3d": "mm, camera frame, root-relative (pelvis = 0)",
                                                 "keypoints_2d": "px", "depth": f"{info.depth_kind} (raw cue)"},
        "image_size": list(info.image_size), "fps": attrs.get("fps"), "source": attrs.get("source"),
        "track_id": (attrs.get("people") or {}).get("track_id"), "people": (attrs.get("people") or {}).get("summary"),
        "provenance": {"detector": attrs.get("detector"), "depth_backend": attrs.get("depth_backend"),
                       "depth_kind": info.depth_kind, "cues": attrs.get("provenance"),
                       "cache_config_hash": info.config_hash, "lifter": lifter},
        "files": {"npz": "lift.npz"},
    }
    if render:
        frames = frames_for(attrs.get("source"), arrays["frame_index"]) if frames_for is not None else None
        record["files"].update(render_sequence(info, arrays, joints, folder, attrs.get("fps"), lifter["label"],
                                               frames))
    with atomic(folder / "lift.json") as tmp:   # last: a sequence with its JSON is complete
        tmp.write_text(json.dumps(record, indent=1))
    return record


@contextlib.contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """A temporary beside `path` (same suffix) that replaces it on success and is removed on error,
    so a crash or a full disk never leaves a half-written output under its final name."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def person_found(keypoints_2d: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """`(T,)` bool: the frame has at least one detected joint (finite, confidence > 0)."""
    return (np.isfinite(keypoints_2d).all(-1) & (confidence > 0)).any(-1)


def render_sequence(info: ShardInfo, arrays: dict, joints: np.ndarray, folder: Path, fps, label: str,
                    frames: Iterator[np.ndarray] | None) -> dict:
    """`lift.mp4` (one frame per row) and `contact_sheet.png`; returns their file names."""
    if frames is None:
        frames = blank_frames(len(joints), info.image_size)
    extent = pose_extent(joints)
    keep = set(sample_indices(len(joints)))
    sheet: list[np.ndarray] = []

    def composed() -> Iterator[np.ndarray]:
        for i, frame in enumerate(frames):
            if i >= len(joints):
                break
            pose = joints[i] if np.isfinite(joints[i]).all() else None
            out = compose(frame, arrays["keypoints_2d"][i], arrays["confidence"][i], pose, extent,
                          f"{label}  frame {int(arrays['frame_index'][i])}")
            if i in keep:
                sheet.append(out)
            yield out

    with atomic(folder / "lift.mp4") as tmp:
        n = write_video(tmp, composed(), fps or 10.0)
    if n != len(joints):
        raise ValueError(f"{info.path}: {len(joints)} rows but only {n} frames could be read for the video")
    with atomic(folder / "contact_sheet.png") as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(contact_sheet(sheet), cv2.COLOR_RGB2BGR)):
            raise OSError(f"{folder / 'contact_sheet.png'}: could not be written")
    return {"video": "lift.mp4", "contact_sheet": "contact_sheet.png"}
