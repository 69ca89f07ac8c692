"""`auglift evaluate`: checkpoints x test sets -> a JSON report and a markdown table."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from auglift.commands.common import one_line, split_list
from auglift.lifters.evaluate import evaluate


@click.command("evaluate")
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

    subj = split_list(subjects)
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
