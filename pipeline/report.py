"""Per-sequence results of precompute and the run's JSON report.

Each sequence task returns a `SequenceResult` (plain data, cheap to send back from a worker);
the client folds them into `<out>/reports/precompute-<timestamp>.json`: seconds per stage,
frames per second, failures with file + frame + message, skipped shards.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# decode: reading frames; detect / depth: model inference (incl. pre/post-processing inside the
# backend); write: shard appends + commit; load: building models (once per worker); verify:
# checking an existing shard for resume; other: the rest of the task (GT slicing, attrs...).
STAGES = ("decode", "detect", "depth", "write", "load", "verify", "other")
INFERENCE_STAGES = ("detect", "depth")
STATUSES = ("written", "skipped", "failed")


@dataclass
class Failure:
    key: str
    file: str | None
    frame: int | None
    message: str


@dataclass
class SequenceResult:
    key: str
    status: str = "failed"          # one of STATUSES
    n_frames: int = 0               # frames written (0 when skipped or failed)
    n_empty: int = 0                # frames where no person was detected
    n_concealed: int = 0            # frames decoded with errors concealed (damaged video stream)
    seconds: dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in STAGES})
    # CPU seconds of the whole worker process (all threads: model pools included) per stage
    cpu_seconds: dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in STAGES})
    failure: Failure | None = None
    note: str = ""                  # e.g. why a shard was skipped or replaced
    worker: str = ""                # host:pid of the process that ran the task
    model_builds: int = 0           # models that process had built by the end of the task
    started: str = ""               # UTC time the task began (ISO 8601, ms): the run's timeline
    # how the subject was chosen and how it went (pipeline.outputs): policy, people_per_frame,
    # frames_without_subject, identity_switches, tracks ({track id: shard key} or None)
    people: dict[str, Any] | None = None

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


class StageClock:
    """Accumulates wall and process-CPU seconds per stage: `with clock("detect"): ...`."""

    def __init__(self, seconds: dict[str, float], cpu_seconds: dict[str, float] | None = None):
        self.seconds = seconds
        self.cpu_seconds = cpu_seconds if cpu_seconds is not None else {}

    @contextmanager
    def __call__(self, stage: str):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0
            self.cpu_seconds[stage] = self.cpu_seconds.get(stage, 0.0) + time.process_time() - c0


def summarise(results: list[SequenceResult], wall_seconds: float, workers: int) -> dict[str, Any]:
    """Totals over sequences: counts, frames, stage seconds and shares, throughput."""
    stage = {s: sum(r.seconds.get(s, 0.0) for r in results) for s in STAGES}
    busy = sum(stage.values())
    frames = sum(r.n_frames for r in results)
    inference = sum(stage[s] for s in INFERENCE_STAGES)
    capacity = wall_seconds * max(workers, 1)
    return {
        "shards": {s: sum(r.status == s for r in results) for s in STATUSES},
        "frames": frames,
        "frames_no_person": sum(r.n_empty for r in results),
        "identity_switches": sum((r.people or {}).get("identity_switches", 0) for r in results),
        "frames_concealed": sum(r.n_concealed for r in results),
        "wall_seconds": round(wall_seconds, 3),
        "frames_per_second": round(frames / wall_seconds, 3) if wall_seconds > 0 else None,
        "stage_seconds": {s: round(v, 3) for s, v in stage.items()},
        "stage_cpu_seconds": {s: round(sum(r.cpu_seconds.get(s, 0.0) for r in results), 3) for s in STAGES},
        # share of task time outside model inference (decode, write, load, ...)
        "outside_inference_share_of_tasks": round(1 - inference / busy, 4) if busy > 0 else None,
        # share of the workers' wall-clock capacity not spent in inference (adds scheduling, idle)
        "outside_inference_share_of_wall": round(1 - inference / capacity, 4) if capacity > 0 else None,
    }


def build_report(results: list[SequenceResult], *, config: dict, config_hash: str, out: str | Path,
                 wall_seconds: float, workers: int, part: tuple[int, int] | None, expected_keys: int,
                 stray_temps: int = 0, command: str | None = None) -> dict[str, Any]:
    return {
        "kind": "auglift-precompute-report",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "out": str(out),
        "config": config,
        "config_hash": config_hash,
        "part": list(part) if part else None,
        "expected_keys": expected_keys,
        "workers": workers,
        "summary": summarise(results, wall_seconds, workers),
        "failures": [asdict(r.failure) for r in results if r.failure is not None],
        "skipped": [{"key": r.key, "note": r.note} for r in results if r.status == "skipped"],
        "stray_temps": stray_temps,
        "sequences": [{"key": r.key, "status": r.status, "frames": r.n_frames, "no_person": r.n_empty,
                       "concealed": r.n_concealed,
                       "seconds": {s: round(v, 4) for s, v in r.seconds.items()}, "note": r.note,
                       "worker": r.worker, "model_builds": r.model_builds, "started": r.started,
                       "people": r.people}
                      for r in results],
    }


def write_report(report: dict[str, Any], out: str | Path, part: tuple[int, int] | None = None) -> Path:
    """Write `<out>/reports/precompute-<UTC timestamp>[-part<i>of<N>].json`; never overwrites."""
    folder = Path(out) / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    stem = f"precompute-{stamp}" + (f"-part{part[0]}of{part[1]}" if part else "")
    path = folder / f"{stem}.json"
    n = 1
    while path.exists():
        path = folder / f"{stem}-{n}.json"
        n += 1
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, path)
    return path
