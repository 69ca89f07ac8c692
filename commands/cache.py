"""`auglift cache ls` and `auglift cache verify`: what is in a cache, and whether it is sound."""
from __future__ import annotations

from pathlib import Path

import click

from auglift.cache.report import ls_report, read_key_list, verify_report


@click.command("ls")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
def cache_ls(path: Path) -> None:
    """List the shards under PATH (a cache root or one shard)."""

    lines, ok = ls_report(path)
    click.echo("\n".join(lines))
    if not ok:
        raise SystemExit(1)


@click.command("verify")
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
