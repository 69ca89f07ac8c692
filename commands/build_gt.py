"""`auglift cache build-gt`: shards of ground-truth 2D with oracle depth, from the mocap datasets."""
from __future__ import annotations

from pathlib import Path

import click

from auglift.commands.common import data_root_option, one_line, split_list
from auglift.pipeline.gt_shards import build_gt_shards


@click.command("build-gt")
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

    try:
        summary = build_gt_shards(dataset, data_root, out, subjects=split_list(subjects), split=split,
                                  actions=split_list(actions), backend=backend, overwrite=overwrite,
                                  log=click.echo)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        raise click.ClickException(one_line(e)) from None
    click.echo(f"{summary['shards']} shards, {summary['frames']} frames in {summary['seconds']} s -> {out}")
