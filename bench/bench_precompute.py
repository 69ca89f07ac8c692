"""Precompute throughput: a plain sequential loop vs the Dask stage graph, on the same frames.

    .venv/bin/python bench/bench_precompute.py [--data ../shared/data] [--workers 2] [--frames 96]

Frames: the two shared real videos and the three 1000x1002 H36M sample frames, each re-encoded
(untimed set-up, libx264 at near-lossless quality) into `--frames`-long sequences, `--copies`
sequences per source, so 6 x 96 = 576 frames by default. The shared videos are 5 frames long, so
every sequence cycles a few real frames (a scene cut every 3-5 frames, every frame for the H36M
stills). Sequence length matters because every shard costs a fixed few tens of ms to create,
checksum and commit ("write" below, over 6 shards): Human3.6M sequences have 199-1083 frames even
at the shared data's 10 fps (median 448; 5x that at the native 50 fps), so 96 frames still
overstates that cost; the former default of 32 frames trebled it.
Models: the embedded defaults (MediaPipe BlazePose + landmark-z), or any --detector/--depth;
`--depth-anything-random` puts the paper's depth model (Depth Anything V2 Small, 518 px) behind
BlazePose with RANDOM weights, which costs what the real model costs but whose depths mean
nothing (timing only). One untimed pass of both over `--workers` sequences comes first (the
first shard a process writes imports zarr and starts its I/O thread).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def make_sequences(data: Path, folder: Path, frames: int, copies: int) -> None:
    """Re-encode each source into `copies` videos of `frames` frames (its frames, cycled)."""
    import av

    from auglift.pipeline.frames.images import read_image
    from auglift.pipeline.frames.video import iter_video_batches

    sources = {p.stem: np.concatenate([b.frames for b in iter_video_batches(p, batch_size=64)])
               for p in sorted((data / "videos").glob("*.mp4"))}
    h36m = [read_image(p) for p in sorted((data / "samples").glob("h36m_*.jpg"))]
    sources["h36m_samples"] = np.stack([im for im in h36m if im.shape == h36m[0].shape])
    for name, src in sources.items():
        for c in range(copies):
            with av.open(str(folder / f"{name}_{c}.mp4"), "w") as out:
                stream = out.add_stream("libx264", rate=25, options={"crf": "18", "preset": "veryfast"})
                stream.height, stream.width = src.shape[1:3]
                stream.pix_fmt = "yuv420p"
                stream.codec_context.thread_count = 1
                for i in range(frames):
                    frame = av.VideoFrame.from_ndarray(src[(i + c) % len(src)], format="rgb24")
                    for pkt in stream.encode(frame):
                        out.mux(pkt)
                for pkt in stream.encode():
                    out.mux(pkt)


def save_random_depth_anything(folder: Path) -> Path:
    """Depth Anything V2 Small (24.8 M params, 518 px, the paper's depth model) with RANDOM weights,
    saved as a local checkpoint directory that the depth-anything backend loads like a real one."""
    import torch
    from transformers import DPTImageProcessor

    from auglift.studies.latency import depth_anything_v2_small

    path = folder / "random-depth-anything-v2-small"
    torch.manual_seed(0)
    depth_anything_v2_small(518).save_pretrained(path)
    # The processor settings of the released Depth-Anything-V2-Small-hf checkpoint.
    DPTImageProcessor(size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14,
                      resample=3, do_pad=False, image_mean=[0.485, 0.456, 0.406],
                      image_std=[0.229, 0.224, 0.225]).save_pretrained(path)
    return path


def cpu_seconds(children: bool) -> float:
    """CPU seconds (user + system, all threads) of this process, and of its children if asked
    (the LocalCluster's nannies and workers)."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for proc in [me] + (me.children(recursive=True) if children else []):
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


class Sequential:
    """The plain loop: same models, same shards, frame by frame, one process, one thread."""

    def __init__(self, model_spec: dict):
        from auglift.pipeline.depth import build_depth
        from auglift.pipeline.detect import build_detector
        from auglift.pipeline.graph import pin_threads

        pin_threads(1)
        t0 = time.perf_counter()
        self.det = build_detector(model_spec["detector"], **model_spec["detector_params"])
        self.dep = build_depth(model_spec["depth"], **model_spec["depth_params"])
        self.load_s = time.perf_counter() - t0

    def run(self, jobs, out: Path, config_hash: str) -> dict:
        from auglift.cache import write_shard
        from auglift.pipeline.frames.video import iter_video_batches
        from auglift.pipeline.graph import shard_attrs
        from auglift.pipeline.jobs import resolve_adapter_job
        from auglift.pipeline.report import StageClock

        sec = {"decode": 0.0, "detect": 0.0, "depth": 0.0, "write": 0.0}
        cpu_sec = dict(sec)
        clock = StageClock(sec, cpu_sec)
        n = 0
        cpu0 = cpu_seconds(children=False)
        t_start = time.perf_counter()
        for job in map(resolve_adapter_job, jobs):   # as the graph does on its workers
            self.det.reset()
            rows: dict[str, list] = {k: [] for k in ("keypoints_2d", "confidence", "depth", "frame_index", "bbox",
                                                     "depth_valid")}
            it = iter_video_batches(job.frames.paths[0], batch_size=1, threads=1, reuse_buffer=True)
            size = None
            while True:
                with clock("decode"):
                    batch = next(it, None)
                if batch is None:
                    break
                size = batch.frames.shape[2], batch.frames.shape[1]
                with clock("detect"):
                    d = self.det(batch.frames)
                with clock("depth"):
                    z = self.dep(batch.frames, d)
                for k, v in (("keypoints_2d", d.keypoints), ("confidence", d.confidence), ("depth", z.depth),
                             ("frame_index", batch.frame_index), ("bbox", d.bbox), ("depth_valid", z.valid)):
                    rows[k].append(v)
                n += 1
            with clock("write"):
                write_shard(out, job.key, {k: np.concatenate(v) for k, v in rows.items()},
                            shard_attrs(job, self.det, self.dep, size, config_hash))
        wall = time.perf_counter() - t_start
        cpu = cpu_seconds(children=False) - cpu0
        inference = sec["detect"] + sec["depth"]
        return {"frames": n, "wall_s": wall, "fps": n / wall, "cpu_s": cpu, "stage_s": sec, "stage_cpu_s": cpu_sec,
                "outside_inference": 1 - inference / wall}


class DaskGraph:
    """A warm LocalCluster (models built on every worker before timing) running pipeline.graph."""

    def __init__(self, spec: dict, workers: int, dask_malloc_trim: bool = False):
        from distributed import Client, wait

        from auglift.pipeline.cluster import local_cluster
        from auglift.pipeline.graph import get_models

        t0 = time.perf_counter()
        # Dask's own default, which `auglift precompute` removes (see pipeline/CLUSTER.md).
        trim = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 65536} if dask_malloc_trim else {}
        self.cluster = local_cluster(workers, threads=1, dask_config=trim)  # what `auglift precompute` starts
        with Client(self.cluster) as client:
            addrs = list(client.scheduler_info()["workers"])
            wait([client.submit(get_models, spec, workers=[a], pure=False, allow_other_workers=False)
                  for a in addrs])
        self.startup_s = time.perf_counter() - t0

    def run(self, jobs, spec: dict) -> dict:
        from auglift.pipeline.graph import run_tasks

        cpu0 = cpu_seconds(children=True)
        t_start = time.perf_counter()
        results, n_workers = run_tasks(jobs, spec, scheduler=self.cluster.scheduler_address, progress=False)
        wall = time.perf_counter() - t_start
        cpu = cpu_seconds(children=True) - cpu0
        failed = [r.failure for r in results if r.status != "written"]
        if failed:
            raise RuntimeError(f"Dask run failed: {failed}")
        sec = {s: sum(r.seconds.get(s, 0.0) for r in results) for s in results[0].seconds}
        cpu_sec = {s: sum(r.cpu_seconds.get(s, 0.0) for r in results) for s in results[0].cpu_seconds}
        busy = sum(sec.values())
        inference = sec["detect"] + sec["depth"]
        n = sum(r.n_frames for r in results)
        return {"frames": n, "wall_s": wall, "fps": n / wall, "cpu_s": cpu, "stage_s": sec, "stage_cpu_s": cpu_sec,
                "workers": n_workers,
                "outside_inference_tasks": 1 - inference / busy,
                "outside_inference_and_decode_tasks": 1 - (inference + sec["decode"]) / busy,
                "outside_inference_wall": 1 - inference / (wall * n_workers)}

    def close(self):
        self.cluster.close()


def main(argv=None) -> dict:
    args = parse_args(argv)
    result = summarise(args, *measure(args))
    report(args, result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


def parse_args(argv=None) -> argparse.Namespace:
    from auglift.pipeline.precompute import PrecomputeConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("AUGLIFT_DATA", REPO.parent / "shared" / "data")))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--frames", type=int, default=96, help="frames per sequence")
    ap.add_argument("--copies", type=int, default=2, help="sequences per source (3 sources)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating (a), (b) runs; medians are reported")
    ap.add_argument("--batch-size", type=int, default=PrecomputeConfig.batch_size,
                    help="frames per model call in (b) (the default of auglift precompute)")
    ap.add_argument("--detector", default="mediapipe")
    ap.add_argument("--depth", default="landmark-z")
    ap.add_argument("--depth-param", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--depth-anything-random", action="store_true",
                    help="depth = the Depth Anything V2 Small architecture at 518 px with RANDOM weights "
                         "(the paper's depth model; no weights install offline): timing only, its depths mean nothing")
    ap.add_argument("--dask-malloc-trim", action="store_true",
                    help="run (b) with Dask's default MALLOC_TRIM_THRESHOLD_=65536 in the workers, which "
                         "auglift precompute removes: the A/B behind pipeline/CLUSTER.md")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    return ap.parse_args(argv)


def measure(args: argparse.Namespace) -> tuple[list[dict], int, str, float, float]:
    """Alternating rounds of (a) sequential and (b) Dask on the same jobs:
    (rounds, sequences, depth backend, untimed model load s, untimed cluster start s)."""
    from auglift.cache import config_hash
    from auglift.pipeline.graph import spec_for
    from auglift.pipeline.jobs import build_jobs
    from auglift.pipeline.precompute import PrecomputeConfig, parse_params

    rounds = []
    with tempfile.TemporaryDirectory(prefix="bench_precompute_") as tmp:
        tmp = Path(tmp)
        (tmp / "videos").mkdir()
        make_sequences(args.data, tmp / "videos", args.frames, args.copies)
        jobs = build_jobs("videos", tmp / "videos")
        depth, depth_params = args.depth, parse_params(args.depth_param)
        if args.depth_anything_random:
            depth, depth_params = "depth-anything", {**depth_params, "model": str(save_random_depth_anything(tmp))}
        cfg = PrecomputeConfig(detector=args.detector, depth=depth, depth_params=depth_params,
                               batch_size=args.batch_size, threads=1)
        chash = config_hash(cfg.content("videos"))
        seq = Sequential(cfg.model_spec())
        par = DaskGraph(spec_for(cfg, tmp / "warm", chash), args.workers, args.dask_malloc_trim)
        try:
            # Untimed: first writes import zarr and start its I/O thread in every process.
            seq.run(jobs[:args.workers], tmp / "warm_seq", chash)
            par.run(jobs[:args.workers], spec_for(cfg, tmp / "warm_dask", chash))
            for r in range(args.rounds):
                load = os.getloadavg()[0]
                a = seq.run(jobs, tmp / f"seq{r}", chash)
                b = par.run(jobs, spec_for(cfg, tmp / f"dask{r}", chash))
                rounds.append({"loadavg_1min_before": round(load, 2), "sequential": a, "dask": b,
                               "ratio": b["fps"] / a["fps"]})
        finally:
            par.close()
    return rounds, len(jobs), depth, seq.load_s, par.startup_s


def _median(xs) -> float:
    return float(np.median(list(xs)))


def summarise(args: argparse.Namespace, rounds: list[dict], sequences: int, depth: str,
              load_s: float, startup_s: float) -> dict:
    """Medians over the rounds, and the CPU-per-frame figures."""
    dask = [r["dask"] for r in rounds]
    result = {"cpus": os.cpu_count(), "sequences": sequences, "frames": rounds[0]["sequential"]["frames"],
              "models": f"{args.detector} + {depth}" + (" (Depth Anything V2 Small architecture, RANDOM "
                                                         "weights: timing only)" if args.depth_anything_random else ""),
              "model_load_s": load_s, "cluster_start_and_load_s": startup_s, "rounds": rounds,
              "dask_malloc_trim_threshold": 65536 if args.dask_malloc_trim else None,
              "fps_sequential": _median(r["sequential"]["fps"] for r in rounds),
              "fps_dask": _median(b["fps"] for b in dask),
              "outside_inference_tasks": _median(b["outside_inference_tasks"] for b in dask),
              "outside_inference_wall": _median(b["outside_inference_wall"] for b in dask),
              "outside_inference_and_decode_tasks": _median(b["outside_inference_and_decode_tasks"] for b in dask),
              "decode_ms_per_frame_dask": _median(1000 * b["stage_s"]["decode"] / b["frames"] for b in dask),
              "inference_ms_per_frame_dask": _median(1000 * (b["stage_s"]["detect"] + b["stage_s"]["depth"])
                                                     / b["frames"] for b in dask),
              "outside_inference_sequential": _median(r["sequential"]["outside_inference"] for r in rounds)}
    result["ratio"] = result["fps_dask"] / result["fps_sequential"]
    # CPU cost per frame, which other load on the machine hardly changes: how much extra work the
    # graph does (scheduling, IPC, one model per worker). On an otherwise idle machine with
    # `workers` free cores, the ratio could at best be workers x (CPU/frame seq) / (CPU/frame Dask):
    # an ESTIMATE (it ignores idle tails and memory-bandwidth contention), not a measurement.
    cpu_a = _median(r["sequential"]["cpu_s"] / r["sequential"]["frames"] for r in rounds)
    cpu_b = _median(b["cpu_s"] / b["frames"] for b in dask)
    result.update(cpu_ms_per_frame_sequential=1000 * cpu_a, cpu_ms_per_frame_dask=1000 * cpu_b,
                  idle_machine_ratio_estimate=min(args.workers, os.cpu_count() or 1) * cpu_a / cpu_b)
    return result


def report(args: argparse.Namespace, result: dict) -> None:
    print(f"frames: {result['frames']} in {result['sequences']} sequences; {result['models']}; {result['cpus']} CPUs; "
          f"untimed: models {result['model_load_s']:.2f} s, cluster start + worker models "
          f"{result['cluster_start_and_load_s']:.2f} s"
          + ("; (b) with Dask's MALLOC_TRIM_THRESHOLD_=65536" if args.dask_malloc_trim else ""))
    for i, r in enumerate(result["rounds"]):
        a, b = r["sequential"], r["dask"]
        print(f"round {i}: load avg {r['loadavg_1min_before']:.2f} | (a) {a['fps']:6.2f} frames/s | "
              f"(b) {b['fps']:6.2f} frames/s | ratio {r['ratio']:.2f} | outside inference (a) "
              f"{100 * a['outside_inference']:.1f} %, (b) {100 * b['outside_inference_tasks']:.1f} % of task time, "
              f"{100 * b['outside_inference_wall']:.1f} % of worker wall time")
        for name, x in (("(a)", a), ("(b)", b)):
            print(f"         {name} wall s: " + ", ".join(f"{k} {v:.2f}" for k, v in x["stage_s"].items() if v > 0.005)
                  + f" | CPU s: total {x['cpu_s']:.2f}, "
                  + ", ".join(f"{k} {v:.2f}" for k, v in x["stage_cpu_s"].items() if v > 0.005))
    print(f"median: (a) sequential {result['fps_sequential']:.2f} frames/s, (b) Dask x{args.workers} "
          f"{result['fps_dask']:.2f} frames/s, ratio {result['ratio']:.2f} (target >= 1.6 on 2 cores)")
    print(f"median time outside inference in (b): {100 * result['outside_inference_tasks']:.1f} % of task time, "
          f"{100 * result['outside_inference_wall']:.1f} % of worker wall time (target <= 15 %); per frame: "
          f"decode {result['decode_ms_per_frame_dask']:.1f} ms, inference {result['inference_ms_per_frame_dask']:.1f} ms; "
          f"outside inference and decode (writing, scheduling): {100 * result['outside_inference_and_decode_tasks']:.1f} %"
          " of task time")
    print(f"CPU per frame: (a) {result['cpu_ms_per_frame_sequential']:.1f} ms, (b) {result['cpu_ms_per_frame_dask']:.1f} ms"
          f" (all processes of the cluster); ESTIMATED ratio on an idle machine with {args.workers} free cores: "
          f"{result['idle_machine_ratio_estimate']:.2f}")


if __name__ == "__main__":
    main()
