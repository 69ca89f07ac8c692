"""Training throughput: auglift's `train()` streaming from Zarr against the reference way, and DDP.

    python bench/bench_train.py [--cache CACHE_ROOT] [--batch 1024] [--steps 20] [--threads 1]

(a) auglift: `lifters.train.train` on SimpleBaseline (paper size) as it runs by default: windows
    streamed from the cache's shards (codec applied on the fly, shuffle buffer, flip
    augmentation) in the training process (`--num-workers 0`, train's default), read one step
    ahead by a thread (lifters/read_ahead.py), fused AdamW with gradient clipping. The shard
    memo (lifters/shard_memo.py) is warm: the reference's
    preparation and the untimed run read the same shards in this process first, as a study's
    earlier trainings, or a training's earlier epochs, do. `--num-workers 1` measures a loader
    worker process instead, whose memo starts empty every epoch.
(b) reference: the same model trained the way the reference implementations (SimpleBaseline,
    VideoPose3D) do it: every window encoded beforehand into tensors in RAM (not timed), a
    random permutation per epoch, torch.optim.Adam, batch 1024.
(c) DDP: `auglift train` under torchrun with 2 gloo processes against 1 process, same global
    batch (the default "batch" split, or --ddp-split shards).

samples/s = batch x steps / seconds of the training loop, where the loop time of `train()` is
taken from its history as the difference between a run of W + S steps and one of W steps (so
start-up, the codec fit and the shuffle buffer's first fill cancel). Beside it, CPU seconds per
sample: for (a) the training process's and its loader worker's together (the same difference of
two runs; the worker's time is counted when it exits, at the end of each run), for (b) the
process's over its timed steps. On a shared machine wall time moves with other jobs' load (and
(a), with two processes, loses more of it); CPU time moves less. Targets: (a)/(b) >= 1.0;
(c) is reported (2 cores shared with other jobs: expect little).
Without --cache, H36M ground-truth-2D shards of S1 and S5 are built from ../shared/data first.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]

from bench_stream import in_memory, memory_batches  # noqa: E402

from auglift.core.codec import CodecConfig  # noqa: E402
from auglift.lifters.config import config_from_dict, config_to_dict  # noqa: E402
from auglift.lifters.shards import fit_codec, resolve_shards  # noqa: E402
from auglift.lifters.metrics import mpjpe_loss  # noqa: E402
from auglift.lifters.models import build_model  # noqa: E402
from auglift.lifters.shard_memo import MEMO  # noqa: E402
from auglift.lifters.train import train  # noqa: E402


def config(cache: str, out: Path, args, steps: int):
    return config_from_dict({
        "model": {"name": "simple_baseline"}, "codec": {"channels": args.channels},
        "data": {"train": [cache], "num_workers": args.num_workers, "ddp_split": args.ddp_split},
        "optim": {"epochs": 1, "batch_size": args.batch, "max_steps": steps},
        "out": str(out), "seed": 0, "num_threads": args.threads, "device": "cpu"})


def loop_seconds(history: list[dict]) -> float:
    return float(sum(h["seconds"] for h in history))


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have exited (the loader workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def auglift_rate(cache: str, work: Path, args) -> tuple[float, float]:
    """(samples/s of `train()`'s loop, CPU ms per sample): (W+S)-step run minus W-step run."""
    secs, cpu = [], []
    for steps in (args.warmup, args.warmup + args.steps):
        c = cpu_seconds()
        r = train(config(cache, work / f"a{steps}", args, steps), progress=False, log=lambda s: None)
        cpu.append(cpu_seconds() - c)
        secs.append(loop_seconds(r.history))
    samples = args.batch * args.steps
    return samples / (secs[1] - secs[0]), 1000 * (cpu[1] - cpu[0]) / samples


def reference_data(cache: str, args):
    """Every window encoded beforehand into tensors (not timed), as the reference code does."""
    infos = resolve_shards(cache)
    codec = fit_codec(infos, CodecConfig(channels=args.channels))
    return in_memory(infos, codec) + (codec,)


def reference_rate(data, args) -> tuple[float, float]:
    """(samples/s, CPU ms per sample) of the reference loop: tensors in RAM, randperm batches, Adam."""
    x, y, codec = data
    torch.manual_seed(0)
    model = build_model("simple_baseline", codec.in_channels).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = memory_batches(x, y, args.batch)

    def run(n):
        for _ in range(n):
            b = next(batches)
            loss = mpjpe_loss(model(b["inputs"]), b["target"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    run(args.warmup)
    t0, c0 = time.perf_counter(), cpu_seconds()
    run(args.steps)
    samples = args.batch * args.steps
    return samples / (time.perf_counter() - t0), 1000 * (cpu_seconds() - c0) / samples


def torchrun_rate(cache: str, work: Path, args, nproc: int) -> float:
    """samples/s (global batch) of `auglift train` under torchrun with `nproc` processes."""
    from auglift.lifters.checkpoint import load_checkpoint

    secs = []
    for steps in (args.warmup, args.warmup + args.steps):
        cfg = config(cache, work / f"ddp{nproc}-{steps}", args, steps)
        path = work / f"ddp{nproc}-{steps}.yaml"
        path.write_text(yaml.safe_dump(config_to_dict(cfg)))
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                        "-m", "auglift.cli", "train", "--config", str(path), "--quiet"],
                       check=True, env=env, capture_output=True, cwd=REPO)
        secs.append(loop_seconds(load_checkpoint(Path(cfg.out) / "last.pt")["history"]))
    return args.batch * args.steps / (secs[1] - secs[0])


def gt_cache(work: Path) -> str:
    from auglift.pipeline.gt_shards import build_gt_shards

    out = work / "h36m_gt"
    build_gt_shards("h36m", REPO.parent / "shared" / "data", out, subjects=["S1", "S5"], log=None)
    return str(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", help="cache root of H36M shards (default: GT-2D shards of S1, S5 built here)")
    ap.add_argument("--channels", default="xy")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--num-workers", type=int, default=0, help="auglift's DataLoader worker processes")
    ap.add_argument("--ddp-split", choices=["batch", "shards"], default="batch")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of (a) and (b)")
    ap.add_argument("--skip-ddp", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cache = args.cache or gt_cache(work)
        print(f"{len(resolve_shards(cache))} shards in {cache}; SimpleBaseline paper size, channels {args.channels}, "
              f"batch {args.batch}, {args.steps} timed steps after {args.warmup}, {args.threads} torch thread(s); "
              f"load average {os.getloadavg()[0]:.1f}")
        data = reference_data(cache, args)
        # one untimed run first: one-off costs (lazy imports, first calls) stay out of the CPU difference
        train(config(cache, work / "untimed", args, 1), progress=False, log=lambda s: None)
        ours, ref = [], []
        for r in range(args.rounds):   # alternating, so that other processes' load hits both alike
            for which in (("a", "b") if r % 2 == 0 else ("b", "a")):
                if which == "a":
                    ours.append(auglift_rate(cache, work / f"r{r}", args))
                else:
                    ref.append(reference_rate(data, args))
        rounds = " ".join(f"{a[0] / b[0]:.3f}" for a, b in zip(ours, ref))
        (ours, ours_cpu), (ref, ref_cpu) = np.median(ours, axis=0), np.median(ref, axis=0)
        print(f"(a) auglift train(), streamed from Zarr ({args.num_workers} loader workers, shard memo "
              f"{MEMO.nbytes / 2**20:.0f} MiB): {ours:8.0f} samples/s, "
              f"CPU {ours_cpu:.3f} ms/sample (training + loader)")
        print(f"(b) reference: tensors in RAM, Adam, batch {args.batch}:            {ref:8.0f} samples/s, "
              f"CPU {ref_cpu:.3f} ms/sample")
        print(f"ratio (a)/(b) = {ours / ref:.3f}  (target >= 1.0; medians of {args.rounds} alternating rounds); "
              f"CPU per sample (b)/(a) = {ref_cpu / ours_cpu:.3f}")
        print(f"each round's (a)/(b): {rounds}  (their spread is this machine's run-to-run noise)")
        if not args.skip_ddp:
            one, two = torchrun_rate(cache, work, args, 1), torchrun_rate(cache, work, args, 2)
            print(f"(c) DDP, gloo, {args.ddp_split} split: 1 process {one:8.0f} samples/s, 2 processes {two:8.0f} "
                  f"samples/s: ratio {two / one:.2f}")
        print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
