"""Study 2 (paper Tables 10 and 11): ORACLE ordinal depth as the extra channel.

The "o" channel is each joint's depth order relative to the pelvis, taken from the GROUND-TRUTH
3D joints (-1 in front by more than half a bin, 0 within, +1 behind) at 1, 10 and 25 cm bins.
It is an ORACLE: no deployed system has it. It bounds how much a perfect coarse depth order
could help, and is labelled ORACLE in every row. Each variant is trained with and without the
paper's perspective augmentation (extra virtual cameras around the training motion), and
tested in distribution and on the synthetic out-of-distribution views.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import caches, seeds
from .common import StudyResult, deltas_against, md_table
from .context import BUDGET_EPOCHS_WHY, Lifter, Schedule, schedule_note, summary_metrics, train_config
from .paper import NA
from .seeds import Spread, collect, deltas_per_seed, fmt_delta_spread, fmt_spread, spread, to_json, verdict

SEEDED = True   # --seeds: every table is mean ± std over the seeds
TITLE = "ORACLE ordinal depth, 1 / 10 / 25 cm bins, with and without perspective augmentation (paper Tables 10, 11)"
BINS_MM = (10.0, 100.0, 250.0)


@dataclass
class Config:
    lifter: Lifter
    schedule: Schedule
    data: caches.DataSize = field(default_factory=caches.DataSize)
    bins_mm: tuple[float, ...] = BINS_MM

    @classmethod
    def for_size(cls, size: str) -> "Config":
        if size == "small":
            # 8 lifters: a short schedule each, so that the study fits the CPU budget
            return cls(Lifter("simple_baseline", "paper", (("width", 256),)), Schedule(epochs=2, val_every=1, chosen=BUDGET_EPOCHS_WHY),
                       caches.data_size(size))
        return cls(Lifter("simple_baseline", "paper"), Schedule(epochs=60, batch_size=1024, lr_decay=0.95, stride=1, val_every=1),
                   caches.data_size(size))


def data_description(ctx, cfg: Config) -> dict:
    return {**caches.describe(cfg.data, ctx.data_root), "ordinal": "ORACLE, from ground-truth 3D"}


def variants(bins_mm) -> list[tuple[str, str, float | None]]:
    """(row label, channel set, ordinal bin mm) of each input variant."""
    out = [("xy", "xy", None)]
    out += [(f"xyo ORACLE {b / 10:g} cm", "xyo", b) for b in bins_mm]
    return out


def measure(ctx, cfg: Config) -> dict:
    """One seed: {"results": {row: {column: metrics}}, "keys": {row: (label, augmented, bin)}}."""
    main = caches.h36m(ctx, cfg.data)
    aug = caches.views_train(ctx, cfg.data)
    ood = caches.views_ood(ctx, cfg.data)
    tests = {caches.ID: [str(main)], caches.OOD_VIEWS: [str(ood)]}
    subjects = {t: ("S9", "S11") for t in tests}
    ckpts, keys = {}, {}
    for augmented in (False, True):
        train = [str(main)] + ([str(aug)] if augmented else [])
        for label, channels, bin_mm in variants(cfg.bins_mm):
            tc = train_config(ctx, cfg.lifter, channels, train, cfg.schedule, val=[str(main)], ordinal_bin=bin_mm)
            slug = f"{cfg.lifter.slug}-{channels}{'' if bin_mm is None else f'{bin_mm:g}mm'}{'-persp' if augmented else ''}"
            row = f"{label}{' + persp. aug.' if augmented else ''}"
            ckpts[row] = ctx.train(slug, tc)
            keys[row] = (label, augmented, bin_mm)
    results = ctx.evaluate(ckpts, tests, subjects)
    return {"results": {r: {t: summary_metrics(results[r][t]) for t in tests} for r in ckpts}, "keys": keys,
            "columns": list(tests)}


def deltas_vs_xy(results: dict, keys: dict, columns) -> dict:
    """{row: {column: Δ% against xy with the same augmentation}} (None on the xy rows)."""
    xy_row = {augmented: r for r, (label, augmented, _) in keys.items() if label == "xy"}
    return deltas_against(results, columns, {r: xy_row[augmented] for r, (_, augmented, _) in keys.items()})


def run(ctx, cfg: Config) -> StudyResult:
    res = StudyResult("ordinal", TITLE,
                      "MPJPE / P-MPJPE (mm), PCK@150 mm and AUC (%) of a lifter given xy plus an ORACLE ordinal depth "
                      "channel derived from ground-truth 3D (not available to a real system). Training cues SIMULATED "
                      "from H36M mocap (S1 S5 S6 S7; best epoch on S8); perspective augmentation adds virtual cameras "
                      "around the training motion. Δ% against xy with the same augmentation. "
                      + seeds.note(ctx))
    runs, keys, columns, deltas = deltas_per_seed(ctx, lambda c: measure(c, cfg), deltas_vs_xy)
    metrics = collect({s: r["results"] for s, r in runs.items()})
    dsp = collect(deltas)
    for t, table in (("ID", caches.ID), ("cross-dataset (SYNTHETIC views)", caches.OOD_VIEWS)):
        rows = []
        for row, (label, augmented, _) in keys.items():
            m, d = metrics[row][table], dsp[row][table]
            rows.append([label, "yes" if augmented else "no", fmt_spread(m["mpjpe"]),
                         "" if d.n == 0 else fmt_delta_spread(d), fmt_spread(m["p_mpjpe"]), fmt_spread(m["pck"]),
                         fmt_spread(m["auc"]), NA])
        res.add(f"{t}: {table}",
                md_table(["Input", "Persp. aug.", "MPJPE", "Δ% vs xy", "P-MPJPE", "PCK@150", "AUC", "Paper"], rows,
                         numeric_from=2))
    res.add("Test sets", "\n".join(f"- **{t}**: {caches.TEST_SET_NOTES[t]}" for t in columns) +
            "\n- Cross-dataset here is the SYNTHETIC view shift; the real 3DHP frames and the held-out real camera "
            "are in the cross-input study.")
    res.add("Reading", _reading(dsp, keys))
    res.add("Training", schedule_note(ctx, cfg.schedule))
    res.data = {"seeds": list(ctx.all_seeds), "results": to_json(metrics), "delta_pct_vs_xy": to_json(dsp),
                "per_seed": {str(s): {"results": r["results"], "delta_pct_vs_xy": deltas[s]} for s, r in runs.items()},
                "bins_mm": list(cfg.bins_mm)}
    return res


def _reading(dsp: dict, keys: dict) -> str:
    """Generated from the spreads `dsp[row][column]` (Δ% over seeds)."""
    lines = []
    for row, (label, augmented, _) in keys.items():
        if label == "xy":
            continue
        d_id, d_ood = dsp[row][caches.ID], dsp[row][caches.OOD_VIEWS]
        lines.append(f"- {row}: {fmt_delta_spread(d_id)} ID, {fmt_delta_spread(d_ood)} cross-dataset against xy "
                     f"({verdict(d_id)} ID, {verdict(d_ood)} cross-dataset).")
    lines.append("\nExpected (paper, qualitatively): the finer the bin the more the oracle order helps, and it helps "
                 "most out of distribution, because it removes the front/back ambiguity that 2D alone cannot. "
                 "The paper's cell values were not available to us (paper: n/a).")
    reversed_in = _coarser_helps_more(dsp, keys)
    if reversed_in:
        lines.append(f"Ours runs the other way ({', '.join(reversed_in)}): the coarsest bin helps more than the "
                     "finest, beyond the spread over seeds. We think this comes from the channel being ternary "
                     "(-1 / 0 / +1 against the pelvis, as in `core.codec.ordinal_depth`): with a 1 cm dead zone "
                     "nearly every joint reads +-1, which says only in front of or behind the pelvis, flips at random "
                     "for joints near the pelvis plane (hips, spine) and says nothing of how far; a 25 cm dead zone "
                     "marks exactly the joints that are far in front or behind, which is the depth information 2D "
                     "lacks.")
    return "\n".join(lines)


def _coarser_helps_more(dsp: dict, keys: dict) -> list[str]:
    """The settings (with / without augmentation) where the coarsest bin beats the finest beyond
    noise, in distribution and across datasets both (`dsp[row][column]`: Spreads of Δ%)."""
    out = []
    for augmented in (False, True):
        rows = sorted((bin_mm, row) for row, (_, aug, bin_mm) in keys.items()
                      if aug == augmented and bin_mm is not None)
        if len(rows) < 2:
            continue
        fine, coarse = dsp[rows[0][1]], dsp[rows[-1][1]]
        if all(_beyond_noise_below(coarse.get(t), fine.get(t)) for t in (caches.ID, caches.OOD_VIEWS)):
            out.append("with perspective augmentation" if augmented else "without augmentation")
    return out


def _beyond_noise_below(a: Spread | None, b: Spread | None) -> bool:
    """Whether `a` is below `b` by more than twice the spread of their per-seed difference (one
    seed: simply below)."""
    if a is None or b is None or not a.n or not b.n:
        return False
    diff = spread(x - y for x, y in zip(a.values, b.values))
    return diff.mean < 0 and diff.within_noise() is not True
