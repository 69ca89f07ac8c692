"""`auglift show`: predicted vs ground-truth skeletons of a few shard frames, as a figure."""
from __future__ import annotations

from pathlib import Path

import click

from auglift.commands.common import one_line
from auglift.lifters.show import show


@click.command("show")
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
