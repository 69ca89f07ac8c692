"""Spread over training seeds: mean ± standard deviation of each number, and the "within noise" rule.

A study run with `--seeds 0,1,2` trains every lifter once per seed and measures it the same way;
`collect` turns the per-seed nested dicts of numbers into the same shape of `Spread`s. The rule
every seeded table reads by: a difference (a Δ%) whose mean is smaller than twice its standard
deviation over the seeds is "within noise"; with one seed there is no spread and no verdict.
The standard deviation is the sample one (n - 1 in the denominator).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from .common import PlanComplete

NOISE_FACTOR = 2.0      # a difference under NOISE_FACTOR x its spread is "within noise"


@dataclass(frozen=True)
class Spread:
    """One number measured once per seed (missing seeds left out)."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values) / self.n if self.n else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation; NaN with fewer than two values."""
        if self.n < 2:
            return math.nan
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in self.values) / (self.n - 1))

    def within_noise(self) -> bool | None:
        """|mean| < 2 std (a difference that the seeds alone could make); None with one seed."""
        if self.n < 2 or not math.isfinite(self.mean):
            return None
        return abs(self.mean) < NOISE_FACTOR * self.std

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "n": self.n, "values": list(self.values),
                "within_noise": self.within_noise()}


def spread(values: Iterable[float | None]) -> Spread:
    """A Spread of the finite values among `values` (None and NaN are missing seeds)."""
    return Spread(tuple(float(v) for v in values if v is not None and math.isfinite(float(v))))


def fmt_spread(s: Spread, digits: int = 1) -> str:
    """"99.7 ± 0.4" (one seed: "99.7"; none: an en dash)."""
    if s.n == 0:
        return "–"
    if s.n == 1:
        return f"{s.mean:.{digits}f}"
    return f"{s.mean:.{digits}f} ± {s.std:.{digits}f}"


def fmt_delta_spread(s: Spread, digits: int = 1, mark: bool = True) -> str:
    """"-5.8 ± 1.2%", with "(within noise)" when the rule says so and `mark`."""
    if s.n == 0:
        return "–"
    text = f"{s.mean:+.{digits}f}%" if s.n == 1 else f"{s.mean:+.{digits}f} ± {s.std:.{digits}f}%"
    return text + (" (within noise)" if mark and s.within_noise() else "")


def verdict(s: Spread) -> str:
    """"within noise", "beyond noise", or "one seed, no spread" for a difference."""
    w = s.within_noise()
    return "one seed, no spread" if w is None else "within noise" if w else "beyond noise"


def parse_seeds(text: str) -> tuple[int, ...]:
    """"0,1,2" -> (0, 1, 2); distinct integers, at least one (ValueError naming the text otherwise)."""
    try:
        seeds = tuple(int(p) for p in str(text).split(",") if p.strip() != "")
    except ValueError:
        raise ValueError(f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {text!r}: expected distinct comma-separated integers, e.g. 0,1,2")
    return seeds


def note(ctx) -> str:
    seeds = ctx.all_seeds
    if len(seeds) == 1:
        return f"One training seed ({seeds[0]}): no spread, so no difference can be called within or beyond noise."
    return (f"Every lifter is trained once per seed {', '.join(map(str, seeds))} (the training seed: weight "
            f"initialisation, batch order, dropout, flips); the simulated cues are one draw (simulation seed "
            f"{ctx.cache_seed}) shared by all seeds. Cells are mean ± sample std over the seeds; a Δ% whose mean is "
            "smaller than twice its std reads \"(within noise)\".")


def per_seed(ctx, measure: Callable[[Any], Any]) -> dict[int, Any]:
    """{seed: measure(context training with that seed)} over the context's seeds. A planning pass
    (studies/grid.py) records every seed's trainings, not only the first seed's, and then ends."""
    if ctx.planning:
        for s in ctx.all_seeds:
            try:
                measure(ctx.for_seed(s))
            except PlanComplete:
                pass
        raise PlanComplete()
    return {s: measure(ctx.for_seed(s)) for s in ctx.all_seeds}


def deltas_per_seed(ctx, measure: Callable[[Any], dict], deltas_of: Callable[[dict, dict, list], dict]
                    ) -> tuple[dict[int, dict], dict, list, dict[int, dict]]:
    """`measure` once per seed, then each seed's Δ% table: (runs by seed, the row keys and test
    columns of the first seed, {seed: deltas_of(results, keys, columns)})."""
    runs = per_seed(ctx, measure)
    first = runs[ctx.all_seeds[0]]
    keys, columns = first["keys"], first["columns"]
    return runs, keys, columns, {s: deltas_of(r["results"], keys, columns) for s, r in runs.items()}


def collect(per: Mapping[int, Any]) -> Any:
    """Per-seed nested dicts of numbers -> the same nesting of Spreads (keys of the first seed;
    a key missing in another seed, or None there, is a missing value)."""
    runs = list(per.values())
    first = runs[0]
    if isinstance(first, Mapping):
        return {k: collect({s: (r.get(k) if isinstance(r, Mapping) else None) for s, r in per.items()})
                for k in first}
    return spread(r for r in runs if isinstance(r, (int, float)) and not isinstance(r, bool))


def to_json(x: Any) -> Any:
    """Nested Spreads -> plain JSON (each a {mean, std, n, values, within_noise})."""
    if isinstance(x, Spread):
        return x.as_dict()
    if isinstance(x, Mapping):
        return {str(k): to_json(v) for k, v in x.items()}
    return x
