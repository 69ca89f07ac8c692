"""auglift command line: the `auglift` group and its command table.

The commands live in auglift.commands, one module each; the tables below name them, and a
command's module is imported (core.config_io.registered) only when it runs or shows its --help,
so that `auglift --help` lists every command, from the summaries here, without loading torch or
any backend. A new command: its module in commands/, its row here (tests/test_cli_lazy.py checks
that the summary is what click makes of the command's docstring).
"""
from __future__ import annotations

import click

from auglift.commands.common import AugliftGroup, LazyGroup

# name -> ("module:function" in auglift.commands, the one-line summary its group's --help lists)
COMMANDS = {
    "calibrate": ("calibrate:calibrate_cmd",
                  "Fit a simulator model to a real detector; write the page with the real figures beside the "
                  "simulated."),
    "datasets": ("datasets:datasets_cmd",
                 "List the dataset adapters: splits, the root each reads, and whether it is there."),
    "evaluate": ("evaluate:evaluate_cmd",
                 "Evaluate checkpoints on every frame of the test shards; write JSON and a markdown table."),
    "lift": ("lift:lift_cmd",
             "Lift video files, image folders or caches to 3D poses, with a rendered video per sequence."),
    "precompute": ("precompute:precompute_cmd",
                   "Raw frames -> cached (x, y, c, d) shards via the Dask stage graph (resumable)."),
    "show": ("show:show_cmd", "Draw predicted vs ground-truth 3D skeletons (and the 2D input) for a few frames."),
    "simulate": ("simulate:simulate",
                 "Simulate (x, y, c, d) shards from 3D mocap: SIMULATED cues, labelled so in every shard."),
    "train": ("train:train_cmd", "Train a lifter on cached cue shards (streamed), writing checkpoints under --out."),
}
CACHE_COMMANDS = {
    "build-gt": ("build_gt:cache_build_gt",
                 "Shards of GROUND-TRUTH 2D (3D projected through the real cameras) with ORACLE GT depth."),
    "ls": ("cache:cache_ls", "List the shards under PATH (a cache root or one shard)."),
    "verify": ("cache:cache_verify", "Verify one shard or every shard under PATH (checksums, shapes, NaN policy)."),
}
STUDY_COMMANDS = {
    "list": ("study:study_list", "List the studies (in the order `study run all` runs them)."),
    "run": ("study:study_run", "Run studies by name (see `auglift study list`), or `all`; optionally as Dask tasks."),
}


@click.group(cls=AugliftGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name="auglift")
@click.option("--debug", is_flag=True, help="Show the Python traceback of an error instead of one line.")
def main(debug: bool) -> None:
    """AugLift: cached (x, y, confidence, depth) keypoint features for 3D pose lifters."""


@main.group(cls=LazyGroup, lazy=CACHE_COMMANDS)
def cache() -> None:
    """Inspect and verify shard caches."""


@main.group(cls=LazyGroup, lazy=STUDY_COMMANDS)
def study() -> None:
    """The paper's studies, reproduced: each writes results/<study>.md/.json with its provenance."""


if __name__ == "__main__":
    main()
