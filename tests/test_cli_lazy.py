"""`auglift --help` is instant: it lists every command from the command table of cli.py without
importing any command's module (torch, OpenCV, SciPy, Dask and auglift's packages stay unloaded);
`auglift CMD --help` and running CMD load that command only. Each check runs in a fresh interpreter,
because this test process has imported the heavy packages already."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest

from auglift.cli import main

# What `auglift --help` listed before the commands became lazy: they must all stay.
COMMANDS = ["cache", "calibrate", "datasets", "evaluate", "lift", "precompute", "show", "simulate", "study", "train"]
HEAVY = ("torch", "cv2", "scipy", "dask", "distributed", "zarr", "h5py", "matplotlib", "transformers",
         "auglift.api", "auglift.lifters", "auglift.pipeline", "auglift.studies", "auglift.cache")

# Runs the CLI in-process (as the `auglift` script does) and prints what got imported, last.
RUN = """
import json, sys
from auglift.cli import main
code = main(sys.argv[1:], prog_name="auglift", standalone_mode=False)
print("EXIT", code)
print("MODULES", json.dumps(sorted(sys.modules)))
"""


def run_cli(*args: str) -> tuple[str, list[str]]:
    """The help text `auglift ARGS` prints and the modules loaded once it returned."""
    done = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "100"})
    assert done.returncode == 0, done.stderr
    *text, exit_line, modules_line = done.stdout.rstrip("\n").split("\n")
    assert exit_line == "EXIT 0", done.stdout
    return "\n".join(text), json.loads(modules_line.split(" ", 1)[1])


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def listed(text: str) -> list[str]:
    """The command names of a help page's Commands section."""
    section = text.split("Commands:\n", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.strip()]


def test_help_lists_every_command_without_importing_them():
    text, modules = run_cli("--help")
    assert listed(text) == COMMANDS
    assert "Train a lifter on cached cue shards (streamed), writing..." in text
    assert heavy(modules) == []
    assert not [m for m in modules if m.startswith("auglift.commands.") and m != "auglift.commands.common"]


def test_group_help_lists_its_commands_without_importing_them():
    text, modules = run_cli("cache", "--help")
    assert listed(text) == ["build-gt", "ls", "verify"]
    assert heavy(modules) == []
    text, modules = run_cli("study", "--help")
    assert listed(text) == ["list", "run"]
    assert heavy(modules) == []


def test_command_help_loads_that_command_only():
    text, modules = run_cli("lift", "--help")
    assert text.startswith("Usage: auglift lift [OPTIONS] INPUTS...")
    assert "--allow-depth-kind-mismatch" in text
    assert "auglift.commands.lift" in modules
    assert "auglift.commands.train" not in modules and "auglift.commands.study" not in modules
    text, modules = run_cli("cache", "ls", "--help")
    assert text.startswith("Usage: auglift cache ls [OPTIONS] PATH")
    assert "torch" not in modules


@pytest.mark.parametrize("group", ["main", "cache", "study"])
def test_listed_summaries_are_the_commands_own(group):
    """The table's one-line summaries are what click makes of each command's docstring, so the lazy
    listing reads exactly as the loaded commands would (at any terminal width)."""
    grp = main if group == "main" else main.commands[group]
    ctx = click.Context(grp, info_name=group)
    assert grp.lazy, "no lazy commands"
    for name, (_, summary) in grp.lazy.items():
        cmd = grp.get_command(ctx, name)
        assert cmd is not None and cmd.name == name
        assert summary == cmd.get_short_help_str(limit=10**6), name
