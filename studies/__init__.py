"""The paper's studies, one module each, every one runnable as one command.

    auglift study list
    auglift study run cross_input --size small          # one study -> results/cross_input.{md,json}
    auglift study run all --size small                  # what `make experiments` runs

Each study module has `TITLE`, a `Config` dataclass with `for_size("small" | "full")`
(small: fits 2 CPU cores, all studies within about an hour; full: the paper-sized setting for
a GPU cluster) and `run(ctx, cfg) -> StudyResult`. Shared simulated caches and trained lifters
live under the work directory (default `runs/experiments/`) and are reused between studies
and between runs. Results are written by `common.write_results` with their provenance.
`studies/grid.py` runs the same studies' trainings and evaluations as Dask tasks.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable, Sequence

from auglift.core.config_io import registered

from .common import MEDIUM_STUDIES, SIZES, Provenance, StudyResult, apply_overrides, reproduce_command, write_results
from .context import StudyContext

# Run order of `all`: the cheap, dependency-free studies first, so that a cut-short run still
# leaves results; the training studies share caches and checkpoints in this order.
# name -> module (relative to this package; core.config_io.registered)
STUDIES: dict[str, str] = {
    "latency": "latency",
    "cross_input": "cross_input",
    "box_rescale": "box_rescale",
    "end_to_end": "end_to_end",
    "ordinal": "ordinal",
    "sequence_length": "sequence_length",
}


def study_module(name: str):
    return registered(STUDIES, __name__, name, "study")


def make_context(size: str, seed: int, data_root: str | Path, work: str | Path, out: str | Path,
                 log: Callable[[str], None] = print, device: str | None = None, **fields) -> StudyContext:
    """The studies' context; `device` None: cpu for --size small and medium (their pages are CPU
    runs), auto (CUDA when present) for full. `fields`: the grid's StudyContext fields (client, planning, ...)."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    device = device or ("auto" if size == "full" else "cpu")
    return StudyContext(size=size, seed=int(seed), data_root=Path(data_root), work=Path(work), out=Path(out),
                        log=log, device=device, **fields)


def run_study(name: str, size: str = "small", seed: int = 0, data_root: str | Path = "../shared/data",
              out: str | Path = "results", work: str | Path = "runs/experiments",
              log: Callable[[str], None] = print, device: str | None = None, config=None,
              seeds: Sequence[int] = (), sitting_minutes: float | None = None, overrides: Sequence[str] = (),
              **fields) -> Path:
    """Run one study and write its results; returns the markdown page. `config`: the study's
    Config instead of `Config.for_size(size)` (tests, custom grids); `seeds`: train every lifter
    once per seed and report mean ± std (the first seed replaces `seed`); `sitting_minutes`:
    --size medium's training minutes per lifter in this run; `overrides`: `--set FIELD=VALUE`
    items applied to the Config (common.apply_overrides); `fields`: see make_context."""
    if size == "medium" and name not in MEDIUM_STUDIES:
        raise ValueError(f"--size medium exists for {', '.join(MEDIUM_STUDIES)} only, not {name!r}")
    seeds = tuple(int(s) for s in seeds)
    seed = seeds[0] if seeds else seed
    ctx = make_context(size, seed, data_root, work, out, log, device, seeds=seeds, **fields)
    mod = study_module(name)
    if len(seeds) > 1 and not getattr(mod, "SEEDED", False):
        raise ValueError(f"--seeds: study {name!r} reports one seed only; use --seed")
    cfg = config if config is not None else mod.Config.for_size(size)
    cfg = _overridden(cfg, overrides)
    extra = [x for item in overrides for x in ("--set", item)]
    if sitting_minutes is not None and size == "medium":
        cfg = dataclasses.replace(cfg, sitting_minutes=float(sitting_minutes))
        extra += ["--sitting-minutes", f"{sitting_minutes:g}"]
    data_desc = mod.data_description(ctx, cfg) if hasattr(mod, "data_description") else {"root": str(data_root)}
    prov = Provenance.start(name, size, seed, data_desc, dataclasses.asdict(cfg),
                            reproduce_command(name, size, seed, data_root, extra, seeds), out_dir=out)
    prov.seeds = list(ctx.all_seeds)
    t0 = time.perf_counter()
    log(f"== study {name} ({size}, seed{'s ' + ','.join(map(str, seeds)) if len(seeds) > 1 else ' ' + str(seed)}) ==")
    result: StudyResult = mod.run(ctx, cfg)
    prov.seconds = round(time.perf_counter() - t0, 1)
    md, _ = write_results(out, result, prov)
    log(f"== {name}: wrote {md} in {prov.seconds:.0f} s" + ("" if result.complete else " (INCOMPLETE)"))
    return md


def _overridden(cfg, overrides: Sequence[str]):
    """`cfg` with `--set` overrides; a schedule changed on the command line says so where the page
    gives the reason for its epochs (the size's own reason no longer applies as it stands)."""
    cfg = apply_overrides(cfg, overrides)
    changed = [o for o in overrides if o.startswith("schedule.")]
    if changed and hasattr(cfg, "schedule"):
        why = (f"set on the command line ({', '.join('--set ' + o for o in changed)}) to fit this run's CPU time, "
               f"not chosen on any result; the size's own schedule and its reason: {cfg.schedule.chosen or 'none given'}")
        cfg = dataclasses.replace(cfg, schedule=dataclasses.replace(cfg.schedule, chosen=why))
    return cfg


def run_all(size: str = "small", seed: int = 0, only: list[str] | None = None,
            configs: dict | None = None, **kwargs) -> dict[str, str]:
    """Every study in order; a failing study is reported and the others still run.
    `configs`: {study: Config} replacing `Config.for_size` for those studies."""
    log = kwargs.get("log", print)
    status = {}
    for name in only or list(STUDIES):
        try:
            run_study(name, size, seed, config=(configs or {}).get(name), **kwargs)
            status[name] = "ok"
        except Exception as e:  # one study's failure must not lose the others' results
            status[name] = f"FAILED: {type(e).__name__}: {e}"
            log(f"== {name}: {status[name]}")
    return status


__all__ = ["STUDIES", "StudyContext", "StudyResult", "make_context", "run_all", "run_study", "study_module"]
