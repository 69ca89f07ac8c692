"""What a shard must contain: array specs, attribute rules, and config hashing.

The same checks run when a shard is written (so a bad shard is refused with an error naming the
sequence and frame) and when it is verified (so a shard damaged on disk is caught).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import PurePath
from typing import Any, Mapping

import numpy as np

FORMAT_VERSION = 2
ATTRS_CHECKSUM = "attrs_sha256"  # SHA-256 of the canonical JSON of every other attribute
ATTR_KEY = "auglift"  # both backends store the attribute dict (as JSON) under this one name

# A depth kind says what the `depth` array means (cache/FORMAT.md 3.2). A simulated kind is its
# real family's convention made from mocap, labelled "simulated_" so that no result mixes them up
# unknowingly; a lifter matches cues by family (`depth_family`), since that is what it can learn.
DEPTH_FAMILIES = ("metric", "relative_inverse", "landmark_z", "none")
DEPTH_KINDS = ("metric", "relative_inverse", "landmark_z", "simulated_metric", "simulated_relative_inverse",
               "simulated_landmark_z", "none")
PROVENANCES = ("real", "simulated", "ground_truth", "oracle", "none")
PROVENANCE_REQUIRED = ("keypoints_2d", "confidence", "depth")



def ordinal_array_name(bin_mm: float) -> str:
    """Name of the ORACLE ordinal-depth array for bins of `bin_mm` mm: 100 -> "ordinal_100mm",
    2.5 -> "ordinal_2p5mm" (array names allow no ".")."""
    return f"ordinal_{float(bin_mm):g}mm".replace(".", "p")


def depth_family(kind: str) -> str:
    """The real kind a (possibly simulated) depth kind stands for: "simulated_metric" -> "metric"."""
    family = str(kind).removeprefix("simulated_")
    if family not in DEPTH_FAMILIES:
        raise ValueError(f"unknown depth kind {kind!r}; known: {list(DEPTH_KINDS)}")
    return family


# name -> (dtype, trailing shape); "K" is the shard's keypoint count, fixed by keypoints_2d.
REQUIRED_ARRAYS: dict[str, tuple[str, tuple]] = {
    "keypoints_2d": ("float32", ("K", 2)),
    "confidence": ("float32", ("K",)),
    "depth": ("float32", ("K",)),
    "frame_index": ("int64", ()),
    "bbox": ("float32", (4,)),
}
KNOWN_OPTIONAL_ARRAYS: dict[str, tuple[str, tuple]] = {
    "joints_3d_cam": ("float32", (17, 3)),
    "depth_valid": ("bool", ("K",)),
}
ARRAY_SPECS = {**REQUIRED_ARRAYS, **KNOWN_OPTIONAL_ARRAYS}
ORDINAL_SPEC = ("float32", ("K",))   # every ordinal_<bin>mm array (`ordinal_array_name`)


def array_spec(name: str) -> tuple[str, tuple] | None:
    """(dtype, trailing shape) the format fixes for array `name`, or None for a free-form array."""
    if name.startswith("ordinal_") and name.endswith("mm"):
        return ORDINAL_SPEC
    return ARRAY_SPECS.get(name)

# Written by the cache itself; values passed in by the caller under these names are replaced.
CACHE_OWNED_ATTRS = ("key", "n_frames", "arrays", "complete", "created", "auglift_version", ATTRS_CHECKSUM)


# ---------------------------------------------------------------------------------------------
# JSON and hashing


def to_jsonable(obj: Any, where: str = "attrs") -> Any:
    """Convert dataclasses, tuples, paths and numpy scalars/arrays to plain JSON types.

    Non-finite floats are refused: they have no JSON spelling and would make hashes unstable.
    """
    # Plain JSON types first, by exact type: attributes read back from a shard are nothing else,
    # and every shard open checksums them (the ABC and dataclass checks below cost ~10x more).
    kind = type(obj)
    if obj is None or kind is str or kind is bool or kind is int:
        return obj
    if kind is float and math.isfinite(obj):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: key {k!r} is not a str")
            out[k] = to_jsonable(v, f"{where}.{k}")
        return out
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist(), where)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        if not math.isfinite(float(obj)):
            raise ValueError(f"{where}: non-finite number {obj!r} cannot be stored as JSON")
        return float(obj)
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, PurePath):
        return str(obj)
    raise TypeError(f"{where}: {type(obj).__name__} is not JSON-serialisable")


def canonical_json(obj: Any) -> str:
    return json.dumps(to_jsonable(obj, "config"), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True, allow_nan=False)


def config_hash(obj: Any) -> str:
    """Stable 16-hex-digit SHA-256 of the canonical JSON of a config (dict or dataclass).

    Key order, tuple-vs-list and numpy-vs-Python scalars do not change the hash.
    """
    return hashlib.sha256(canonical_json(obj).encode("ascii")).hexdigest()[:16]


def attrs_checksum(attrs: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of all attributes except `attrs_sha256` itself."""
    rest = {k: v for k, v in attrs.items() if k != ATTRS_CHECKSUM}
    return hashlib.sha256(canonical_json(rest).encode("ascii")).hexdigest()


def version_problem(version: Any) -> str | None:
    """Why a shard of `format_version` `version` is not read, or None if it is."""
    if version == FORMAT_VERSION:
        return None
    if version == 1:
        return ("format_version 1 (written before per-chunk and attribute checksums) is no longer read; "
                "re-create it by rerunning the auglift precompute / simulate / cache build-gt command that "
                "made it (they rewrite shards that fail verification)")
    return f"format_version {version!r} is not supported (this auglift reads version {FORMAT_VERSION})"


# ---------------------------------------------------------------------------------------------
# Attributes


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _num_list(x: Any, n: int | None = None) -> bool:
    return isinstance(x, list) and (n is None or len(x) == n) and all(_is_num(v) for v in x)


def _backend_desc_problems(name: str, d: Any, kinds: tuple[str, ...] | None) -> list[str]:
    if not isinstance(d, dict):
        return [f"attribute '{name}' must be a dict {{name, version, params}}, got {d!r}"]
    out = []
    if not isinstance(d.get("name"), str) or not d.get("name"):
        out.append(f"attribute '{name}.name' must be a non-empty str")
    if "version" not in d or not (d["version"] is None or isinstance(d["version"], str)):
        out.append(f"attribute '{name}.version' must be a str or null")
    if not isinstance(d.get("params"), dict):
        out.append(f"attribute '{name}.params' must be a dict")
    if kinds is not None and d.get("kind") not in kinds:
        out.append(f"attribute '{name}.kind' must be one of {list(kinds)}, got {d.get('kind')!r}")
    return out


def attr_problems(attrs: Mapping[str, Any]) -> list[str]:
    """Problems with the caller-supplied attributes (the cache-owned ones are checked elsewhere)."""
    p: list[str] = []
    if version_problem(attrs.get("format_version")):
        p.append(f"attribute 'format_version' must be {FORMAT_VERSION}: "
                 + version_problem(attrs.get("format_version")))
    for name in ("dataset", "subject", "action", "camera", "skeleton", "config_hash"):
        if not isinstance(attrs.get(name), str) or not attrs.get(name):
            p.append(f"attribute '{name}' must be a non-empty str, got {attrs.get(name)!r}")
    size = attrs.get("image_size")
    if not (_num_list(size, 2) and all(float(v).is_integer() and v > 0 for v in size)):
        p.append(f"attribute 'image_size' must be [W, H] positive integers, got {size!r}")
    intr = attrs.get("intrinsics", "missing")
    if intr == "missing":
        p.append("attribute 'intrinsics' is missing (use null when unknown)")
    elif intr is not None:
        if not isinstance(intr, dict) or not _num_list(intr.get("f"), 2) or not _num_list(intr.get("c"), 2):
            p.append(f"attribute 'intrinsics' must be {{f: [fx, fy], c: [cx, cy], k, p}} or null, "
                     f"got {intr!r}")
        else:
            for d in ("k", "p"):
                if intr.get(d) is not None and not _num_list(intr.get(d)):
                    p.append(f"attribute 'intrinsics.{d}' must be a list of numbers or null")
    fps = attrs.get("fps")
    if "fps" not in attrs:
        p.append("attribute 'fps' is missing (use null when unknown)")
    elif not (fps is None or (_is_num(fps) and fps > 0)):
        p.append(f"attribute 'fps' must be a positive number or null, got {fps!r}")
    p += _backend_desc_problems("detector", attrs.get("detector"), None)
    p += _backend_desc_problems("depth_backend", attrs.get("depth_backend"), DEPTH_KINDS)
    prov = attrs.get("provenance")
    if not isinstance(prov, dict):
        p.append(f"attribute 'provenance' must be a dict, got {prov!r}")
    else:
        for name in PROVENANCE_REQUIRED:
            if name not in prov:
                p.append(f"attribute 'provenance.{name}' is missing")
        for name, value in prov.items():
            if value not in PROVENANCES:
                p.append(f"attribute 'provenance.{name}' must be one of {list(PROVENANCES)}, got {value!r}")
        backend = attrs.get("depth_backend")
        kind = backend.get("kind") if isinstance(backend, dict) else None
        if (kind == "none") != (prov.get("depth") == "none"):
            p.append(f"depth_backend.kind is {kind!r} but provenance.depth is {prov.get('depth')!r}: "
                     f"both must be 'none' or neither")
    return p


def prepare_attrs(attrs: Mapping[str, Any]) -> dict:
    """JSON-normalised copy of the caller's attributes, cache-owned names dropped, version set."""
    out = to_jsonable(dict(attrs), "attrs")
    for name in CACHE_OWNED_ATTRS:
        out.pop(name, None)
    out.setdefault("format_version", FORMAT_VERSION)
    return out


def depth_is_none(attrs: Mapping[str, Any]) -> bool:
    backend = attrs.get("depth_backend")
    return isinstance(backend, dict) and backend.get("kind") == "none"


# ---------------------------------------------------------------------------------------------
# Arrays


def expected_tail(name: str, k: int | None) -> tuple | None:
    """Trailing shape an array must have, or None if it is free-form."""
    spec = array_spec(name)
    if spec is None:
        return None
    return tuple(k if d == "K" else d for d in spec[1])


def coerce_array(name: str, data: Any, target: np.dtype | None = None) -> np.ndarray:
    """`data` as a little-endian C-contiguous array of the dtype the format prescribes.

    Floats narrow to float32 and ints widen to int64 as the spec says; a float frame_index or a
    non-bool mask is refused rather than silently rounded.
    """
    arr = np.asarray(data)
    spec = array_spec(name)
    want = np.dtype(spec[0]) if spec else (target if target is not None else arr.dtype)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"array '{name}' has unsupported dtype {arr.dtype} (numeric or bool only)")
    allowed = {"f": "biuf", "i": "biu", "u": "bu", "b": "b"}[want.kind]
    if arr.dtype.kind not in allowed:
        raise ValueError(f"array '{name}' must be {want} but got {arr.dtype}; refusing a lossy cast")
    if arr.ndim == 0:
        raise ValueError(f"array '{name}' must have a frame axis, got a scalar")
    return np.ascontiguousarray(arr, dtype=want.newbyteorder("<"))


@dataclasses.dataclass
class Violation:
    """One broken rule of the NaN/range policy: how often and where first (row, frame, keypoint)."""
    what: str
    count: int
    first: str

    def message(self) -> str:
        return f"{self.what} ({self.count} entries; first at {self.first})"


def _first(mask: np.ndarray, row0: int, frames: np.ndarray | None) -> tuple[int, str]:
    idx = np.argwhere(mask)
    r = int(idx[0][0])
    where = f"row {row0 + r}"
    if frames is not None and r < len(frames):
        where += f", frame_index {int(frames[r])}"
    if idx.shape[1] > 1:
        where += f", keypoint {int(idx[0][1])}"
    return int(mask.sum()), where


def policy_violations(batch: Mapping[str, np.ndarray], row0: int, last_frame: int | None,
                      depth_none: bool = False) -> list[Violation]:
    """Check one aligned batch of rows against the NaN / range policy of FORMAT.md.

    `last_frame` is the frame_index of the row before this batch (None at the start).
    """
    out: list[Violation] = []
    frames = batch.get("frame_index")

    def add(what: str, mask: np.ndarray) -> None:
        if mask.any():
            count, where = _first(mask, row0, frames)
            out.append(Violation(what, count, where))

    conf = batch.get("confidence")
    if conf is not None:
        add("confidence is not finite", ~np.isfinite(conf))
        with np.errstate(invalid="ignore"):
            add("confidence is outside [0, 1]", (conf < 0) | (conf > 1))
    kp = batch.get("keypoints_2d")
    if kp is not None:
        add("keypoints_2d is infinite", np.isinf(kp).any(axis=-1))
        if conf is not None and conf.shape == kp.shape[:-1]:
            add("keypoints_2d is NaN where confidence > 0", np.isnan(kp).any(axis=-1) & ~(conf == 0))
    depth = batch.get("depth")
    if depth is not None:
        add("depth is infinite", np.isinf(depth))
        if depth_none:
            add("depth is not NaN although depth_backend.kind is 'none'", ~np.isnan(depth))
    if frames is not None and len(frames):
        add("frame_index is negative", frames < 0)
        prev = np.concatenate([[last_frame if last_frame is not None else -1], frames[:-1]])
        add("frame_index is not strictly increasing", frames <= prev)
    box = batch.get("bbox")
    if box is not None:
        nan = np.isnan(box)
        add("bbox row is partly NaN (must be all NaN or all finite)", nan.any(axis=-1) & ~nan.all(axis=-1))
        add("bbox is infinite", np.isinf(box).any(axis=-1))
        with np.errstate(invalid="ignore"):
            add("bbox has x1 < x0 or y1 < y0", (box[:, 2] < box[:, 0]) | (box[:, 3] < box[:, 1]))
    j3d = batch.get("joints_3d_cam")
    if j3d is not None:
        add("joints_3d_cam is not finite", ~np.isfinite(j3d).all(axis=-1))
    return out
