"""`auglift study list` and `auglift study run`: the paper's studies, here or as Dask tasks."""
from __future__ import annotations

from pathlib import Path

import click

from auglift.commands.common import data_root_option
from auglift.pipeline.cluster import dask_client
from auglift.pipeline.precompute import parse_part
from auglift.studies import STUDIES, run_all, study_module
from auglift.studies.grid import run_grid
from auglift.studies.seeds import parse_seeds


@click.command("list")
def study_list() -> None:
    """List the studies (in the order `study run all` runs them)."""

    for name in STUDIES:
        click.echo(f"{name:<16} {study_module(name).TITLE}")


@click.command("run")
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
            if size == "medium" or overrides:
                raise ValueError("--set and --size medium run in this process only (no --workers, --scheduler, "
                                 "--gpus, --part or --prepare)")
            common["seeds"] = many
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
