"""auglift command line. This module only parses arguments and calls into the packages."""
from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from pathlib import Path

import click

from auglift import api
from auglift.cache.report import ls_report, read_key_list, verify_report
from auglift.core.config_io import with_overrides
from auglift.lifters.config import TrainConfig, apply_overrides
from auglift.lifters.config import load_config as load_train_config
from auglift.lifters.evaluate import evaluate
from auglift.lifters.provenance import git_revision
from auglift.lifters.show import show
from auglift.lifters.train import train
from auglift.pipeline.cluster import dask_client
from auglift.pipeline.gt_shards import build_gt_shards
from auglift.pipeline.precompute import (
    PrecomputeConfig,
    default_root,
    parse_params,
    parse_part,
    run_precompute,
)
from auglift.pipeline.precompute import load_config as load_precompute_config
from auglift.pipeline.simulate import SimulateConfig, calibrate, calibrate_confidence, calibrate_noise, simulate_dataset
from auglift.pipeline.simulate import load_config as load_simulate_config
from auglift.pipeline.sources.base import available_datasets, get_dataset
from auglift.studies import STUDIES, run_all, study_module
from auglift.studies.grid import run_grid
from auglift.studies.seeds import parse_seeds

# The one default of every --data-root: the shared data beside the repository (../shared/data seen
# from the repository root) whatever the working directory; $AUGLIFT_DATA or the option override it.
DEFAULT_DATA_ROOT = Path(__file__).resolve().parent.parent / "shared" / "data"
data_root_option = click.option(
    "--data-root", type=click.Path(file_okay=False, path_type=Path), envvar="AUGLIFT_DATA", default=DEFAULT_DATA_ROOT,
    show_default="$AUGLIFT_DATA or ../shared/data beside the repository", help="Directory holding the datasets.")


def one_line(e: BaseException) -> str:
    """A user-facing message for an error: the file and the problem, without a traceback."""
    text = str(e).strip()
    if "Original Traceback" in text:  # re-raised from a DataLoader worker: keep the original's line
        text = [ln for ln in text.splitlines() if ln.strip()][-1].split(": ", 1)[-1]
    if isinstance(e, OSError) and e.strerror and e.filename is not None:
        text = f"{e.filename}: {e.strerror}"
    if isinstance(e, KeyError) or not text:
        text = f"{type(e).__name__}: {text or 'no message'}"
    return text


class AugliftGroup(click.Group):
    """The top-level group: any error a command raises becomes one line and exit code 1
    (2 for usage errors, as click does); `auglift --debug ...` shows the traceback instead."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as e:
            if ctx.params.get("debug"):
                raise
            raise click.ClickException(one_line(e) + "  (rerun as `auglift --debug ...` for the traceback)") from None


@click.group(cls=AugliftGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name="auglift")
@click.option("--debug", is_flag=True, help="Show the Python traceback of an error instead of one line.")
def main(debug: bool) -> None:
    """AugLift: cached (x, y, confidence, depth) keypoint features for 3D pose lifters."""


@main.group()
def cache() -> None:
    """Inspect and verify shard caches."""


@cache.command("ls")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
def cache_ls(path: Path) -> None:
    """List the shards under PATH (a cache root or one shard)."""

    lines, ok = ls_report(path)
    click.echo("\n".join(lines))
    if not ok:
        raise SystemExit(1)


@cache.command("verify")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--expect-keys", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File of shard keys (one per line) that must all be present and valid.")
@click.option("--clean-tmp", is_flag=True,
              help="Delete stray temporaries of interrupted writes (only when no writer is running).")
def cache_verify(path: Path, expect_keys: Path | None, clean_tmp: bool) -> None:
    """Verify one shard or every shard under PATH (checksums, shapes, NaN policy)."""

    try:
        keys = read_key_list(expect_keys) if expect_keys else None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--expect-keys") from None
    lines, ok = verify_report(path, keys, clean=clean_tmp)
    click.echo("\n".join(lines))
    if not ok:
        raise SystemExit(1)


@main.command("datasets")
@data_root_option
def datasets_cmd(data_root: Path) -> None:
    """List the dataset adapters: splits, the root each reads, and whether it is there."""

    for name in available_datasets():
        d = get_dataset(name, data_root).describe()
        click.echo(f"{name:<7} {'found' if d['found'] else 'missing':<8} {d['root']}")
        for split, subjects in d["splits"].items():
            shown = " ".join(subjects) if len(subjects) <= 8 else f"{len(subjects)} sequences"
            click.echo(f"{'':<16}{split}: {shown or '-'}")
        for extra in ("frame_step",):
            if extra in d:
                click.echo(f"{'':<16}{extra}: {d[extra]}")
        click.echo(f"{'':<16}layout: {d['layout']}")


@main.command()
@click.option("--dataset", default="h36m", show_default=True, help="Mocap corpus (a pipeline.sources adapter).")
@data_root_option
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Cache root for the shards.")
@click.option("--subjects", help="Comma-separated subjects, e.g. S1,S5 (default: all).")
@click.option("--split", type=click.Choice(["train", "test"]), help="Only the subjects of this split.")
@click.option("--actions", help="Comma-separated action name globs, e.g. 'Walking*,Eating' (default: all).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML file of SimulateConfig fields (see pipeline/simulate/config.py).")
@click.option("--virtual-views", type=click.IntRange(min=0), help="Virtual cameras per sequence (overrides the config).")
@click.option("--keypoints", type=click.Choice(["simulated", "real"]),
              help="2D source: projected GT + noise, or the dataset's real detections (overrides the config).")
@click.option("--seed", type=int, help="Random seed (overrides the config).")
@click.option("--depth-kind", type=click.Choice(["metric", "relative", "landmark_z"]),
              help="Depth convention to simulate (overrides the config): a metric depth map, a relative "
                   "inverse depth map, or BlazePose's landmark z (the embedded default's kind).")
@click.option("--backend", type=click.Choice(["zarr", "hdf5"]), default="zarr", show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes.")
@click.option("--overwrite", is_flag=True, help="Replace shards made with another configuration (e.g. another seed).")
def simulate(dataset, data_root, out, subjects, split, actions, config_path, virtual_views, keypoints,
             seed, depth_kind, backend, workers, overwrite) -> None:
    """Simulate (x, y, c, d) shards from 3D mocap: SIMULATED cues, labelled so in every shard."""

    try:
        cfg = load_simulate_config(config_path) if config_path else SimulateConfig()
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--config") from None
    cfg = with_overrides(cfg, {"views.num_views": virtual_views, "keypoints": keypoints, "seed": seed,
                               "depth.mode": depth_kind})

    def split_list(text):
        return [x.strip() for x in text.split(",") if x.strip()] if text else None

    try:
        summary = simulate_dataset(dataset, data_root, out, config=cfg, subjects=split_list(subjects),
                                   split=split, actions=split_list(actions), backend=backend,
                                   workers=workers, overwrite=overwrite, log=click.echo)
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(one_line(e)) from None
    if summary["shards"]["failed"]:
        raise SystemExit(1)


CALIBRATIONS = {"landmark-z": "landmark_z_calibration", "2d-noise": "noise_calibration",
                "confidence": "confidence_calibration"}


@main.command("calibrate")
@click.argument("model", type=click.Choice(list(CALIBRATIONS)))
@data_root_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Output stem (.md, .json); default results/<model>_calibration (landmark_z, noise, confidence).")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=Path("runs") / "calibration",
              show_default=True, help="Where the real frames' and videos' cues are precomputed.")
@click.option("--step", type=int, default=20, show_default=True,
              help="2d-noise: every STEP-th frame of each H36M sequence (the data is 10 fps).")
@click.option("--seed", type=int, default=0, show_default=True)
def calibrate_cmd(model, data_root, out, work, step, seed) -> None:
    """Fit a simulator model to a real detector; write the page with the real figures beside the simulated.

    landmark-z and confidence: BlazePose on the real sample frames (and videos); 2d-noise: the real
    Stacked-Hourglass detections of Human3.6M, fitted on S1 S5 S6 S7 S8 and checked on S9 S11.
    """


    out = out or Path("results") / CALIBRATIONS[model]
    try:
        if model == "landmark-z":
            result = calibrate.calibrate_landmark_z(data_root, work / "samples", seed)
            page, f = calibrate.landmark_z_page, result["fit"]
            summary = f"lz_scale {f['lz_scale']:.2f}  lz_scale_sigma {f['lz_scale_sigma']:.2f}  lz_sigma {f['lz_sigma']:.3f}"
        elif model == "2d-noise":
            result = calibrate_noise.calibrate_noise(data_root, step, seed)
            page = calibrate_noise.noise_page
            summary = " ".join(f"{k} {v:.4g}" for k, v in result["fitted"].items() if isinstance(v, float))
        else:
            samples = calibrate.precompute_real("samples", data_root, work / "samples")
            videos = calibrate.precompute_real("videos", data_root, work / "videos")
            result = calibrate_confidence.calibrate_confidence(samples, videos, seed)
            page = calibrate_confidence.confidence_page
            summary = " ".join(f"{k} {v:.3g}" for k, v in result["fitted"].items())
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(one_line(e)) from None
    git = git_revision(exclude=[out.parent])
    revision = f"`{(git.get('commit') or '?')[:12]}`" + (" with uncommitted changes" if git.get("dirty") else "")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({**result, "git": git}, indent=1))
    out.with_suffix(".md").write_text(page(result, "auglift " + shlex.join(sys.argv[1:]), revision))
    click.echo(f"{model}: {summary} -> {out.with_suffix('.md')}")


# ------------------------------------------------------------------------------- precompute
@main.command("precompute")
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
        subj = [s.strip() for s in subjects.split(",") if s.strip()] if subjects else None
        report, _ = run_precompute(dataset, frames_root, out, cfg, split=split, subjects=subj, progress=not quiet,
                                   command="auglift " + shlex.join(sys.argv[1:]), log=click.echo, dashboard=dashboard)
    except (ValueError, FileNotFoundError, ImportError) as e:
        raise click.ClickException(one_line(e)) from None
    if report["summary"]["shards"]["failed"]:
        raise SystemExit(1)


# ---------------------------------------------------------------------------------- lifters
@cache.command("build-gt")
@click.option("--dataset", default="h36m", show_default=True, help="Mocap corpus (a pipeline.sources adapter).")
@data_root_option
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Cache root.")
@click.option("--subjects", help="Comma-separated subjects, e.g. S1,S5 (default: all).")
@click.option("--split", type=click.Choice(["train", "test"]), help="Only the subjects of this split.")
@click.option("--actions", help="Comma-separated action name globs (default: all).")
@click.option("--backend", type=click.Choice(["zarr", "hdf5"]), default="zarr", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace shards made with another configuration.")
def cache_build_gt(dataset, data_root, out, subjects, split, actions, backend, overwrite) -> None:
    """Shards of GROUND-TRUTH 2D (3D projected through the real cameras) with ORACLE GT depth."""

    def split_list(text):
        return [x.strip() for x in text.split(",") if x.strip()] if text else None

    try:
        summary = build_gt_shards(dataset, data_root, out, subjects=split_list(subjects), split=split,
                                  actions=split_list(actions), backend=backend, overwrite=overwrite,
                                  log=click.echo)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        raise click.ClickException(one_line(e)) from None
    click.echo(f"{summary['shards']} shards, {summary['frames']} frames in {summary['seconds']} s -> {out}")


@main.command("train")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML TrainConfig (see lifters/configs/); the options below override it.")
@click.option("--model", help="Lifter: simple_baseline, videopose3d, poseformer, motionbert.")
@click.option("--preset", help="Model size preset (see lifters/models/__init__.py).")
@click.option("--channels", type=click.Choice(["xy", "xyc", "xycd", "xyo", "xyd"]), help="Cue channel set.")
@click.option("--train", "train_specs", multiple=True, help="Cache root, shard or glob (repeatable).")
@click.option("--train-subjects", help="Comma-separated subjects to train on, e.g. S1,S5,S6,S7,S8.")
@click.option("--val", "val_specs", multiple=True, help="Validation cache root, shard or glob (repeatable).")
@click.option("--val-subjects", help="Comma-separated validation subjects.")
@click.option("--out", help="Run directory for checkpoints (last.pt, best.pt) and history.")
@click.option("--epochs", type=click.IntRange(min=1))
@click.option("--batch-size", type=click.IntRange(min=2))
@click.option("--lr", type=float)
@click.option("--lr-decay", type=float, help="Learning-rate factor applied after every epoch.")
@click.option("--seed", type=int)
@click.option("--device", help="auto (default: CUDA when present), cpu, cuda or cuda:N (cuda = cuda:LOCAL_RANK "
                                "under torchrun).")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]),
              help="Mixed precision (autocast; fp16 with loss scaling). Default fp32.")
@click.option("--ddp-split", type=click.Choice(["batch", "shards"]),
              help="Under torchrun: every rank slices the same global batch (exact, default) or reads its own shards.")
@click.option("--threads", type=click.IntRange(min=1), help="Torch CPU threads (1 is fastest on a busy CPU).")
@click.option("--num-workers", type=click.IntRange(min=0), help="DataLoader worker processes.")
@click.option("--stride", type=click.IntRange(min=1), help="Frames between training windows.")
@click.option("--flip/--no-flip", default=None, help="Left/right flip augmentation.")
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop after this many optimiser steps.")
@click.option("--resume", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Continue from a checkpoint (last.pt) at its next epoch.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train_cmd(config_path, model, preset, channels, train_specs, train_subjects, val_specs, val_subjects, out,
              epochs, batch_size, lr, lr_decay, seed, device, precision, ddp_split, threads, num_workers, stride, flip,
              max_steps, resume, quiet) -> None:
    """Train a lifter on cached cue shards (streamed), writing checkpoints under --out.

    Data-parallel: `torchrun --nproc_per_node N -m auglift.cli train ...` (pipeline/CLUSTER.md)."""
    try:
        cfg = load_train_config(config_path) if config_path else TrainConfig()
        cfg = apply_overrides(cfg, model=model, preset=preset, channels=channels, train=list(train_specs),
                              train_subjects=train_subjects, val=list(val_specs), val_subjects=val_subjects,
                              out=out, epochs=epochs, batch_size=batch_size, lr=lr, lr_decay=lr_decay, seed=seed,
                              device=device, num_threads=threads, num_workers=num_workers, stride=stride,
                              flip=flip, max_steps=max_steps, precision=precision, ddp_split=ddp_split)
        result = train(cfg, resume=resume, progress=not quiet, log=click.echo)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        raise click.ClickException(one_line(e)) from None
    click.echo(f"checkpoints: {result.last} {result.best}")


@main.command("evaluate")
@click.option("--checkpoint", "checkpoints", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Checkpoint (repeatable: one table row each; Δ% rows compare to the first).")
@click.option("--test", "tests", multiple=True, required=True,
              help="Test set: cache root, shard or glob (repeatable: one table column each).")
@click.option("--name", "names", multiple=True, help="Column name per --test, e.g. ID, OOD.")
@click.option("--label", "labels", multiple=True, help="Row label per --checkpoint (default: model + channels).")
@click.option("--subjects", help="Only these subjects of every test set, e.g. S9,S11.")
@click.option("--joints", help="Joint subset: indices or H36M-17 names, comma-separated (default: all).")
@click.option("--flip-test", is_flag=True, help="Average with the prediction on the mirrored input.")
@click.option("--allow-depth-kind-mismatch", is_flag=True,
              help="Evaluate even if the test depth kind differs from the training depth kind.")
@click.option("--batch-size", type=click.IntRange(min=1), default=4096, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Output stem: writes OUT.json and OUT.md.")
@click.option("--note", "notes", multiple=True,
              help="A paragraph for the markdown page (repeatable), e.g. the paper's figure for this setting.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def evaluate_cmd(checkpoints, tests, names, labels, subjects, joints, flip_test, allow_depth_kind_mismatch,
                 batch_size, device, out, notes, quiet) -> None:
    """Evaluate checkpoints on every frame of the test shards; write JSON and a markdown table."""

    subj = [s.strip() for s in subjects.split(",") if s.strip()] if subjects else None
    try:
        report = evaluate(list(checkpoints), [[t] for t in tests], names=list(names) or None, out=out,
                          subjects=subj, joints=joints, labels=list(labels) or None, flip_test=flip_test,
                          allow_depth_kind_mismatch=allow_depth_kind_mismatch, batch_size=batch_size,
                          device=device, progress=not quiet, command="auglift " + shlex.join(sys.argv[1:]),
                          notes=notes)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        raise click.ClickException(one_line(e)) from None
    for label, per_test in report["results"].items():
        click.echo(label + ": " + ", ".join(f"{t} MPJPE {r['mpjpe']:.1f} mm, P-MPJPE {r['p_mpjpe']:.1f} mm"
                                            for t, r in per_test.items()))
    click.echo(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


@main.command("lift")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: <out>/<sequence key>/lift.npz|json|mp4, contact_sheet.png; cues in <out>/cache.")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Lifter checkpoint (default: the `make lifters` one for --model, --channels and the cues' depth kind).")
@click.option("--model", type=click.Choice(["videopose3d", "simple_baseline"]), default="videopose3d",
              show_default=True, help="Default lifter to use when no --checkpoint is given.")
@click.option("--channels", type=click.Choice(["xycd", "xy"]), default="xycd", show_default=True,
              help="Default lifter's inputs when no --checkpoint is given.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Precompute config (YAML of PrecomputeConfig fields) for video and image inputs.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Local Dask workers for the precompute step (0: in this process).")
@click.option("--allow-depth-kind-mismatch", is_flag=True,
              help="Lift even if the cues' depth kind is not the one the lifter learnt.")
@click.option("--all-people", is_flag=True,
              help="Lift every tracked person of a video, not only the subject (one output per track).")
@click.option("--no-render", is_flag=True, help="Skip the MP4 and the contact sheet.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def lift_cmd(inputs, out, checkpoint, model, channels, config_path, workers, allow_depth_kind_mismatch,
             all_people, no_render, quiet) -> None:
    """Lift video files, image folders or caches to 3D poses, with a rendered video per sequence.

    Videos and image folders go through precompute first (same graph, resumable, cues in
    OUT/cache); caches (a root or shards) are lifted as they are.
    """

    try:
        cfg = load_precompute_config(config_path) if config_path else PrecomputeConfig(workers=workers)
        run = api.lift(inputs, out, checkpoint, model, channels, cfg, all_people=all_people, render=not no_render,
                       allow_depth_kind_mismatch=allow_depth_kind_mismatch, progress=not quiet, log=click.echo)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        raise click.ClickException(str(e)) from None
    if run.failed:
        raise SystemExit(1)


@main.command("show")
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--shard", required=True, type=click.Path(exists=True, path_type=Path), help="One shard.")
@click.option("--frames", default="0", show_default=True, help="Comma-separated shard rows to draw.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Figure (.png).")
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Directory of the frames' images, named by frame number (e.g. 000123.jpg).")
def show_cmd(checkpoint, shard, frames, out, images) -> None:
    """Draw predicted vs ground-truth 3D skeletons (and the 2D input) for a few frames."""

    try:
        rows = [int(f) for f in frames.split(",") if f.strip()]
        path = show(checkpoint, shard, rows, out, images=images)
    except (ValueError, FileNotFoundError, IndexError) as e:
        raise click.ClickException(one_line(e)) from None
    click.echo(f"wrote {path}")


# ---------------------------------------------------------------------------------- studies
@main.group()
def study() -> None:
    """The paper's studies, reproduced: each writes results/<study>.md/.json with its provenance."""


@study.command("list")
def study_list() -> None:
    """List the studies (in the order `study run all` runs them)."""

    for name in STUDIES:
        click.echo(f"{name:<16} {study_module(name).TITLE}")


@study.command("run")
@click.argument("names", nargs=-1, required=True)
@click.option("--size", type=click.Choice(["small", "medium", "full"]), default="small", show_default=True,
              help="small: 2 CPU cores, about an hour for all; medium (cross_input only): paper-width lifters on "
                   "CPU, trained in resumable sittings; full: paper-sized, for a GPU cluster.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--seeds", metavar="S,S,...", help="Train every lifter once per seed (e.g. 0,1,2) and report mean ± "
                                                 "std over them; replaces --seed.")
@click.option("--set", "overrides", multiple=True, metavar="FIELD=VALUE",
              help="Override a field of the study's configuration, e.g. --set schedule.epochs=4 --set channels=xy,xycd "
                   "(printed in the page's command).")
@click.option("--sitting-minutes", type=click.FloatRange(min=0), help="--size medium: training minutes per lifter "
                                                                       "in this run (default 10); rerun to continue.")
@data_root_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("results"), show_default=True,
              help="Where the result pages go.")
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=Path("runs") / "experiments",
              show_default=True, help="Shared simulated caches and trained lifters (reused between runs).")
@click.option("--device", help="Where lifters train and are evaluated: auto (CUDA when present), cpu, cuda. "
                               "Default: cpu for --size small, auto for full.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Run the trainings and evaluations as tasks on a local Dask cluster of this many workers.")
@click.option("--gpus", is_flag=True, help="Tasks ask for the worker resource GPU=1; a local cluster gets one "
                                           "worker per visible GPU (--workers defaults to their number).")
@click.option("--scheduler", metavar="ADDRESS", help="Run the tasks on an existing Dask scheduler.")
@click.option("--part", metavar="I/N", help="Job arrays without a scheduler: train every N-th lifter from the I-th "
                                            "here; the last part to finish writes the pages.")
@click.option("--prepare", is_flag=True, help="Only make the caches and list the trainings (before a job array).")
@click.option("--dashboard", metavar="ADDRESS", is_flag=False, flag_value=":8787",
              help="Start the local cluster's Dask dashboard (default :8787) and print its address.")
def study_run(names, size, seed, seeds, overrides, sitting_minutes, data_root, out, work, device, workers, gpus, scheduler, part,
              prepare, dashboard) -> None:
    """Run studies by name (see `auglift study list`), or `all`; optionally as Dask tasks."""

    names = list(STUDIES) if "all" in names else list(names)
    unknown = [n for n in names if n not in STUDIES]
    if unknown:
        raise click.BadParameter(f"unknown study {unknown}; known: {', '.join(STUDIES)} or all", param_hint="NAMES")
    common = dict(data_root=data_root, out=out, work=work, device=device, log=click.echo)
    try:
        many = parse_seeds(seeds) if seeds is not None else ()
        if workers or scheduler or gpus or part or prepare:
            if many or size == "medium" or overrides:
                raise ValueError("--seeds, --set and --size medium run in this process only (no --workers, --scheduler, "
                                 "--gpus, --part or --prepare)")
            status = _study_grid(names, size, seed, common, workers, gpus, scheduler, part, prepare, dashboard)
        else:
            status = run_all(size, seed, only=names, seeds=many, sitting_minutes=sitting_minutes,
                             overrides=overrides, **common)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        raise click.ClickException(str(e)) from None
    for name, state in status.items():
        click.echo(f"{name:<16} {state}")
    if any(state.startswith("FAILED") for state in status.values()):
        raise SystemExit(1)


def _study_grid(names, size, seed, common, workers, gpus, scheduler, part, prepare, dashboard) -> dict:
    if part or prepare:
        return run_grid(names, size, seed, part=parse_part(part) if part else None, gpus=gpus,
                        prepare_only=prepare, **common)["status"]
    n_workers = (workers or 0) if gpus else (workers or 2)   # 0 with --gpus: one per GPU
    with dask_client(n_workers, scheduler, gpu=gpus, dashboard=dashboard,
                     log=click.echo) as client:
        return run_grid(names, size, seed, client=client, gpus=gpus, **common)["status"]


if __name__ == "__main__":
    main()
