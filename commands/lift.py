"""`auglift lift`: videos, image folders or caches -> 3D poses and rendered videos."""
from __future__ import annotations

from pathlib import Path

import click

from auglift import api
from auglift.pipeline.precompute import PrecomputeConfig
from auglift.pipeline.precompute import load_config as load_precompute_config


@click.command("lift")
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
