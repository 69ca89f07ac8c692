"""`auglift precompute`: raw frames -> cached (x, y, c, d) shards, as a Python function.

    from auglift.pipeline.precompute import PrecomputeConfig, run_precompute
    report, path = run_precompute("videos", "../shared/data/videos", "runs/cache", PrecomputeConfig())

Defaults are the embedded, offline pair: MediaPipe BlazePose (2D) + its landmark z (depth).
The paper-faithful pair is `detector="rtmpose"` + `depth="depth-anything"` with local
checkpoints (see pipeline/detect/rtmpose.py, pipeline/depth/depth_anything.py).

Whose cues a shard holds (`people`, `subject`, `people_margin`, `match_max_error`): a dataset
actor is picked in every frame by its ground-truth 2D, an own video's people are tracked and the
subject's track is written (with `people="all"`, every track: pipeline/detect/subjects.py).

Jobs run through the one producer runner (pipeline/runner.py, via pipeline/graph.py's
`PrecomputeProducer`), so resume, conflicts and expected keys follow the producers' shared
policy (pipeline/produce.py):
a shard that verifies and carries this run's config hash is skipped; one that fails
verification is rewritten; a verified shard from another configuration is a failure unless
`overwrite`. Every run writes `<out>/expected_keys.txt` (all keys of the dataset, whatever
`part`, next to those of other datasets in the same root) and a JSON report under `<out>/reports/`.
"""
from __future__ import annotations

import dataclasses
import inspect
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from auglift.cache import config_hash, list_shards, stray_temps
from auglift.core.config_io import check_fields, read_yaml_mapping
from auglift.pipeline.depth import depth_class
from auglift.pipeline.detect import detector_class

from .detect.people import MATCH_MAX_ERROR
from .detect.subjects import PeopleConfig
from .graph import run_tasks, spec_for
from .jobs import build_jobs, input_jobs, split_part
from .report import build_report, write_report

PRECOMPUTE_VERSION = "1"
MAX_LOGGED_FAILURES = 20   # the report lists them all
# Params that change where/how fast a model runs, not what it outputs: kept out of the hash.
_RUNTIME_PARAMS = ("device", "allow_download")


@dataclass
class PrecomputeConfig:
    detector: str = "mediapipe"
    detector_params: dict[str, Any] = field(default_factory=dict)
    depth: str = "landmark-z"
    depth_params: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 8             # frames per detect/depth call and per shard append
    backend: str = "zarr"           # cache backend: zarr or hdf5
    workers: int = 2                # LocalCluster worker processes (0: run inline, for debugging)
    threads: int = 1                # threads per worker for torch / OpenCV / BLAS / the video decoder
    scheduler: str | None = None    # address of an existing Dask scheduler (then `workers` is unused)
    gpu: bool = False               # models on "cuda"; tasks request the worker resource GPU=1
    overwrite: bool = False         # redo shards that already exist and verify
    part: tuple[int, int] | None = None  # (i, N): only every N-th sequence from the i-th (job arrays)
    # whose cues a shard holds (pipeline/detect/subjects.py): "subject" (ground-truth actor, else
    # the tracked subject), "all" (also one shard per other track), "frame" (per-frame choice)
    people: str = "subject"
    subject: str = "longest"        # tracked videos: "longest", "largest" or a track id
    people_margin: float = 0.25     # ground-truth box widened by this x its larger side
    match_max_error: float = MATCH_MAX_ERROR   # median joint error / actor size that still matches

    def people_spec(self) -> dict[str, Any]:
        """PeopleConfig fields (checked) as the workers take them."""
        return dataclasses.asdict(PeopleConfig(self.people, str(self.subject), float(self.people_margin),
                                               float(self.match_max_error)).check())

    def model_spec(self) -> dict[str, Any]:
        """Backend names and params as the workers build them (device added for --gpu)."""

        det_params, depth_params = dict(self.detector_params), dict(self.depth_params)
        for cls, params in ((detector_class(self.detector), det_params), (depth_class(self.depth), depth_params)):
            accepted = inspect.signature(cls.__init__).parameters
            unknown = sorted(set(params) - set(accepted))
            if unknown:
                raise ValueError(f"{cls.__name__} does not take {unknown}; it takes "
                                 f"{[p for p in accepted if p != 'self']}")
            if self.gpu and "device" in accepted:
                params.setdefault("device", "cuda")
        det_cls = detector_class(self.detector)
        lacking = [e for e in depth_class(self.depth).required_extras(**depth_params) if e not in det_cls.extras]
        if lacking:
            raise ValueError(f"depth backend {self.depth!r} needs the detector's per-landmark {lacking} but detector "
                             f"{self.detector!r} has no landmark z (it gives {list(det_cls.extras) or 'only x, y, c'}); "
                             f"use --detector mediapipe or another --depth")
        return {"detector": self.detector, "detector_params": det_params, "depth": self.depth,
                "depth_params": depth_params}

    def content(self, dataset: str) -> dict[str, Any]:
        """What determines the shards' content; its hash is every shard's `config_hash`."""
        spec = self.model_spec()
        strip = lambda d: {k: v for k, v in d.items() if k not in _RUNTIME_PARAMS}  # noqa: E731
        return {"builder": "pipeline.precompute", "version": PRECOMPUTE_VERSION, "dataset": dataset,
                "skeleton": "h36m17", "detector": spec["detector"], "detector_params": strip(spec["detector_params"]),
                "depth": spec["depth"], "depth_params": strip(spec["depth_params"]), "people": self.people_spec()}


def load_config(path: str | Path) -> PrecomputeConfig:
    """A YAML file of PrecomputeConfig fields; unknown fields are an error naming the file."""
    data = read_yaml_mapping(path, "precompute config")
    check_fields(PrecomputeConfig, data, str(path))
    if data.get("part") is not None:
        data["part"] = parse_part(str(data["part"]))
    return PrecomputeConfig(**data)


def parse_part(text: str) -> tuple[int, int]:
    """"i/N" -> (i, N), 0 <= i < N (SLURM: --part $SLURM_ARRAY_TASK_ID/N with --array=0-(N-1))."""
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise ValueError(f"--part {text!r}: expected i/N, e.g. 0/4") from None
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"--part {text!r}: need 0 <= i < N")
    return i, n


def parse_params(items) -> dict[str, Any]:
    """["key=value", ...] -> dict; values are parsed as YAML scalars (1, 0.5, true, null, text)."""

    out = {}
    for item in items or ():
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return out


def default_root(dataset: str, data_root: str | Path) -> Path:
    """Where a dataset's frames live when ROOT is not given."""
    data_root = Path(data_root)
    if dataset == "images":
        raise ValueError("dataset 'images' needs an explicit root: a folder of images or of image folders")
    return data_root


def run_precompute(dataset: str, root: str | Path | None, out: str | Path, config: PrecomputeConfig | None = None,
                   *, split: str | None = None, subjects: list[str] | None = None, jobs: list | None = None,
                   progress: bool = True, command: str | None = None, log: Callable[[str], None] | None = print,
                   dashboard: str | None = None) -> tuple[dict, Path]:
    """Precompute the shards of `dataset` (frames under `root`) into the cache root `out`.
    `dashboard`: the local cluster's Dask dashboard address (":8787"), printed by `log`.

    `jobs` (e.g. `jobs.input_jobs` of a user's files) replaces the dataset's own listing; they
    are then the dataset's expected keys. Returns (report, report path). Sequences that fail
    are in `report["failures"]`; the run itself only raises for problems that concern every
    sequence (bad config, no sequences).
    """

    cfg = config or PrecomputeConfig()
    if cfg.backend not in ("zarr", "hdf5"):
        raise ValueError(f"unknown cache backend {cfg.backend!r}; choose zarr or hdf5")
    if cfg.batch_size < 1 or cfg.threads < 1 or cfg.workers < 0:
        raise ValueError("batch_size and threads must be >= 1, workers >= 0")
    out = Path(out)
    content = cfg.content(dataset)
    chash = config_hash(content)
    t0 = time.perf_counter()
    jobs = build_jobs(dataset, root, split=split, subjects=subjects) if jobs is None else list(jobs)
    out.mkdir(parents=True, exist_ok=True)
    mine = split_part(jobs, cfg.part)
    if log:
        part = f" (part {cfg.part[0]}/{cfg.part[1]}: {len(mine)} of {len(jobs)})" if cfg.part else ""
        where = cfg.scheduler or (f"{cfg.workers} local workers" if cfg.workers else "inline")
        log(f"precompute {dataset}: {len(mine)} sequences{part} -> {out} [{cfg.detector} + {cfg.depth}, "
            f"{where}, config {chash}]")
    results, n_workers = run_tasks(mine, spec_for(cfg, out, chash), workers=cfg.workers,
                                   scheduler=cfg.scheduler, gpu=cfg.gpu, progress=progress, dashboard=dashboard,
                                   log=log, dataset=dataset, expected_keys=[j.key for j in jobs])
    wall = time.perf_counter() - t0
    run_config = {**dataclasses.asdict(cfg), "model_spec": cfg.model_spec(), "content": content,
                  "dataset": dataset, "root": str(root), "split": split, "subjects": subjects}
    report = build_report(results, config=run_config, config_hash=chash, out=out, wall_seconds=wall,
                          workers=n_workers, part=cfg.part, expected_keys=len(jobs),
                          stray_temps=len(stray_temps(out)), command=command)
    path = write_report(report, out, cfg.part)
    if log:
        s = report["summary"]
        log(f"{s['shards']['written']} written, {s['shards']['skipped']} skipped, {s['shards']['failed']} failed; "
            f"{s['frames']} frames ({s['frames_no_person']} without a person, {s['frames_concealed']} decoded with "
            f"errors concealed) in {s['wall_seconds']} s "
            f"-> report {path}")
        for f in report["failures"][:MAX_LOGGED_FAILURES]:
            log(f"FAILED {f['key']}: {f['file']}" + (f", frame {f['frame']}" if f["frame"] is not None else "")
                + f": {f['message']}")
        if len(report["failures"]) > MAX_LOGGED_FAILURES:
            log(f"... and {len(report['failures']) - MAX_LOGGED_FAILURES} more failures, listed in {path}")
    return report, path


def precompute_inputs(paths: list[Path], out: str | Path, config: PrecomputeConfig, *, progress: bool = True,
                      log: Callable[[str], None] | None = print) -> tuple[list[Path], int]:
    """A user's video files and image folders (`jobs.input_jobs`) -> shards in the cache root `out`.

    Returns (the paths of their shards, the number of sequences that failed); with
    `config.people == "all"` each sequence's other tracks (keys `<key>-track<k>`) come along.
    """

    if not paths:
        return [], 0
    found, failed = [], 0
    for dataset, jobs in input_jobs(paths).items():
        report, _ = run_precompute(dataset, None, out, config, jobs=jobs, progress=progress, log=log)
        bad = {f["key"] for f in report["failures"]}
        failed += len(bad)
        for job in (j for j in jobs if j.key not in bad):
            found += list_shards(out, job.key)
            found += list_shards(out, job.key + "-track*") if config.people == "all" else []
    return found, failed
