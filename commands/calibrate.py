"""`auglift calibrate`: fit a simulator model to a real detector and write its results page."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from auglift.commands.common import data_root_option, one_line
from auglift.lifters.provenance import git_revision
from auglift.pipeline.simulate import calibrate, calibrate_confidence, calibrate_noise


CALIBRATIONS = {"landmark-z": "landmark_z_calibration", "2d-noise": "noise_calibration",
                "confidence": "confidence_calibration"}


@click.command("calibrate")
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
