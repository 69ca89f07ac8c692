"""The studies as a task grid: every training and evaluation a Dask task, or a share of a job array.

    auglift study run all --size full --workers 4 --gpus          # local cluster, one worker per GPU
    auglift study run all --size full --scheduler tcp://host:8786 --gpus
    auglift study run all --size full --part 3/16                 # job-array part 3 of 16, no scheduler

Three passes over the named studies:

1. plan: each study runs with a planning context (`StudyContext.planning`): its caches are made
   as usual, here; every `ctx.train` is recorded; the first use of a checkpoint ends the study.
   Studies that train nothing (`TRAINS = False`, the latency benchmark) wait for the last pass.
2. train: every recorded training without a finished stamp becomes a task (resource `GPU=1`
   with --gpus). It trains in its own run directory (`work/train/<name>-<config hash>`) and
   resumes from the `last.pt` it finds there, so a task that Dask redoes after its worker died
   continues from its last finished epoch; a finished one is skipped without a task. With
   `part=(i, N)` this process trains every N-th training from the i-th itself.
3. assemble: when every training is finished, the studies run again with a context that may
   not train; their evaluations are tasks (in-process for a part), and the pages are written
   exactly as a sequential run writes them. Of the parts, the one that finds everything
   finished assembles (a lock file keeps a second one out); the others say what remains.
"""
from __future__ import annotations

import os
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from . import make_context, run_all, study_module
from .common import PlanComplete

LOCK_NAME = "grid-assembly.lock"


@dataclass(frozen=True)
class Training:
    """One lifter a study needs: the config (run directory and device set) and its stamp."""

    study: str
    name: str
    config: Any                   # lifters.config.TrainConfig
    want: dict = field(hash=False, compare=False, default_factory=dict)
    pick: Path = Path()

    @property
    def out(self) -> Path:
        return Path(self.config.out)


def plan(names: Sequence[str], ctx_fields: dict, configs: dict | None = None,
         log: Callable[[str], None] = print) -> list[Training]:
    """Every training the named studies need, in study order, each once (studies share lifters)."""
    out: dict[Path, Training] = {}
    for name in names:
        mod = study_module(name)
        if not getattr(mod, "TRAINS", True):
            continue
        ctx = make_context(**ctx_fields, log=log, planning=True)
        cfg = (configs or {}).get(name) or mod.Config.for_size(ctx.size)
        try:
            mod.run(ctx, cfg)
        except PlanComplete:
            pass
        for lifter, tcfg in ctx.planned:
            tcfg, want, pick = ctx.run_dir(lifter, tcfg)
            out.setdefault(Path(tcfg.out), Training(name, lifter, tcfg, want, pick))
    return list(out.values())


def finished(ctx_fields: dict, t: Training) -> bool:
    ctx = make_context(**ctx_fields, log=_quiet)
    return ctx.finished(*ctx.run_dir(t.name, t.config))


def train_task(ctx_fields: dict, name: str, cfg) -> dict[str, Any]:
    """Train one study lifter (skipped if finished, resumed if cut short); where and when it ran."""
    ctx = make_context(**ctx_fields, log=_quiet)
    cfg, want, pick = ctx.run_dir(name, cfg)
    skipped = ctx.finished(cfg, want, pick)
    resumed = not skipped and (Path(cfg.out) / "last.pt").exists()
    t0 = time.time()
    ctx.train(name, cfg)
    return {"name": name, "out": cfg.out, "start": t0, "end": time.time(), "skipped": skipped,
            "resumed": resumed, "worker": f"{socket.gethostname()}:{os.getpid()}"}


def run_trainings(client, trainings: list[Training], ctx_fields: dict, resources: dict | None,
                  log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Submit the unfinished trainings as tasks and wait for all; returns one record per training
    ("error" set for a failed one)."""
    from distributed import as_completed

    records = [{"name": t.name, "out": str(t.out), "skipped": True} for t in trainings
               if finished(ctx_fields, t)]
    run_id = uuid.uuid4().hex[:6]
    futures = {client.submit(train_task, ctx_fields, t.name, t.config, key=f"train-{t.out.name}-{run_id}",
                             pure=False, resources=resources): t
               for t in trainings if not finished(ctx_fields, t)}
    log(f"grid: {len(futures)} trainings submitted, {len(records)} already finished")
    for fut in as_completed(list(futures)):
        t = futures[fut]
        try:
            rec = fut.result()
            log(f"  trained {t.name} on {rec['worker']} in {rec['end'] - rec['start']:.0f} s"
                + (" (resumed)" if rec["resumed"] else ""))
        except Exception as e:  # a training that raised, or a worker that kept dying under it
            rec = {"name": t.name, "out": str(t.out), "error": f"{type(e).__name__}: {e}"}
            log(f"  FAILED {t.name}: {rec['error']}")
        records.append(rec)
        fut.release()
    return records


def run_grid(names: Sequence[str], size: str = "small", seed: int = 0, data_root: str | Path = "../shared/data",
             out: str | Path = "results", work: str | Path = "runs/experiments", *, client=None,
             part: tuple[int, int] | None = None, device: str | None = None, gpus: bool = False,
             configs: dict | None = None, prepare_only: bool = False, seeds: Sequence[int] = (),
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """Plan, train (as tasks on `client`, or this process's `part`), assemble (see the module
    docstring). `seeds`: every seed's trainings are tasks, and the pages give mean ± std over them
    (the caches are simulated once, with the first seed, as `--seeds` does in one process).
    Returns {"status": {study: "ok" | "FAILED: ..." | "waiting ..."}, "trainings": [records]}."""
    if client is None and part is None and not prepare_only:
        raise ValueError("run_grid needs a Dask client or a part (i, N)")
    seeds = tuple(int(s) for s in seeds)
    ctx_fields = dict(size=size, seed=seeds[0] if seeds else int(seed), data_root=str(data_root), work=str(work),
                      out=str(out), device=device, seeds=seeds)
    trainings = plan(names, ctx_fields, configs, log)
    log(f"grid: {len(trainings)} trainings for {', '.join(names)}")
    if prepare_only:
        return {"status": {n: "prepared" for n in names}, "trainings": []}
    resources = {"GPU": 1} if gpus else None
    if part is not None:
        i, n = part
        records = [train_task(ctx_fields, t.name, t.config) for t in trainings[i::n]]
        left = [t for t in trainings if not finished(ctx_fields, t)]
        if left:
            log(f"grid part {i}/{n}: {len(left)} of {len(trainings)} trainings still to do elsewhere; "
                "the last part to finish writes the pages")
            return {"status": {s: f"waiting for {len(left)} trainings" for s in names}, "trainings": records}
        with _assembly_lock(Path(work)) as mine:
            if not mine:
                log("grid: another part is writing the pages")
                return {"status": {s: "assembled by another part" for s in names}, "trainings": records}
            return {"status": _assemble(names, ctx_fields, configs, None, None, log), "trainings": records}
    records = run_trainings(client, trainings, ctx_fields, resources, log)
    return {"status": _assemble(names, ctx_fields, configs, client, resources, log), "trainings": records}


def _assemble(names, ctx_fields: dict, configs, client, resources, log) -> dict[str, str]:
    """The studies once more, every training finished: evaluations (tasks on `client`) and pages."""
    f = dict(ctx_fields)
    return run_all(f.pop("size"), f.pop("seed"), only=list(names), configs=configs, log=log, client=client,
                   resources=resources, may_train=False, **f)


@contextmanager
def _assembly_lock(work: Path):
    """True inside if this process holds the assembly lock (created atomically), else False."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / LOCK_NAME
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        yield False
        return
    try:
        os.write(fd, f"{socket.gethostname()}:{os.getpid()}\n".encode())
        yield True
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)


def _quiet(_: str) -> None:
    """Workers' study log (the client logs each task's outcome)."""
