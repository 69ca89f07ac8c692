"""Precompute throughput: a plain sequential loop vs the Dask stage graph, on the same frames.

    .venv/bin/python bench/bench_precompute.py [--data ../shared/data] [--workers 2] [--frames 24]

Frames: the two shared real videos and the three 1000x1002 H36M sample frames, each re-encoded
(untimed set-up, libx264 at near-lossless quality) into `--frames`-long sequences, `--copies`
sequences per source, so 6 x 32 = 192 frames by default. Models: the embedded defaults
(MediaPipe BlazePose + landmark-z), or any --detector/--depth.

(a) sequential: one process, models built once (untimed), then for every sequence: decode frame
    by frame, detect, depth, collect, write the shard. (b) the Dask graph (pipeline.graph) on a
    LocalCluster of `--workers` processes x 1 thread, warmed up (models built on every worker,
    untimed), then the same sequences into another cache root. In both, every model is pinned to
    one thread (torch / OpenCV / BLAS pools and the video decoder; BlazePose's TFLite graph runs
    its inference on one thread by itself). Prints frames/s of both, their ratio, and the share of
    time outside model inference from the per-stage timings. The numbers depend on what else the
    machine is running: the load average is printed with them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_sequences(data: Path, folder: Path, frames: int, copies: int) -> None:
    """Re-encode each source into `copies` videos of `frames` frames (its frames, cycled)."""
    import av

    from pipeline.sources.images import read_image
    from pipeline.sources.video import iter_video_batches

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


def sequential(jobs, model_spec: dict, out: Path, config_hash: str) -> dict:
    """The plain loop: same models, same shards, frame by frame, one process, one thread."""
    from cache import write_shard
    from pipeline.depth import build_depth
    from pipeline.detect import build_detector
    from pipeline.graph import pin_threads, shard_attrs
    from pipeline.sources.video import iter_video_batches

    pin_threads(1)
    t0 = time.perf_counter()
    det = build_detector(model_spec["detector"], **model_spec["detector_params"])
    dep = build_depth(model_spec["depth"], **model_spec["depth_params"])
    load = time.perf_counter() - t0
    sec = {"decode": 0.0, "detect": 0.0, "depth": 0.0, "write": 0.0}
    n = 0
    t_start = time.perf_counter()
    for job in jobs:
        det.reset()
        rows: dict[str, list] = {k: [] for k in ("keypoints_2d", "confidence", "depth", "frame_index", "bbox",
                                                 "depth_valid")}
        it = iter_video_batches(job.frames.paths[0], batch_size=1, threads=1)
        size = None
        while True:
            t = time.perf_counter()
            batch = next(it, None)
            sec["decode"] += time.perf_counter() - t
            if batch is None:
                break
            size = batch.frames.shape[2], batch.frames.shape[1]
            t = time.perf_counter()
            d = det(batch.frames)
            sec["detect"] += time.perf_counter() - t
            t = time.perf_counter()
            z = dep(batch.frames, d)
            sec["depth"] += time.perf_counter() - t
            for k, v in (("keypoints_2d", d.keypoints), ("confidence", d.confidence), ("depth", z.depth),
                         ("frame_index", batch.frame_index), ("bbox", d.bbox), ("depth_valid", z.valid)):
                rows[k].append(v)
            n += 1
        t = time.perf_counter()
        write_shard(out, job.key, {k: np.concatenate(v) for k, v in rows.items()},
                    shard_attrs(job, det, dep, size, config_hash))
        sec["write"] += time.perf_counter() - t
    wall = time.perf_counter() - t_start
    inference = sec["detect"] + sec["depth"]
    return {"frames": n, "wall_s": wall, "fps": n / wall, "load_s": load, "stage_s": sec,
            "outside_inference": 1 - inference / wall}


def dask_graph(jobs, spec: dict, workers: int) -> dict:
    from distributed import Client, LocalCluster, wait

    from pipeline.graph import get_models, run_tasks

    t0 = time.perf_counter()
    env = {v: "1" for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      env=env, silence_logs=40) as cluster, Client(cluster) as client:
        addrs = list(client.scheduler_info()["workers"])
        wait([client.submit(get_models, spec, workers=[a], pure=False, allow_other_workers=False) for a in addrs])
        warm = time.perf_counter() - t0
        t_start = time.perf_counter()
        results, n_workers = run_tasks(jobs, spec, scheduler=cluster.scheduler_address, progress=False)
        wall = time.perf_counter() - t_start
    failed = [r.failure for r in results if r.status != "written"]
    if failed:
        raise RuntimeError(f"Dask run failed: {failed}")
    sec = {s: sum(r.seconds.get(s, 0.0) for r in results) for s in results[0].seconds}
    busy = sum(sec.values())
    inference = sec["detect"] + sec["depth"]
    n = sum(r.n_frames for r in results)
    return {"frames": n, "wall_s": wall, "fps": n / wall, "startup_and_load_s": warm, "stage_s": sec,
            "outside_inference_tasks": 1 - inference / busy,
            "outside_inference_wall": 1 - inference / (wall * n_workers), "workers": n_workers}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("AUGLIFT_DATA", REPO.parent / "shared" / "data")))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--frames", type=int, default=32, help="frames per sequence")
    ap.add_argument("--copies", type=int, default=2, help="sequences per source (3 sources)")
    ap.add_argument("--detector", default="mediapipe")
    ap.add_argument("--depth", default="landmark-z")
    ap.add_argument("--depth-param", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args(argv)

    from cache import config_hash
    from pipeline.graph import spec_for
    from pipeline.jobs import video_jobs
    from pipeline.precompute import PrecomputeConfig, parse_params

    with tempfile.TemporaryDirectory(prefix="bench_precompute_") as tmp:
        tmp = Path(tmp)
        (tmp / "videos").mkdir()
        make_sequences(args.data, tmp / "videos", args.frames, args.copies)
        jobs = video_jobs(tmp / "videos")
        cfg = PrecomputeConfig(detector=args.detector, depth=args.depth, depth_params=parse_params(args.depth_param),
                               batch_size=8, threads=1)
        chash = config_hash(cfg.content("videos"))
        seq = sequential(jobs, cfg.model_spec(), tmp / "seq", chash)
        par = dask_graph(jobs, spec_for(cfg, tmp / "dask", chash), args.workers)
    load = os.getloadavg()
    result = {"cpus": os.cpu_count(), "loadavg_1_5_15": [round(v, 2) for v in load], "sequences": len(jobs),
              "models": f"{args.detector} + {args.depth}", "sequential": seq, "dask": par,
              "ratio": par["fps"] / seq["fps"]}
    print(f"frames: {seq['frames']} in {len(jobs)} sequences; {result['models']}; {result['cpus']} CPUs, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"(a) sequential loop : {seq['fps']:6.2f} frames/s  ({seq['wall_s']:.2f} s; models loaded in "
          f"{seq['load_s']:.2f} s, untimed); outside inference {100 * seq['outside_inference']:.1f} %")
    print(f"(b) Dask graph, {par['workers']} workers: {par['fps']:6.2f} frames/s  ({par['wall_s']:.2f} s; cluster "
          f"start + model load {par['startup_and_load_s']:.2f} s, untimed)")
    print(f"    ratio (b)/(a): {result['ratio']:.2f}  (target >= 1.6 on 2 cores)")
    print(f"    outside inference: {100 * par['outside_inference_tasks']:.1f} % of task time, "
          f"{100 * par['outside_inference_wall']:.1f} % of workers' wall time (target <= 15 %)")
    print("    stage seconds (sum over tasks): " + ", ".join(f"{k} {v:.2f}" for k, v in par["stage_s"].items()))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
