"""What every study shares: provenance, Δ%, markdown tables, and the results writer.

A study returns a `StudyResult` (markdown sections, plots, plain JSON data); `write_results`
puts it under `results/` as `<name>.md` + `<name>.json`, each headed by the provenance that
made it: the exact command, seed, data, git revision (with a dirty flag) and the machine.
Nothing here knows about any particular study.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from auglift.core.config_io import with_overrides
from auglift.lifters.provenance import git_revision, machine_info

SIZES = ("small", "medium", "full")
MEDIUM_STUDIES = ("cross_input",)   # the studies that have a --size medium


class PlanComplete(Exception):
    """Ends a study's planning pass where it first needs its trained checkpoints (grid.py)."""


def reproduce_command(study: str, size: str, seed: int, data_root: str | os.PathLike,
                      extra: Sequence[str] = (), seeds: Sequence[int] = ()) -> str:
    """The command line that regenerates one study's results (`--seeds` instead of `--seed` when
    the study ran over several seeds)."""
    seed_opt = ["--seeds", ",".join(map(str, seeds))] if len(seeds) > 1 else ["--seed", str(seed)]
    parts = ["auglift", "study", "run", study, "--size", size, *seed_opt,
             "--data-root", os.path.relpath(data_root), *extra]   # relative: pages stay machine-free
    return " ".join(parts)


@dataclass
class Provenance:
    study: str
    command: str                      # the command that regenerates this result
    invoked: str                      # what was actually run (sys.argv), which may differ
    size: str
    seed: int
    data: dict[str, Any]
    git: dict[str, Any]
    machine: dict[str, Any]
    started_utc: str
    seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)   # --seeds: every seed the tables are over

    @classmethod
    def start(cls, study: str, size: str, seed: int, data: dict[str, Any], config: dict[str, Any],
              command: str, out_dir: str | os.PathLike | None = None) -> "Provenance":
        """`out_dir`: where the pages are written; its changes do not make the revision dirty."""
        now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
        return cls(study, command, " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), size, int(seed), data,
                   git_revision(exclude=[out_dir] if out_dir is not None else []), machine_info(), now, 0.0, config)

    def header_lines(self) -> list[str]:
        g = self.git
        rev = "unknown (no git)" if not g.get("commit") else (
            f"`{g['commit'][:12]}`" + (" + uncommitted changes (dirty)" if g.get("dirty") else " (clean)")
            + (f"; changes under {', '.join(g['not_counted'])}/ (where results are written) not counted"
               if g.get("not_counted") else ""))
        m = self.machine
        cpu = m.get("cpu_model") or m.get("processor") or "unknown CPU"
        data = "; ".join(f"{k}: {v}" for k, v in self.data.items())
        return ["| provenance | |", "|---|---|",
                f"| command | `{self.command}` |",
                (f"| size / seeds | {self.size} / {', '.join(map(str, self.seeds))} |" if len(self.seeds) > 1
                 else f"| size / seed | {self.size} / {self.seed} |"),
                f"| data | {data} |",
                f"| git revision | {rev} |",
                f"| machine | {cpu} (`platform.processor()` = {m.get('processor')!r}), {m.get('cpu_count')} CPUs, "
                f"torch {m.get('torch')}, load average {m.get('load_avg_1min')} at start |",
                f"| run | started {self.started_utc}, took {self.seconds:.0f} s |"]


# ---------------------------------------------------------------------------------- overrides
def apply_overrides(cfg: Any, items: Sequence[str]) -> Any:
    """A study Config with `--set` overrides applied: "schedule.epochs=4", "channels=xy,xycd".

    A dotted path names a field of nested dataclasses; the value is parsed like the field's current
    value (int, float, bool, str, None, or a comma-separated tuple; for a tuple of lifters, the model
    names to keep of them: "lifters=videopose3d"). Unknown fields are a ValueError naming the item."""
    for item in items:
        path, sep, text = item.partition("=")
        if not sep or not path:
            raise ValueError(f"--set {item!r}: expected FIELD=VALUE, e.g. schedule.epochs=4")
        value = _parse_like(_field_at(cfg, path.split("."), item), text, item)
        cfg = with_overrides(cfg, {path: value}, given_only=False)
    return cfg


def _field_at(obj: Any, parts: list[str], item: str) -> Any:
    """The current value at a dotted path of nested dataclasses (a ValueError naming `item` if none)."""
    for name in parts:
        names = {f.name for f in dataclasses.fields(obj)} if dataclasses.is_dataclass(obj) else set()
        if name not in names:
            raise ValueError(f"--set {item!r}: {type(obj).__name__} has no field {name!r} "
                             f"(fields: {', '.join(sorted(names)) or 'none'})")
        obj = getattr(obj, name)
    return obj


def _select_models(current: tuple, text: str, item: str) -> tuple:
    """`lifters=videopose3d`: keep the size's lifters of these model names (in the size's order)."""
    names = [n for n in text.split(",") if n]
    unknown = [n for n in names if n not in {c.model for c in current}]
    if unknown or not names:
        raise ValueError(f"--set {item!r}: this size's lifters are {', '.join(c.model for c in current)}")
    return tuple(c for c in current if c.model in names)


def _parse_like(current: Any, text: str, item: str) -> Any:
    if text.lower() in ("none", "null"):
        return None
    if isinstance(current, tuple) and current and all(hasattr(c, "model") for c in current):
        return _select_models(current, text, item)
    try:
        if isinstance(current, bool):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
        if isinstance(current, tuple):
            kind = type(current[0]) if current else str
            return tuple(kind(v) for v in text.split(",") if v != "")
    except (TypeError, ValueError):
        raise ValueError(f"--set {item!r}: {text!r} cannot be read as this field's {type(current).__name__}") from None
    return text


# ---------------------------------------------------------------------------------- numbers
def delta_pct(base: float, value: float) -> float:
    """Relative change of `value` against `base` in percent: 100 (value - base) / base.

    For errors (MPJPE) a negative Δ% is an improvement. NaN when either is missing or base is 0.
    """
    try:
        base, value = float(base), float(value)
    except (TypeError, ValueError):
        return math.nan
    if not (math.isfinite(base) and math.isfinite(value)) or base == 0.0:
        return math.nan
    return 100.0 * (value - base) / base


def deltas_against(results: dict, columns, base_of: dict) -> dict:
    """{row: {column: Δ% MPJPE of the row against its base row}}; None on rows that are their own
    base or have none (`base_of`: {row: base row or None}; `results`: {row: {column: {"mpjpe": mm}}})."""
    return {row: {t: None if base in (None, row) else delta_pct(results[base][t]["mpjpe"], results[row][t]["mpjpe"])
                  for t in columns}
            for row, base in base_of.items()}


def fmt(x: Any, digits: int = 1) -> str:
    """A table cell: numbers rounded, missing values as an en dash."""
    if x is None:
        return "–"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return "–" if not math.isfinite(x) else f"{x:.{digits}f}"
    return str(x)


def fmt_delta(d: float, digits: int = 1) -> str:
    return "–" if d is None or not math.isfinite(d) else f"{d:+.{digits}f}%"


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric_from: int = 1) -> str:
    """A GitHub markdown table; columns from `numeric_from` on are right-aligned."""
    headers = [str(h) for h in headers]
    align = ["---" if i < numeric_from else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    for row in rows:
        row = [fmt(c) for c in row]
        if len(row) != len(headers):
            raise ValueError(f"table row has {len(row)} cells for {len(headers)} columns: {row}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- results
@dataclass
class StudyResult:
    """What a study hands to the writer. `sections` are (heading, markdown body) pairs."""

    name: str
    title: str
    summary: str
    sections: list[tuple[str, str]] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)      # file names under the results dir
    data: dict[str, Any] = field(default_factory=dict)  # plain JSON: every number in the tables
    complete: bool = True                               # False: some part could not run (said why)

    def add(self, heading: str, body: str) -> None:
        self.sections.append((heading, body.strip()))


def render_markdown(result: StudyResult, prov: Provenance) -> str:
    lines = [f"# {result.title}", "", result.summary.strip(), "", *prov.header_lines(), ""]
    if not result.complete:
        lines += ["**Incomplete:** part of this study could not run; the sections below say which.", ""]
    for heading, body in result.sections:
        lines += [f"## {heading}", "", body, ""]
    for plot in result.plots:
        lines += [f"![{Path(plot).stem}]({plot})", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_results(out_dir: str | os.PathLike, result: StudyResult, prov: Provenance) -> tuple[Path, Path]:
    """Write `<out_dir>/<name>.md` and `.json` (provenance + data) and refresh the index."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"{result.name}.md"
    js = out_dir / f"{result.name}.json"
    md.write_text(render_markdown(result, prov))
    payload = {"study": result.name, "title": result.title, "complete": result.complete,
               "provenance": asdict(prov), "plots": list(result.plots), "data": result.data}
    js.write_text(json.dumps(_finite(payload), indent=1) + "\n")
    write_index(out_dir)
    return md, js


def _finite(x: Any) -> Any:
    """JSON has no NaN: missing numbers become null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


INDEX_INTRO = """# Results

Every table here was produced by one command, written at the top of its page together with the
seed, the data, the git revision (and whether the tree had uncommitted changes) and the machine.
`make experiments` regenerates all of them (CPU-sized, `--size small`); each study also has a
`--size full` setting meant for a GPU cluster. SIMULATED and ORACLE inputs are labelled as such
wherever they appear. A page made with `--seeds` gives every cell as mean ± std over training
seeds and calls a difference under twice its std "within noise"; `--set` overrides in a page's
command say where it departs from its size's configuration; `--size medium` (cross-input only)
trains paper-width lifters in resumable sittings and says how far they got. Other result pages
in this directory (not made by `auglift study`) are listed at the end.
"""


def write_index(out_dir: str | os.PathLike) -> Path:
    """`results/README.md`: one line per study page (from its JSON), then other pages."""
    out_dir = Path(out_dir)
    rows, studied = [], set()
    for js in sorted(out_dir.glob("*.json")):
        try:
            payload = json.loads(js.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(payload, dict) or "study" not in payload or "provenance" not in payload:
            continue
        prov = payload["provenance"]
        md = js.with_suffix(".md").name
        studied.add(md)
        git = prov.get("git") or {}
        rev = (git.get("commit") or "?")[:8] + ("+dirty" if git.get("dirty") else "")
        state = "complete" if payload.get("complete", True) else "**incomplete**"
        rows.append(f"| [{payload.get('title', md)}]({md}) | `{prov.get('command', '')}` | "
                    f"{prov.get('size')} | {rev} | {state} |")
    others = [p.name for p in sorted(out_dir.glob("*.md")) if p.name not in studied and p.name != "README.md"]
    lines = [INDEX_INTRO, "| Study | Command | Size | Git | State |", "|---|---|---|---|---|", *rows]
    if others:
        lines += ["", "Other result pages:", "", *[f"- [{o}]({o})" for o in others]]
    path = out_dir / "README.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path
