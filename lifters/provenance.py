"""Where a result came from: the git revision (with a dirty flag) and the machine.

Printed on every results page and evaluation report, so that a figure can be traced to the
commit and hardware that produced it.
"""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]


def git_revision(repo: str | os.PathLike = REPO_ROOT, exclude: Sequence[str | os.PathLike] = ()) -> dict[str, Any]:
    """{"commit": sha or None, "dirty": bool or None}; None where git or the repository is absent.

    Dirty means tracked files differ from the commit, or untracked files that git does not
    ignore exist: results from such a tree cannot be reproduced from the commit alone.
    `exclude`: paths whose changes do not count, i.e. where the result being made is written
    (`make experiments` rewrites results/ page by page; its own earlier pages are not inputs).
    """
    def run(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout if out.returncode == 0 else None

    sha = run("rev-parse", "HEAD")
    if sha is None:
        return {"commit": None, "dirty": None}
    top = run("rev-parse", "--show-toplevel")
    pathspec = []
    for path in exclude:
        try:
            rel = Path(path).resolve().relative_to(Path(top.strip()).resolve()) if top else None
        except ValueError:
            continue  # outside the repository: cannot make it dirty anyway
        if rel is not None and str(rel) != ".":
            pathspec.append(f":(exclude){rel.as_posix()}")
    status = run("status", "--porcelain", "--untracked-files=normal", "--", ".", *pathspec)
    rev = {"commit": sha.strip(), "dirty": None if status is None else bool(status.strip())}
    if pathspec:
        rev["not_counted"] = [p.removeprefix(":(exclude)") for p in pathspec]
    return rev


def machine_info() -> dict[str, Any]:
    """The processor as Python reports it, plus the CPU model (Linux), CPU count and versions."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"processor": platform.processor(), "cpu_model": model, "cpu_count": os.cpu_count(),
            "machine": platform.machine(), "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "load_avg_1min": load_avg()}
    try:
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads(),
                    cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    return info


def load_avg() -> float | None:
    """1-minute load average: timings taken while other work competes for the CPU read high."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None
