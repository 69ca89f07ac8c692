"""`auglift datasets`: the dataset adapters and whether their data is there."""
from __future__ import annotations

from pathlib import Path

import click

from auglift.commands.common import data_root_option
from auglift.pipeline.sources.base import available_datasets, get_dataset


@click.command("datasets")
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
