"""Shared machinery of the training studies: simulated caches and trained lifters, made once.

Everything goes under the work directory (`runs/experiments/` by default):

    cache/<name>/      simulated shards (`auglift simulate` through its Python API)
    train/<name>/      a trained lifter (last.pt, best.pt, config.yaml, history.json)
    derived/<name>/    test sets derived from caches (e.g. time-reversed sequences)

A cache or lifter that exists with the same configuration is reused, so studies share them
(the cross-input study's xy/xycd lifters are the box-rescaling study's "on" rows) and an
interrupted `make experiments` resumes where it stopped.

The same context serves the task grid (`studies/grid.py`): with `planning` set, `train`
only records what it would train and the first use of a checkpoint (`needs_checkpoints`) ends
the study; with `client` set, evaluations run as Dask tasks; a training whose run directory
holds a `last.pt` but no finished stamp (a killed worker, a cut job) resumes from it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from auglift.cache.store import list_shards
from auglift.core.codec import CodecConfig
from auglift.lifters.config import TrainConfig, config_to_dict, validate
from auglift.lifters.distributed import resolve_device
from auglift.lifters.evaluate import evaluate
from auglift.lifters.train import train
from auglift.pipeline.simulate import simulate_dataset
from auglift.pipeline.simulate.run import SUMMARY_NAME, config_hash_of

from .common import PlanComplete

TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7")
VAL_SUBJECTS = ("S8",)           # every choice (best epoch) is made here, never on the test set
TEST_SUBJECTS = ("S9", "S11")


@dataclass
class StudyContext:
    size: str
    seed: int
    data_root: Path
    work: Path
    out: Path
    log: Callable[[str], None] = print
    device: str = "cpu"              # where lifters train and are evaluated (auto = CUDA when present)
    planning: bool = False           # record trainings instead of running them (grid.plan)
    may_train: bool = True           # False: a training not already finished is an error (grid assembly)
    client: Any = None               # a distributed.Client: evaluations become tasks ...
    resources: dict | None = None    # ... asking for these worker resources ({"GPU": 1} on a GPU grid)
    planned: list = dataclasses.field(default_factory=list)   # (name, TrainConfig) recorded while planning
    seeds: tuple[int, ...] = ()      # --seeds: the training seeds a study repeats its lifters over
    sim_seed: int | None = None      # the simulation-noise seed of the caches (None: `seed`)

    @property
    def cache_seed(self) -> int:
        """The seed of the simulated caches: `sim_seed` when set, else `seed`."""
        return self.seed if self.sim_seed is None else self.sim_seed

    @property
    def all_seeds(self) -> tuple[int, ...]:
        """The training seeds of a study: `seeds`, or this context's one seed."""
        return tuple(self.seeds) or (self.seed,)

    def for_seed(self, seed: int) -> "StudyContext":
        """This context training with `seed`, its caches kept at this context's cache seed (one
        simulated data set, several trainings: the spread over seeds is the training's)."""
        return dataclasses.replace(self, seed=int(seed), sim_seed=self.cache_seed, planned=self.planned)

    # ------------------------------------------------------------------ simulated caches
    def simulated(self, name: str, config, subjects: Sequence[str], actions: Sequence[str] | None = None,
                  dataset: str = "h36m", workers: int = 1) -> Path:
        """A cache of SIMULATED shards under `cache/<name>` for simulation seed 0, `cache/<name>-seed<N>`
        for seed N (made, or resumed, by the simulator). Per seed, so that runs of different seeds
        in one --work, concurrent ones included, never replace each other's shards; seed 0 keeps the
        name caches had before they were per seed."""

        root = self.work / "cache" / (name if self.cache_seed == 0 else f"{name}-seed{self.cache_seed}")
        want = {"config_hash": config_hash_of(config, dataset), "subjects": sorted(subjects),
                "actions": sorted(actions) if actions else None}
        stamp = root / "study_stamp.json"
        old = {}
        if stamp.exists():
            try:
                old = json.loads(stamp.read_text())
            except ValueError:
                pass
        if old == want and (root / SUMMARY_NAME).exists():
            return root
        # This cache belongs to the study: shards of the configuration it had before are replaced.
        replace = bool(old) and old.get("config_hash") != want["config_hash"]
        self.log(f"simulating {dataset} {','.join(subjects)} -> {root}")
        summary = simulate_dataset(dataset, self.data_root, root, config=config, subjects=list(subjects),
                                   actions=list(actions) if actions else None, workers=workers,
                                   overwrite=replace, log=None)
        if summary["shards"]["failed"]:
            raise RuntimeError(f"simulating {root}: {summary['shards']['failed']} shard(s) failed, e.g. "
                               f"{summary['failures'][:2]}")
        stamp.write_text(json.dumps(want))
        return root

    # ------------------------------------------------------------------ trained lifters
    def train(self, name: str, cfg) -> Path:
        """Train `cfg` into `train/<name>` unless a finished run with the same config is there.

        Returns the checkpoint to evaluate: best.pt (lowest validation MPJPE on S8) when the run
        has a validation set, else last.pt.
        """

        cfg, want, pick = self.run_dir(name, cfg)
        if self.planning:  # finished or not: every part of a job array must see the same list
            self.planned.append((name, cfg))
            return pick
        if self.finished(cfg, want, pick):
            return pick
        if not self.may_train:
            raise RuntimeError(f"{cfg.out}: training {name} has not finished (run the grid's trainings first)")
        out, done = Path(cfg.out), Path(cfg.out) / "study_done.json"
        resume = out / "last.pt" if (out / "last.pt").exists() else None   # cut short: continue it
        self.log(f"training {name}: {cfg.model.name} [{cfg.model.preset}] {cfg.codec.channels}, "
                 f"{cfg.optim.epochs} epochs" + (f", resumed from {resume}" if resume else ""))
        result = train(cfg, resume=resume, progress=False, log=lambda s: None)
        last = result.history[-1] if result.history else {}
        self.log(f"  {name}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                         for k, v in last.items()))
        done.write_text(json.dumps(want))
        return pick

    def run_dir(self, name: str, cfg):
        """(cfg with its run directory and this context's device, the comparable config, the
        checkpoint the studies evaluate)."""

        # The directory carries a hash of the configuration: two studies that train a lifter of
        # the same name on different schedules never overwrite each other.
        want = _comparable(config_to_dict(cfg))
        out = self.work / "train" / f"{name}-{config_key(want)}"
        cfg = dataclasses.replace(cfg, out=str(out), device=self.device)
        return cfg, want, out / ("best.pt" if cfg.data.val else "last.pt")

    @staticmethod
    def finished(cfg, want: dict, pick: Path) -> bool:
        """Whether `cfg`'s run directory holds a finished training of exactly `want`."""
        done = Path(cfg.out) / "study_done.json"
        if not (done.exists() and pick.exists()):
            return False
        try:
            return json.loads(done.read_text()) == want
        except ValueError:
            return False

    def needs_checkpoints(self) -> None:
        """Called where a study first uses its trained checkpoints: ends a planning pass."""
        if self.planning:
            raise PlanComplete()

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, checkpoints: Mapping[str, Path], tests: Mapping[str, Sequence[str]],
                 subjects: Mapping[str, Sequence[str] | None] | None = None,
                 allow_depth_kind_mismatch: bool = False) -> dict[str, dict[str, dict[str, Any]]]:
        """metrics[label][test] for every checkpoint on every test set (all frames).

        `subjects` optionally restricts a test set to some subjects.
        """
        self.needs_checkpoints()
        subjects = {t: list(s) for t, s in (subjects or {}).items() if s is not None}
        tests = {t: list(map(str, specs)) for t, specs in tests.items()}
        if self.client is None:
            return {label: evaluate_checkpoint(str(path), label, tests, subjects, allow_depth_kind_mismatch,
                                               self.device) for label, path in checkpoints.items()}
        # One task per checkpoint (on every test set).
        futures = {label: self.client.submit(evaluate_checkpoint, str(path), label, tests, subjects,
                                             allow_depth_kind_mismatch, self.device, pure=False,
                                             resources=self.resources)
                   for label, path in checkpoints.items()}
        return {label: fut.result() for label, fut in futures.items()}


def evaluate_checkpoint(path: str, label: str, tests: Mapping[str, list[str]], subjects: Mapping[str, list[str]],
                        allow_depth_kind_mismatch: bool, device: str) -> dict[str, dict[str, Any]]:
    """{test: metrics} of one checkpoint on every test set (a grid task, or run in place);
    `device` auto is resolved where it runs."""

    device = str(resolve_device(device))

    results = {}
    for test, specs in tests.items():
        memo = _eval_memo(path, specs, subjects.get(test), allow_depth_kind_mismatch)
        if memo.exists():
            try:
                results[test] = json.loads(memo.read_text())
                continue
            except ValueError:   # a torn memo (killed writer): evaluate again
                pass
        report = evaluate([path], [specs], names=[test], out=None, subjects=subjects.get(test), labels=[label],
                          allow_depth_kind_mismatch=allow_depth_kind_mismatch, progress=False, device=device)
        results[test] = json.loads(json.dumps(report["results"][label][test], default=_plain))
        tmp = memo.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(results[test]))
        tmp.replace(memo)
    return results


def _eval_memo(path: str, specs: Sequence[str], subjects: Sequence[str] | None, allow: bool) -> Path:
    """Where one evaluation of a checkpoint is kept: next to it, named by a hash of the checkpoint
    file (path, size, mtime) and of the test shards (every shard's inode and mtime), so a
    rerun of a study (another seed's page, a cut run) reuses it and any change evaluates anew."""

    ck = Path(path).stat()
    stamp = {"ckpt": [str(path), ck.st_size, ck.st_mtime_ns], "specs": [[s, _mtime(s)] for s in specs],
             "subjects": sorted(subjects) if subjects else None, "allow": bool(allow)}
    key = hashlib.sha256(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:16]
    return Path(path).parent / f"eval-{key}.json"


def _mtime(spec: str) -> list | None:
    """A test spec's state: (path, inode, mtime) of every committed shard it names (a rewritten
    shard is a new file or directory renamed into place, cache/FORMAT.md); None for a glob."""

    if not Path(spec).exists():
        return None
    return [[str(p), p.stat().st_ino, p.stat().st_mtime_ns] for p in list_shards(spec)]


def _plain(x):
    """numpy values -> JSON (an evaluation's per-joint arrays and numpy scalars)."""
    return x.tolist() if hasattr(x, "tolist") else str(x)


BUDGET_EPOCHS_WHY = ("2, what the hour of `make experiments` on 2 cores leaves for this study's lifters after the "
                     "cross-input study's (not tuned on any result); `--size full` trains 60.")


@dataclass(frozen=True)
class Schedule:
    """How long and on what a study's lifters train (the part that depends on --size)."""

    epochs: int = 4
    batch_size: int = 256
    lr: float = 1.0e-3
    lr_decay: float = 0.9
    stride: int = 4                    # frames between training windows
    val_every: int = 2                 # epochs between validations on S8 (the best one is kept)
    max_steps: int | None = None
    chosen: str = ""                   # how the epochs were chosen (printed on the page)


@dataclass(frozen=True)
class Lifter:
    model: str
    preset: str | None
    overrides: tuple[tuple[str, Any], ...] = ()   # model config fields, e.g. (("channels", 128),)

    @property
    def label(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in self.overrides)
        return f"{self.model} [{self.preset}{'; ' + extra if extra else ''}]"

    @property
    def slug(self) -> str:
        extra = "".join(f"-{k}{v}" for k, v in self.overrides)
        return f"{self.model}-{self.preset}{extra}".replace(" ", "").replace("(", "").replace(")", "").replace(",", "_")


def schedule_note(ctx: "StudyContext", schedule: Schedule) -> str:
    """What every training study says about its training budget."""
    text = (f"Training ({ctx.size} size): {schedule.epochs} epochs, batch {schedule.batch_size}, a window every "
            f"{schedule.stride} frames, learning rate {schedule.lr:g} x {schedule.lr_decay:g} per epoch, "
            f"{'seeds ' + ', '.join(map(str, ctx.all_seeds)) if len(ctx.all_seeds) > 1 else 'seed ' + str(ctx.seed)}"
            f"; the checkpoint kept is the one with the lowest MPJPE on S8 (validated every "
            f"{schedule.val_every} epoch(s)); no number was chosen on S9/S11." +
            (f" Epochs: {schedule.chosen}" if schedule.chosen else ""))
    if ctx.size == "small":
        text += (" This is a CPU-sized run (minutes per lifter on 2 cores, reduced widths): absolute errors are far "
                 "above the paper's, which trains paper-sized lifters for many epochs on a GPU. Read the tables "
                 "for directions (which input is better where), not for values; `--size full` is the paper-sized "
                 "setting.")
    return text


def train_config(ctx: "StudyContext", lifter: Lifter, channels: str, train: Sequence[str], schedule: Schedule,
                 val: Sequence[str] = (), box_rescale: bool = True, ordinal_bin: float | None = None,
                 train_subjects: Sequence[str] = TRAIN_SUBJECTS, val_subjects: Sequence[str] = VAL_SUBJECTS):
    """A TrainConfig for one study lifter: S1 S5 S6 S7 for training, S8 to pick the best epoch."""

    codec = CodecConfig(channels=channels, box_rescale=box_rescale)
    if ordinal_bin is not None:
        codec = dataclasses.replace(codec, ordinal_bin=float(ordinal_bin))
    cfg = TrainConfig(codec=codec, seed=ctx.seed)
    cfg.model.name, cfg.model.preset, cfg.model.overrides = lifter.model, lifter.preset, dict(lifter.overrides)
    cfg.data.train, cfg.data.train_subjects = [str(t) for t in train], list(train_subjects)
    cfg.data.val = [str(v) for v in val]
    cfg.data.val_subjects = list(val_subjects) if val else None
    cfg.data.stride = schedule.stride
    cfg.val_every = schedule.val_every
    o = cfg.optim
    o.epochs, o.batch_size, o.lr, o.lr_decay, o.max_steps = (schedule.epochs, schedule.batch_size, schedule.lr,
                                                            schedule.lr_decay, schedule.max_steps)
    validate(cfg)
    return cfg


def config_key(comparable: dict) -> str:
    """Short hash of a comparable training config (names its run directory)."""

    return hashlib.sha256(json.dumps(comparable, sort_keys=True).encode()).hexdigest()[:8]


def _comparable(d: dict) -> dict:
    """A config as compared for reuse: where it runs (and where it writes) does not change what it
    computes."""
    d = json.loads(json.dumps(d))
    d.pop("device", None)
    d.pop("out", None)
    d.get("data", {}).pop("num_workers", None)
    d.get("data", {}).pop("memo_mb", None)   # a memory budget: the same windows with any value
    return d


def summary_metrics(r: Mapping[str, Any]) -> dict[str, float]:
    """The four numbers every table shows, from one `lifters.evaluate.score` result."""
    return {"mpjpe": float(r["mpjpe"]), "p_mpjpe": float(r["p_mpjpe"]), "pck": float(r["pck"]),
            "auc": float(r["auc"]), "frames": int(r["frames"])}
