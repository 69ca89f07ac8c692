"""Training throughput of SimpleBaseline fed by the streaming dataset vs from memory, and the
streaming dataset's peak memory as the number of shards grows.

    python bench/bench_stream.py --cache CACHE_ROOT [--channels xycd] [--batch 1024] [--steps 60]

(a) stream: `WindowDataset` over the Zarr shards (read in blocks, codec applied on the fly, shard
    interleaving + bounded shuffle buffer) through a `DataLoader(batch_size=None)`.
(a') stream + memo: the same, with the per-process shard memo (`data.memo_mb`, lifters/shard_memo.py):
    after the first pass over a shard its checked arrays are kept, so later epochs read no file.
(b) memory: the same windows read and ENCODED BEFOREHAND into tensors (the codec work is not
    timed, so (b) is an upper bound on what any loader can reach), shuffled with randperm and
    indexed per batch.
Both train the same SimpleBaseline (paper size) with the same batch size, optimiser and thread
count for the same number of steps, after the same warm-up, in alternating timed rounds (so that
load from other processes affects both alike); samples/s = batch * steps / time.
The target is (a)/(b) >= 0.9; (a') is (a) as `train()` runs it by default (memo 1 GiB).

Memory: a fresh subprocess streams one epoch over N shards (N = 10, 40 and 160 by default), without
training, and reports its peak RSS (VmHWM) and the tracemalloc peak of Python/numpy
allocations, with the memo off (`--memo-mb 0`): with a bounded shuffle buffer these should not
grow with N. With the memo on, memory grows with the shards read, up to the memo's budget.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]

from auglift.core.codec import CodecConfig  # noqa: E402
from auglift.lifters.data import WindowDataset, WindowSpec  # noqa: E402
from auglift.lifters.shards import fit_codec, resolve_shards  # noqa: E402
from auglift.lifters.metrics import mpjpe_loss  # noqa: E402
from auglift.lifters.models import build_model  # noqa: E402
from auglift.lifters.shard_memo import DEFAULT_BUDGET_MB, MEMO  # noqa: E402


def make_stream(infos, codec, args, shuffle_buffer, memo_mb):
    ds = WindowDataset(infos, codec, WindowSpec(1), shuffle=True, flip=0.0, batch_size=args.batch, drop_last=True,
                       seed=0, shuffle_buffer=shuffle_buffer, open_shards=4, memo_mb=memo_mb)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=args.num_workers)
    return ds, loader


def endless(ds, loader):
    epoch = 0
    while True:
        ds.set_epoch(epoch)
        yield from loader
        epoch += 1


def in_memory(infos, codec) -> tuple[torch.Tensor, torch.Tensor]:
    ds = WindowDataset(infos, codec, WindowSpec(1), batch_size=65536)
    parts = list(ds)
    return torch.cat([p["inputs"] for p in parts]), torch.cat([p["target"] for p in parts])


def memory_batches(x, y, batch):
    while True:
        perm = torch.randperm(len(x))
        for i in range(0, len(x) - batch + 1, batch):
            idx = perm[i : i + batch]
            yield {"inputs": x[idx], "target": y[idx]}


class Trainer:
    """One SimpleBaseline + optimiser fed by one batch source; times its own steps."""

    def __init__(self, batches, channels: int):
        torch.manual_seed(0)
        self.batches = batches
        self.model = build_model("simple_baseline", channels).train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3)
        self.seconds, self.samples = 0.0, 0

    def run(self, steps: int, timed: bool = True) -> None:
        t0 = time.perf_counter()
        for _ in range(steps):
            b = next(self.batches)
            loss = mpjpe_loss(self.model(b["inputs"]), b["target"])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            if timed:
                self.samples += len(b["inputs"])
        if timed:
            self.seconds += time.perf_counter() - t0

    @property
    def rate(self) -> float:
        return self.samples / self.seconds


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). Unlike ru_maxrss it is not inherited across
    exec from the parent, which holds the in-memory copy of the data."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def memory_probe(args) -> None:
    """Child process: stream one epoch over the first N shards; print peak memory as JSON."""
    import tracemalloc

    infos = resolve_shards(args.cache, subjects=args.subjects)[: args.probe]
    codec = fit_codec(infos, CodecConfig(channels=args.channels))
    base = peak_rss_mb()
    tracemalloc.start()
    ds, loader = make_stream(infos, codec, args, args.shuffle_buffer, args.memo_mb)
    windows = 0
    for batch in loader:
        windows += len(batch["inputs"])
    _, peak = tracemalloc.get_traced_memory()
    print(json.dumps({"shards": len(infos), "windows": windows, "frames": sum(i.n_frames for i in infos),
                      "buffer_capacity": ds.buffer_capacity(),
                      "peak_rss_mb": peak_rss_mb(), "rss_before_stream_mb": base,
                      "tracemalloc_peak_mb": peak / 2**20}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True, help="cache root with H36M shards (e.g. from `auglift cache build-gt`)")
    ap.add_argument("--subjects", type=lambda s: s.split(","), default=None)
    ap.add_argument("--channels", default="xycd")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=6, help="alternating timed rounds of (a) and (b)")
    ap.add_argument("--num-workers", type=int, default=0)
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--shuffle-buffer", type=int, default=16384)
    ap.add_argument("--max-shards", type=int, default=60, help="shards used for the throughput part")
    ap.add_argument("--memory-shards", default="10,40,160")
    ap.add_argument("--memory-buffer", type=int, default=2048,
                    help="shuffle buffer (windows) for the memory part: below the 10-shard window count, so "
                         "that both runs fill it and only the number of shards differs")
    ap.add_argument("--memo-mb", type=float, default=0.0, help="shard memo budget of the memory part")
    ap.add_argument("--probe", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.probe:
        return memory_probe(args)

    infos = resolve_shards(args.cache, subjects=args.subjects)[: args.max_shards]
    codec = fit_codec(infos, CodecConfig(channels=args.channels))
    print(f"{len(infos)} shards, {sum(i.n_frames for i in infos)} frames, channels {args.channels}, "
          f"batch {args.batch}, {args.steps} timed steps after {args.warmup}, torch threads "
          f"{torch.get_num_threads()}, DataLoader workers {args.num_workers}")
    x, y = in_memory(infos, codec)
    MEMO.clear()   # in_memory read through the memo; (a') starts with it empty, as a training does
    mem = Trainer(memory_batches(x, y, args.batch), codec.in_channels)
    stream = Trainer(endless(*make_stream(infos, codec, args, args.shuffle_buffer, 0.0)), codec.in_channels)
    memo = Trainer(endless(*make_stream(infos, codec, args, args.shuffle_buffer, DEFAULT_BUDGET_MB)),
                   codec.in_channels)
    for trainer in (mem, stream, memo):
        trainer.run(args.warmup, timed=False)
    # Alternate short timed rounds so that a change in load from other processes hits all alike.
    per_round = max(1, args.steps // args.rounds)
    for r in range(args.rounds):
        for trainer in ((mem, stream, memo) if r % 2 == 0 else (memo, stream, mem)):
            trainer.run(per_round)
    print(f"(a)  streaming from Zarr:        {stream.rate:8.0f} samples/s")
    print(f"(a') streaming, shard memo on:   {memo.rate:8.0f} samples/s  (memo {MEMO.nbytes / 2**20:.0f} MiB at the end)")
    print(f"(b)  in-memory tensors:          {mem.rate:8.0f} samples/s  (codec precomputed, not timed)")
    print(f"ratio (a)/(b) = {stream.rate / mem.rate:.3f}  (target >= 0.9); (a')/(b) = {memo.rate / mem.rate:.3f}")

    print(f"peak memory while streaming one epoch (shuffle buffer {args.memory_buffer} windows, memo off):")
    for n in [int(v) for v in args.memory_shards.split(",")]:
        cmd = [sys.executable, __file__, "--cache", args.cache, "--channels", args.channels, "--batch",
               str(args.batch), "--num-workers", "0", "--shuffle-buffer", str(args.memory_buffer), "--probe", str(n),
               "--memo-mb", "0"]
        if args.subjects:
            cmd += ["--subjects", ",".join(args.subjects)]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        print(f"  {r['shards']:3d} shards ({r['frames']:6d} frames, {r['windows']:6d} windows): peak RSS "
              f"{r['peak_rss_mb']:7.1f} MiB (before streaming {r['rss_before_stream_mb']:.1f}), "
              f"tracemalloc peak {r['tracemalloc_peak_mb']:6.1f} MiB, buffer capacity {r['buffer_capacity']}")


if __name__ == "__main__":
    main()
