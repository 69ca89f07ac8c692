"""`auglift cache build-gt`: shards of ground-truth 2D with oracle depth, from the mocap datasets."""
from __future__ import annotations

import click

from auglift.commands.common import mocap_options, one_line, split_list
from auglift.pipeline.gt_shards import build_gt_shards


@click.command("build-gt")
@mocap_options(out_help="Cache root.", actions_help="Comma-separated action name globs (default: all).")
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
