"""`auglift simulate`: SIMULATED (x, y, c, d) shards from 3D mocap."""
from __future__ import annotations

from pathlib import Path

import click

from auglift.commands.common import mocap_options, one_line, split_list
from auglift.core.config_io import with_overrides
from auglift.pipeline.simulate import SimulateConfig, simulate_dataset
from auglift.pipeline.simulate import load_config as load_simulate_config


@click.command("simulate")
@mocap_options(out_help="Cache root for the shards.",
               actions_help="Comma-separated action name globs, e.g. 'Walking*,Eating' (default: all).")
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

    try:
        summary = simulate_dataset(dataset, data_root, out, config=cfg, subjects=split_list(subjects),
                                   split=split, actions=split_list(actions), backend=backend,
                                   workers=workers, overwrite=overwrite, log=click.echo)
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(one_line(e)) from None
    if summary["shards"]["failed"]:
        raise SystemExit(1)
