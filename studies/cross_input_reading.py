"""The cross-input page's summary and reading, generated from the numbers (mean ± std over seeds).

Nothing here states a finding of its own: which lifter beats which, by how much and whether it is
within noise all come from the Spreads handed in; only the hypotheses of `why` (said to be ours)
are fixed text, chosen by the column where the paper's direction does not hold beyond noise.
"""
from __future__ import annotations

import math

from . import caches
from .heldout import ACTION, CAMERA, SUBJECT
from .paper import cell
from .seeds import Spread, collect, fmt_delta_spread, spread, verdict


def _mean(xs) -> float:
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return sum(xs) / len(xs) if xs else math.nan


def summary_rows(deltas: dict, labels: dict, real_cols: list[str]) -> list[list[str]]:
    """Per channel set: the mean Δ% over lifters (ID; OOD real-camera columns; synthetic views),
    per seed, then mean ± std over the seeds. `deltas[seed][label][column]`."""
    channels = list(dict.fromkeys(ch for _, ch in labels.values()))[1:]
    rows = []
    for ch in channels:
        labs = [lab for lab, (_, c) in labels.items() if c == ch]
        per = {s: {"id": _mean(d[lab].get(caches.ID) for lab in labs),
                   "real": _mean(d[lab].get(t) for lab in labs for t in real_cols),
                   "views": _mean(d[lab].get(caches.OOD_VIEWS) for lab in labs)} for s, d in deltas.items()}
        sp = collect(per)
        rows.append([f"{ch} vs xy", fmt_delta_spread(sp["id"]), cell("id_delta_pct") if ch == "xycd" else "paper: n/a",
                     fmt_delta_spread(sp["real"]), fmt_delta_spread(sp["views"]),
                     cell("ood_delta_pct") if ch == "xycd" else "paper: n/a"])
    return rows


def _d(s: Spread) -> str:
    return fmt_delta_spread(s, mark=False)


def column_line(column: str, spreads: dict[str, Spread]) -> str:
    """One column's reading: xycd vs xy per lifter, each called better / worse / within noise."""
    better = [f"{k} ({_d(s)})" for k, s in spreads.items() if s.mean < 0 and s.within_noise() is False]
    worse = [f"{k} ({_d(s)})" for k, s in spreads.items() if s.mean > 0 and s.within_noise() is False]
    noise = [f"{k} ({_d(s)})" for k, s in spreads.items() if s.within_noise()]
    single = [f"{k} ({fmt_delta_spread(s)}, one seed)" for k, s in spreads.items() if s.within_noise() is None]
    parts = []
    if better:
        parts.append("xycd beats xy beyond noise for " + ", ".join(better) + ", as in the paper")
    if noise:
        parts.append("xycd and xy differ by less than twice the spread over seeds (within noise) for " + ", ".join(noise))
    if worse:
        parts.append("xycd is *worse* than xy beyond noise for " + ", ".join(worse))
    if single:
        parts.append("no spread to judge by for " + ", ".join(single))
    text = "; ".join(parts) + "."
    if noise or worse:
        text += " " + why(column)
    return f"- **{column}**: {text}"


def interpretation(dsp: dict, labels: dict, columns: list[str], real_cols: list[str]) -> str:
    """The page's reading: a headline over the columns that do not depend on the simulator's
    cameras, then one line per column. `dsp[label][column]` is a Spread of Δ% over seeds."""
    xycd = {lab: labels[lab][0] for lab, (_, ch) in labels.items() if ch == "xycd"}
    lines = [headline(dsp, xycd, real_cols), ""]
    in_dist = _pooled([dsp[lab][caches.ID] for lab in xycd if dsp[lab].get(caches.ID)])
    if in_dist.n and in_dist.mean > 0 and in_dist.within_noise() is False:
        lines[0] += (f" xycd is worse than xy in distribution too ({fmt_delta_spread(in_dist)}, beyond noise): there "
                     "the depth channel costs the lifter rather than helps it, which we take as the sign of an "
                     "under-trained wider input (see Training: a short schedule), so on this page the out-of-"
                     "distribution columns cannot tell whether d helps a trained lifter.")
    views = _pooled([dsp[lab][caches.OOD_VIEWS] for lab in xycd if dsp[lab].get(caches.OOD_VIEWS)])
    if views.n and "we think the cause" in lines[0]:
        lines[0] += (f" On the SYNTHETIC views, by contrast, the mean Δ% over lifters is {fmt_delta_spread(views)} "
                     f"({verdict(views)})" + (": there d tells the lifter what the simulator's camera change did, "
                                              "which is why that column alone overstates the gain." if
                                              views.mean < 0 and views.within_noise() is False else "."))
    for t in columns:
        spreads = {lifter: dsp[lab][t] for lab, lifter in xycd.items() if dsp[lab].get(t) and dsp[lab][t].n}
        if spreads:
            lines.append(column_line(t + (" (SYNTHETIC views)" if t == caches.OOD_VIEWS else ""), spreads))
    return "\n".join(lines) or "No comparison available."


def headline(dsp: dict, xycd: dict[str, str], real_cols: list[str]) -> str:
    """How many (lifter, real-camera OOD column) cells xycd wins beyond noise, and their pooled mean."""
    cells = [(lifter, t, dsp[lab][t]) for lab, lifter in xycd.items() for t in real_cols
             if dsp[lab].get(t) and dsp[lab][t].n]
    if not cells:
        return "No out-of-distribution column without the simulator's cameras could be computed."
    won = [c for c in cells if c[2].mean < 0 and c[2].within_noise() is False]
    lost = [c for c in cells if c[2].mean > 0 and c[2].within_noise() is False]
    tied = [c for c in cells if c[2].within_noise() is not False]
    pooled = _pooled([s for *_, s in cells])
    text = (f"**Headline (the columns that do not use the simulator's cameras: {', '.join(real_cols)}).** Over "
            f"{len(cells)} lifter × column cells, xycd beats xy beyond noise in {len(won)}, is worse beyond noise in "
            f"{len(lost)} and is within noise (or has no spread) in {len(tied)}; the mean Δ% over these cells is "
            f"{fmt_delta_spread(pooled)} ({verdict(pooled)}).")
    if tied or lost:
        text += (" Where xycd does not beat xy beyond the spread, we think the cause is that our depth cue is "
                 "SIMULATED from the same ground-truth pose and camera that already fix the 2D: through real cameras "
                 "it carries little evidence the 2D lacks; per-column hypotheses below.")
    return text


def _pooled(spreads: list[Spread]) -> Spread:
    """Per seed (by position), the mean over several Spreads' values; then their spread."""
    if not spreads:
        return spread([])
    return spread(_mean(s.values[i] for s in spreads if i < s.n) for i in range(max(s.n for s in spreads)))


def why(test: str) -> str:
    """Our best explanation where xycd does not beat xy beyond noise, per test set (a hypothesis, said so)."""
    if test == caches.OOD_3DHP:
        return ("We think this is mostly noise: 3 or 4 frames, and the real depth cue (BlazePose landmark z) is "
                "another kind than the simulated metric depth the lifter learnt, so its d channel is off-distribution.")
    if test == caches.ID_SH:
        return ("We think the real SH detections sit away from where the simulated confidence and depth were drawn "
                "(those follow the ground-truth joints), so c and d disagree with the 2D more often than in training.")
    if test.startswith(caches.OOD_VIEWS):
        return ("We think the higher virtual cameras (20-55 degrees elevation, vs about 0-15 for H36M) produce "
                "root-relative depth patterns (head nearer than feet) that never occur in training, so the lifter "
                "extrapolates on d.")
    if test == CAMERA:
        return ("We think the depth channel carries the training cameras' viewpoints: a pose's root-relative depth "
                "depends on where the camera stands, so a lifter trained through three cameras learns their depth "
                "patterns and meets new ones through the fourth, while its 2D changes less (compare each input's "
                "error here with its in-distribution error).")
    if test == ACTION:
        return ("We think the sitting poses' difficulty is mostly self-occlusion and unusual limb layouts, which "
                "our simulated depth (read at the occluded joints too) helps with only as far as the lifter learnt "
                "to use it on standing poses.")
    if test == SUBJECT:
        return ("We think one training subject leaves too few poses for either input to generalise, and the "
                "wider input overfits that subject at least as much.")
    if test == caches.ID:
        return ("We think our simulated d is computed from the same ground-truth pose and camera that already "
                "determine the 2D, so in distribution it adds little a lifter cannot infer from xy; and our CPU-sized "
                "schedule leaves the extra channels under-used.")
    return ("We think a single-frame lifter cannot be changed by order or speed at all, and for the temporal one "
            "the depth channel carries no motion information, so re-timing the motion moves both inputs alike.")
