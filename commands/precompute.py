"""`auglift precompute`: raw frames -> cached (x, y, c, d) shards through the Dask stage graph."""
from __future__ import annotations

import dataclasses
import shlex
import sys
from pathlib import Path

import click

from auglift.commands.common import data_root_option, one_line, split_list
from auglift.core.config_io import with_overrides
from auglift.pipeline.precompute import (
    PrecomputeConfig,
    default_root,
    parse_params,
    parse_part,
    run_precompute,
)
from auglift.pipeline.precompute import load_config as load_precompute_config


@click.command("precompute")
@click.option("--dataset", default="samples", show_default=True,
              help="videos, images, samples, or a pipeline.sources adapter (h36m, 3dhp, ...).")
@data_root_option
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of the frames (default: DATA_ROOT/videos, DATA_ROOT/samples, or DATA_ROOT for adapters).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Cache root for the shards.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML file of PrecomputeConfig fields (pipeline/precompute.py); options below override it.")
@click.option("--detector", help="2D detector: mediapipe (embedded default) or rtmpose.")
@click.option("--detector-param", "detector_params", multiple=True, metavar="KEY=VALUE",
              help="Detector parameter (repeatable), e.g. pose_checkpoint=/models/rtmpose-l.pth.")
@click.option("--depth", help="Depth backend: landmark-z (embedded default), depth-anything or none.")
@click.option("--depth-param", "depth_params", multiple=True, metavar="KEY=VALUE",
              help="Depth parameter (repeatable), e.g. model=/models/Depth-Anything-V2-Small-hf.")
@click.option("--allow-download", is_flag=True, help="Let depth-anything fetch a hub id (never the default).")
@click.option("--person", type=click.Choice(["largest", "confident"]),
              help="rtmpose with --people frame: which detected person to keep in each frame.")
@click.option("--people", type=click.Choice(["subject", "all", "frame"]),
              help="Whose cues: the ground-truth actor or tracked subject (default), all tracks (one shard each), "
                   "or each frame's own choice (pipeline/detect/subjects.py).")
@click.option("--subject", "subject_track", metavar="RULE",
              help="Tracked videos: the subject is the longest (default) or largest track, or this track id.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Frames per model call.")
@click.option("--backend", type=click.Choice(["zarr", "hdf5"]), help="Cache backend (default zarr).")
@click.option("--workers", type=click.IntRange(min=0), help="Local Dask worker processes (default 2; 0 = inline).")
@click.option("--threads", type=click.IntRange(min=1), help="Threads per worker for each model (default 1).")
@click.option("--scheduler", metavar="ADDRESS", help="Attach to a running Dask scheduler instead of a local cluster.")
@click.option("--gpu", is_flag=True, default=None, help="Run models on CUDA; tasks request the worker resource GPU=1; "
                                                      "local workers are spread over the visible GPUs, one each.")
@click.option("--overwrite", is_flag=True, default=None,
              help="Replace shards that already exist and verify (also those made with another configuration).")
@click.option("--part", metavar="I/N", help="Only part I of N (0-based) of the sequences, for job arrays.")
@click.option("--split", type=click.Choice(["train", "test"]), help="Adapters: only this split's subjects.")
@click.option("--subjects", help="Adapters: comma-separated subjects.")
@click.option("--dashboard", metavar="ADDRESS", is_flag=False, flag_value=":8787",
              help="Start the local cluster's Dask dashboard (default :8787) and print its address.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def precompute_cmd(dataset, data_root, root, out, config_path, detector, detector_params, depth, depth_params,
                   allow_download, person, people, subject_track, batch_size, backend, workers, threads, scheduler,
                   gpu, overwrite, part, split, subjects, dashboard, quiet) -> None:
    """Raw frames -> cached (x, y, c, d) shards via the Dask stage graph (resumable)."""

    try:
        cfg = load_precompute_config(config_path) if config_path else PrecomputeConfig()
        if detector and detector != cfg.detector:  # another backend: the file's params were for the old one
            cfg = dataclasses.replace(cfg, detector_params={})
        if depth and depth != cfg.depth:
            cfg = dataclasses.replace(cfg, depth_params={})
        cfg = with_overrides(cfg, dict(detector=detector, depth=depth, batch_size=batch_size, backend=backend,
                                       workers=workers, threads=threads, scheduler=scheduler, gpu=gpu,
                                       overwrite=overwrite, people=people, subject=subject_track))
        det_p = {**cfg.detector_params, **parse_params(detector_params)}
        dep_p = {**cfg.depth_params, **parse_params(depth_params)}
        if person:
            if cfg.detector == "mediapipe":
                raise ValueError("--person: BlazePose (mediapipe) returns a single person; use --detector rtmpose")
            det_p["person"] = person
        if allow_download:
            dep_p["allow_download"] = True
        cfg = dataclasses.replace(cfg, detector_params=det_p, depth_params=dep_p,
                                  part=parse_part(part) if part else cfg.part)
        frames_root = root or default_root(dataset, data_root)
        subj = split_list(subjects)
        report, _ = run_precompute(dataset, frames_root, out, cfg, split=split, subjects=subj, progress=not quiet,
                                   command="auglift " + shlex.join(sys.argv[1:]), log=click.echo, dashboard=dashboard)
    except (ValueError, FileNotFoundError, ImportError) as e:
        raise click.ClickException(one_line(e)) from None
    if report["summary"]["shards"]["failed"]:
        raise SystemExit(1)
