"""What every command shares: the one-line error of a failure, the --data-root option, and the
groups that load their commands lazily and turn any error into one line."""
from __future__ import annotations

from pathlib import Path

import click

from auglift.core.config_io import registered

# The one default of every --data-root: the shared data beside the repository (../shared/data seen
# from the repository root) whatever the working directory; $AUGLIFT_DATA or the option override it.
DEFAULT_DATA_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
data_root_option = click.option(
    "--data-root", type=click.Path(file_okay=False, path_type=Path), envvar="AUGLIFT_DATA", default=DEFAULT_DATA_ROOT,
    show_default="$AUGLIFT_DATA or ../shared/data beside the repository", help="Directory holding the datasets.")


def mocap_options(out_help: str, actions_help: str):
    """The options that choose what a command makes shards of from a mocap corpus (simulate, cache
    build-gt): --dataset, --data-root, --out, --subjects, --split, --actions, in that order."""
    options = [
        click.option("--dataset", default="h36m", show_default=True, help="Mocap corpus (a pipeline.sources adapter)."),
        data_root_option,
        click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help=out_help),
        click.option("--subjects", help="Comma-separated subjects, e.g. S1,S5 (default: all)."),
        click.option("--split", type=click.Choice(["train", "test"]), help="Only the subjects of this split."),
        click.option("--actions", help=actions_help),
    ]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def one_line(e: BaseException) -> str:
    """A user-facing message for an error: the file and the problem, without a traceback."""
    text = str(e).strip()
    if "Original Traceback" in text:  # re-raised from a DataLoader worker: keep the original's line
        text = [ln for ln in text.splitlines() if ln.strip()][-1].split(": ", 1)[-1]
    if isinstance(e, OSError) and e.strerror and e.filename is not None:
        text = f"{e.filename}: {e.strerror}"
    if isinstance(e, KeyError) or not text:
        text = f"{type(e).__name__}: {text or 'no message'}"
    return text


def split_list(text: str | None) -> list[str] | None:
    """The items of a comma-separated option (None when it was not given)."""
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


class LazyGroup(click.Group):
    """A group whose commands are imported only when one runs or shows its --help.

    `lazy` maps a command name to ("module:function" in auglift.commands, the command's one-line
    summary): the module is loaded by core.config_io.registered, the summary is what the group's
    --help lists, so that listing the commands imports none of them. The summary must be what click
    makes of the command's docstring (tests/test_cli_lazy.py checks it)."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy
        self.registry = {name: target for name, (target, _) in lazy.items()}  # core.config_io.registered's form

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands or name not in self.lazy:
            return self.commands.get(name)
        command = registered(self.registry, "auglift.commands", name, "command")
        self.add_command(command, name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's listing, from the summaries: a stand-in command of that help gets click's own
        # shortening to the terminal's width.
        rows = [(name, self.commands.get(name) or click.Command(name, help=self.lazy[name][1]))
                for name in self.list_commands(ctx)]
        rows = [(name, cmd) for name, cmd in rows if not cmd.hidden]
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])


class AugliftGroup(LazyGroup):
    """The top-level group: any error a command raises becomes one line and exit code 1
    (2 for usage errors, as click does); `auglift --debug ...` shows the traceback instead."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as e:
            if ctx.params.get("debug"):
                raise
            raise click.ClickException(one_line(e) + "  (rerun as `auglift --debug ...` for the traceback)") from None
