"""Shard keys and where a key lives on disk.

A key is "<dataset>/<subject>/<action>/<camera>". Each component is made path-safe by
`sanitise_component`, so a key is also a relative path; the original, unsanitised names are kept
in the shard's attributes.
"""
from __future__ import annotations

import re
from pathlib import Path

# Backend name -> file suffix. The suffix alone tells a reader which backend wrote a shard.
BACKENDS: dict[str, str] = {"zarr": ".zarr", "hdf5": ".h5"}
BACKEND_ALIASES: dict[str, str] = {"zarr": "zarr", "hdf5": "hdf5", "h5": "hdf5"}
KEY_PARTS = ("dataset", "subject", "action", "camera")
TMP_DIR = ".tmp"
EXPECTED_KEYS_FILE = "expected_keys.txt"  # <root>/expected_keys.txt: every key the producers meant to write

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
_SAFE_COMPONENT = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9._+-]*$")


def sanitise_component(name: object) -> str:
    """Make one key component path-safe.

    Every character outside [A-Za-z0-9._+-] (spaces, slashes, colons, non-ASCII...) becomes '_',
    and a leading '.' becomes '_' so that no component is hidden or equal to '.' / '..'
    ('.tmp' is reserved for interrupted writes). "Walking 1" -> "Walking_1".
    """
    text = str(name).strip()
    if not text:
        raise ValueError(f"empty key component {name!r}")
    text = _UNSAFE.sub("_", text)
    if text.startswith("."):
        text = "_" + text[1:]
    return text


def key_for(dataset: object, subject: object, action: object, camera: object) -> str:
    """The shard key of one sequence seen by one camera, e.g. "h36m/S1/Walking_1/54138969"."""
    return "/".join(sanitise_component(part) for part in (dataset, subject, action, camera))


def validate_key(key: str) -> str:
    """Return `key` if it is a well-formed key, else raise ValueError saying what is wrong."""
    if not isinstance(key, str):
        raise ValueError(f"shard key must be a str, got {type(key).__name__}")
    parts = key.split("/")
    if len(parts) != len(KEY_PARTS):
        raise ValueError(f"shard key {key!r} must have 4 components "
                         f"<dataset>/<subject>/<action>/<camera>; use cache.key_for(...)")
    for part in parts:
        if not _SAFE_COMPONENT.match(part):
            raise ValueError(f"shard key {key!r}: component {part!r} is not path-safe; "
                             f"build keys with cache.key_for(...)")
    return key


def normalise_backend(backend: str) -> str:
    try:
        return BACKEND_ALIASES[str(backend).lower()]
    except KeyError:
        raise ValueError(f"unknown cache backend {backend!r}; choose one of {sorted(BACKENDS)}") from None


def shard_path(root: str | Path, key: str, backend: str = "zarr") -> Path:
    """Final location of a shard: `<root>/<key>.zarr` or `<root>/<key>.h5`."""
    suffix = BACKENDS[normalise_backend(backend)]
    return Path(root) / (validate_key(key) + suffix)


def backend_of(path: str | Path) -> str:
    """Backend of a shard path, from its suffix."""
    suffix = Path(path).suffix.lower()
    for name, suf in BACKENDS.items():
        if suffix == suf:
            return name
    raise ValueError(f"{path}: not a shard path (expected a '.zarr' directory or a '.h5' file)")


def key_from_path(root: str | Path, path: str | Path) -> str:
    """The key a shard at `path` has under `root` (its relative path without the suffix)."""
    rel = Path(path).relative_to(Path(root)).as_posix()
    return rel[: -len(Path(path).suffix)]
