"""`auglift precompute`: raw frames -> cached (x, y, c, d) shards, as a Python function.

    from pipeline.precompute import PrecomputeConfig, run_precompute
    report, path = run_precompute("videos", "../shared/data/videos", "runs/cache", PrecomputeConfig())

Defaults are the embedded, offline pair: MediaPipe BlazePose (2D) + its landmark z (depth).
The paper-faithful pair is `detector="rtmpose"` + `depth="depth-anything"` with local
checkpoints (see pipeline/detect/rtmpose.py, pipeline/depth/depth_anything.py).

Resume: a shard that verifies and carries this run's config hash is skipped; one that fails
verification is rewritten; a verified shard from another configuration is a failure unless
`overwrite`. Every run writes `<out>/expected_keys.txt` (all keys of the dataset, whatever
`part`, next to those of other datasets in the same root) and a JSON report under `<out>/reports/`.
"""
from __future__ import annotations

import dataclasses
import inspect
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .config_io import check_fields, read_yaml_mapping

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

    def model_spec(self) -> dict[str, Any]:
        """Backend names and params as the workers build them (device added for --gpu)."""
        from pipeline.depth import depth_class
        from pipeline.detect import detector_class

        det_params, depth_params = dict(self.detector_params), dict(self.depth_params)
        for cls, params in ((detector_class(self.detector), det_params), (depth_class(self.depth), depth_params)):
            accepted = inspect.signature(cls.__init__).parameters
            unknown = sorted(set(params) - set(accepted))
            if unknown:
                raise ValueError(f"{cls.__name__} does not take {unknown}; it takes "
                                 f"{[p for p in accepted if p != 'self']}")
            if self.gpu and "device" in accepted:
                params.setdefault("device", "cuda")
        return {"detector": self.detector, "detector_params": det_params, "depth": self.depth,
                "depth_params": depth_params}

    def content(self, dataset: str) -> dict[str, Any]:
        """What determines the shards' content; its hash is every shard's `config_hash`."""
        spec = self.model_spec()
        strip = lambda d: {k: v for k, v in d.items() if k not in _RUNTIME_PARAMS}  # noqa: E731
        return {"builder": "pipeline.precompute", "version": PRECOMPUTE_VERSION, "dataset": dataset,
                "skeleton": "h36m17", "detector": spec["detector"], "detector_params": strip(spec["detector_params"]),
                "depth": spec["depth"], "depth_params": strip(spec["depth_params"])}


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
    import yaml

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
    if dataset in ("videos", "samples"):
        return data_root / dataset
    if dataset == "images":
        raise ValueError("dataset 'images' needs an explicit root: a folder of images or of image folders")
    return data_root


def write_expected_keys(out: str | Path, dataset: str, keys: list[str]) -> Path:
    """Refresh `dataset`'s keys in `<out>/expected_keys.txt` (all parts, not only this one).

    Keys of other datasets precomputed into the same root are kept, so the file lists every
    shard the root should hold. Replaced atomically; the parts of a job array write the same
    content, so their races are harmless.
    """
    from cache import sanitise_component

    path = Path(out) / "expected_keys.txt"
    prefix = sanitise_component(dataset) + "/"
    others = []
    if path.is_file():
        others = [k for k in path.read_text().split() if k and not k.startswith(prefix)]
    tmp = path.with_name(f".expected_keys.{os.getpid()}.tmp")
    tmp.write_text("".join(k + "\n" for k in sorted(set(others) | set(keys))))
    os.replace(tmp, path)
    return path


def run_precompute(dataset: str, root: str | Path, out: str | Path, config: PrecomputeConfig | None = None, *,
                   split: str | None = None, subjects: list[str] | None = None, progress: bool = True,
                   command: str | None = None, log: Callable[[str], None] | None = print,
                   dashboard: str | None = None) -> tuple[dict, Path]:
    """Precompute the shards of `dataset` (frames under `root`) into the cache root `out`.
    `dashboard`: the local cluster's Dask dashboard address (":8787"), printed by `log`.

    Returns (report, report path). Sequences that fail are in `report["failures"]`; the run
    itself only raises for problems that concern every sequence (bad config, no sequences).
    """
    from cache import config_hash, stray_temps

    from .graph import run_tasks, spec_for
    from .jobs import build_jobs, split_part
    from .report import build_report, write_report

    cfg = config or PrecomputeConfig()
    if cfg.backend not in ("zarr", "hdf5"):
        raise ValueError(f"unknown cache backend {cfg.backend!r}; choose zarr or hdf5")
    if cfg.batch_size < 1 or cfg.threads < 1 or cfg.workers < 0:
        raise ValueError("batch_size and threads must be >= 1, workers >= 0")
    out = Path(out)
    content = cfg.content(dataset)
    chash = config_hash(content)
    t0 = time.perf_counter()
    jobs = build_jobs(dataset, root, split=split, subjects=subjects)
    out.mkdir(parents=True, exist_ok=True)
    write_expected_keys(out, dataset, [j.key for j in jobs])
    mine = split_part(jobs, cfg.part)
    if log:
        part = f" (part {cfg.part[0]}/{cfg.part[1]}: {len(mine)} of {len(jobs)})" if cfg.part else ""
        where = cfg.scheduler or (f"{cfg.workers} local workers" if cfg.workers else "inline")
        log(f"precompute {dataset}: {len(mine)} sequences{part} -> {out} [{cfg.detector} + {cfg.depth}, "
            f"{where}, config {chash}]")
    results, n_workers = run_tasks(mine, spec_for(cfg, out, chash), workers=cfg.workers,
                                   scheduler=cfg.scheduler, gpu=cfg.gpu, progress=progress, dashboard=dashboard,
                                   log=log)
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
            f"{s['frames']} frames ({s['frames_no_person']} without a person) in {s['wall_seconds']} s "
            f"-> report {path}")
        for f in report["failures"][:MAX_LOGGED_FAILURES]:
            log(f"FAILED {f['key']}: {f['file']}" + (f", frame {f['frame']}" if f["frame"] is not None else "")
                + f": {f['message']}")
        if len(report["failures"]) > MAX_LOGGED_FAILURES:
            log(f"... and {len(report['failures']) - MAX_LOGGED_FAILURES} more failures, listed in {path}")
    return report, path
