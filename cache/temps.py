"""Temporaries under a cache root's `.tmp/`: how they are named, and finding and cleaning strays.

Two kinds. A shard writer's `<root>/.tmp/<key>.<uuid32>.<ext>` (and, while it replaces an
existing shard, `<key>.<uuid32>.old.<ext>`): nothing in the name tells a live writer from a dead
one. Small files replaced atomically (expected_keys.txt, a checkpoint's last.pt) go through
`NAME.<pid>.tmp`: one whose process is gone is known to be stray.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import uuid
from pathlib import Path

from .keys import TMP_DIR

_TMP_NAME = re.compile(r"\.[0-9a-f]{32}(\.old)?\.(zarr|h5)$")
_PID_TMP_NAME = re.compile(r"^\.?[A-Za-z0-9_.-]+\.(\d+)\.tmp$")


def shard_temp_path(root: str | os.PathLike, key: str, suffix: str) -> Path:
    """Where a writer builds shard `key` (suffix ".zarr" / ".h5") before renaming it into place."""
    return Path(root) / TMP_DIR / f"{key}.{uuid.uuid4().hex}{suffix}"


def replaced_shard_path(temp_path: Path) -> Path:
    """Where the shard being replaced waits, beside `temp_path`, until the new one is in place."""
    return temp_path.with_name(temp_path.stem + ".old" + temp_path.suffix)


def pid_tmp_path(root: str | os.PathLike, name: str) -> Path:
    """Where this process writes `name` before replacing `<root>/<name>` (same filesystem)."""
    stem = Path(name).stem
    return Path(root) / TMP_DIR / f"{stem}.{os.getpid()}.tmp"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def stray_temps(root: str | os.PathLike) -> list[Path]:
    """Temporaries left under `<root>/.tmp` by interrupted (or still running) writers.

    Shard temporaries cannot tell a live writer from a dead one; the small per-process files
    (`<root>/.tmp/expected_keys.<pid>.tmp`, and `<root>/.expected_keys.<pid>.tmp` of older
    versions) are listed only when their process is gone.
    """
    root = Path(root)
    tmp = root / TMP_DIR
    out = []
    if tmp.is_dir():
        for dirpath, dirnames, filenames in os.walk(tmp):
            for name in list(dirnames) + filenames:
                if _TMP_NAME.search(name):
                    out.append(Path(dirpath) / name)
            dirnames[:] = [d for d in dirnames if not _TMP_NAME.search(d)]
    return sorted(out + stray_pid_temps(root) + stray_pid_temps(tmp))


def stray_pid_temps(folder: str | os.PathLike) -> list[Path]:
    """Files `[.]NAME.<pid>.tmp` directly in `folder` whose process is gone (an interrupted
    atomic replace: expected_keys.txt, a checkpoint's `.last.pt.<pid>.tmp`)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if (m := _PID_TMP_NAME.match(p.name)) and p.is_file() and not _pid_alive(int(m.group(1))))


@dataclasses.dataclass
class Cleaned:
    """What `clean_tmp` did: temporaries deleted, and those it could not delete (with why)."""
    deleted: list[Path]
    failed: list[tuple[Path, str]]


def clean_tmp(root: str | os.PathLike) -> Cleaned:
    """Delete all stray temporaries under `<root>/.tmp`; says which it could not delete.

    Only safe while no writer is running on this root: a live writer's temporary looks the same.
    """
    deleted, failed = [], []
    for p in stray_temps(root):
        errors: list[str] = []
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, onerror=lambda _f, path, exc: errors.append(f"{path}: {exc[1]}"))
            else:
                p.unlink()
        except OSError as e:
            errors.append(str(e))
        if p.exists() or p.is_symlink():
            failed.append((p, errors[0] if errors else "still present after deleting"))
        else:
            deleted.append(p)
    tmp = Path(root) / TMP_DIR
    if tmp.is_dir():  # prune the emptied key directories, deepest first
        for dirpath, _, _ in sorted(os.walk(tmp), key=lambda t: -len(t[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
    return Cleaned(deleted, failed)
