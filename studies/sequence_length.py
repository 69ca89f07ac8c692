"""Study 4 (paper Tables 5 and 9, Figure 5): sequence length and motion brittleness.

VideoPose3D is trained with receptive fields of 1, 9, 27 and 81 frames, with xy and with xycd
input, on SIMULATED H36M cues (S1 S5 S6 S7; best epoch on S8). It is tested on the test
subjects as they are, on the synthetic out-of-distribution views, and on the same test
sequences played backwards and at other speeds (every 2nd frame: 2x; every frame twice: 0.5x).
A lifter that reads poses frame by frame does not care about the order or speed of the frames;
one that has learnt the training set's motion does.

Our mocap copy is decimated to 10 fps (the paper's H36M runs at 50 fps), so 81 frames here span
8.1 s of motion, not 1.6 s.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from auglift.lifters.shards import resolve_shards

from . import caches, motion
from .common import StudyResult, delta_pct, fmt_delta, md_table
from .context import BUDGET_EPOCHS_WHY, TEST_SUBJECTS, Lifter, Schedule, schedule_note, summary_metrics, train_config
from .paper import cell, sources_note

TITLE = "Sequence length and motion brittleness (paper Tables 5, 9 and Figure 5)"
TRANSFORMS = ("reversed", "speed_2", "speed_0.5")
TRANSFORM_LABELS = {"reversed": "reversed", "speed_2": "2x speed (every 2nd frame)",
                    "speed_0.5": "0.5x speed (each frame twice)"}


@dataclass
class Config:
    frames: tuple[int, ...]
    schedule: Schedule
    width: int | None = 128                     # VideoPose3D channels (None: the paper's 1024)
    data: caches.DataSize = field(default_factory=caches.DataSize)
    channels: tuple[str, ...] = ("xy", "xycd")
    transforms: tuple[str, ...] = TRANSFORMS

    @classmethod
    def for_size(cls, size: str) -> "Config":
        if size == "small":
            # 8 lifters: a short schedule each, so that the study fits the CPU budget
            return cls((1, 9, 27, 81), Schedule(epochs=2, val_every=1, chosen=BUDGET_EPOCHS_WHY), 128, caches.data_size(size))
        return cls((1, 9, 27, 81, 243), Schedule(epochs=60, batch_size=1024, lr_decay=0.95, stride=1, val_every=1), None,
                   caches.data_size(size))

    def schedule_for(self, frames: int) -> Schedule:
        """Long windows overlap almost entirely at a small stride; on CPU the 81-frame model takes
        every 8th window so that its cost stays near the others' (small size only)."""
        if self.schedule.stride > 1 and frames >= 81:
            return dataclasses.replace(self.schedule, stride=2 * self.schedule.stride)
        return self.schedule

    def lifter(self, frames: int) -> Lifter:
        overrides = (("channels", self.width),) if self.width else ()
        return Lifter("videopose3d", f"vp3d-{frames}", overrides)


def data_description(ctx, cfg: Config) -> dict:
    return {**caches.describe(cfg.data, ctx.data_root),
            "time transforms": ", ".join(TRANSFORM_LABELS[t] for t in cfg.transforms) + " of the S9/S11 test shards"}


def transformed_tests(ctx, main: Path, names, subjects=TEST_SUBJECTS) -> dict[str, list[str]]:
    """Test shards of `subjects` (S9/S11) re-timed by each transform (written once under derived/)."""

    src = [i.path for i in resolve_shards(str(main), subjects=list(subjects))]
    out = {}
    for name in names:
        root = ctx.work / "derived" / f"h36m_test_{name}"
        motion.write_transformed(src, root, name)
        out[TRANSFORM_LABELS[name]] = [str(root)]
    return out


def run(ctx, cfg: Config) -> StudyResult:
    res = StudyResult("sequence_length", TITLE,
                      "VideoPose3D with 1 to 81 input frames, xy vs xycd, SIMULATED H36M training cues. MPJPE in mm. "
                      "Brittleness = Δ% of MPJPE when the same test sequences are reversed or re-timed (lower is "
                      "more robust). Our mocap is 10 fps, so 81 frames cover 8.1 s.")
    main = caches.h36m(ctx, cfg.data)
    tests = {caches.ID: [str(main)], caches.OOD_VIEWS: [str(caches.views_ood(ctx, cfg.data))]}
    tests.update(transformed_tests(ctx, main, cfg.transforms))
    subjects = {caches.ID: TEST_SUBJECTS, caches.OOD_VIEWS: TEST_SUBJECTS}
    ckpts, keys = {}, {}
    for frames in cfg.frames:
        lifter = cfg.lifter(frames)
        for ch in cfg.channels:
            tc = train_config(ctx, lifter, ch, [str(main)], cfg.schedule_for(frames), val=[str(main)])
            label = f"{frames} frames {ch}"
            ckpts[label] = ctx.train(f"{lifter.slug}-{ch}", tc)
            keys[label] = (frames, ch)
    results = ctx.evaluate(ckpts, tests, subjects)
    mp = {lab: {t: results[lab][t]["mpjpe"] for t in tests} for lab in ckpts}

    # Table 5: ID, OOD and the generalisation gap per length; Δ% xycd vs xy at the same length
    rows = []
    for lab, (frames, ch) in keys.items():
        xy = f"{frames} frames xy"
        gap = mp[lab][caches.OOD_VIEWS] - mp[lab][caches.ID]
        rows.append([frames, ch, mp[lab][caches.ID], mp[lab][caches.OOD_VIEWS], gap,
                     "" if ch == "xy" else fmt_delta(delta_pct(mp[xy][caches.ID], mp[lab][caches.ID])),
                     "" if ch == "xy" else fmt_delta(delta_pct(mp[xy][caches.OOD_VIEWS], mp[lab][caches.OOD_VIEWS])),
                     "" if ch == "xy" else _gap_delta(mp[xy][caches.OOD_VIEWS] - mp[xy][caches.ID], gap),
                     _paper_cell(frames, ch)])
    res.add("MPJPE by sequence length (paper Table 5)",
            md_table(["Frames", "Input", f"ID: {caches.ID}", f"OOD: {caches.OOD_VIEWS}", "Gap (OOD - ID)",
                      "ID Δ% vs xy", "OOD Δ% vs xy", "Gap Δ% vs xy (mm if xy gap < 5 mm)", "Paper (1 frame, xycd vs xy: ID / OOD / gap)"],
                     rows, numeric_from=2) + "\n\n" +
            sources_note(["single_frame_id_delta_pct", "single_frame_ood_delta_pct", "single_frame_gap_delta_pct"]))

    # Table 9: brittleness under time transforms
    names = [TRANSFORM_LABELS[t] for t in cfg.transforms]
    rows, brittle = [], {}
    for lab, (frames, ch) in keys.items():
        d = {n: delta_pct(mp[lab][caches.ID], mp[lab][n]) for n in names}
        brittle[lab] = d
        rows.append([frames, ch, mp[lab][caches.ID]] + [x for n in names for x in (mp[lab][n], fmt_delta(d[n]))]
                    + ["paper: n/a"])
    headers = ["Frames", "Input", "Original"]
    for n in names:
        headers += [n, "Δ%"]
    res.add("Motion brittleness: same test poses, other order or speed (paper Table 9)",
            md_table(headers + ["Paper"], rows, numeric_from=2))
    plot = _figure(ctx, cfg, keys, mp, names)
    res.plots.append(plot)
    res.add("Reading", _reading(keys, mp, brittle, names))
    res.add("Training", schedule_note(ctx, cfg.schedule))
    res.data = {"mpjpe": mp, "brittleness_delta_pct": brittle,
                "results": {lab: {t: summary_metrics(results[lab][t]) for t in tests} for lab in ckpts}}
    return res


def _gap_delta(base_gap: float, gap: float, min_gap_mm: float = 5.0) -> str:
    """Δ% of the generalisation gap; a gap under `min_gap_mm` makes a percentage meaningless."""
    if abs(base_gap) < min_gap_mm:
        return f"{gap - base_gap:+.1f} mm"
    return fmt_delta(delta_pct(base_gap, gap))


def _paper_cell(frames: int, ch: str) -> str:
    if frames != 1 or ch != "xycd":
        return "paper: n/a"
    return " / ".join(cell(k) for k in ("single_frame_id_delta_pct", "single_frame_ood_delta_pct",
                                        "single_frame_gap_delta_pct"))


def _figure(ctx, cfg: Config, keys: dict, mp: dict, names: list[str]) -> str:
    """Figure 5 analogue: MPJPE against input frames, ID/OOD (left) and under time transforms (right)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2))
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for ch, colour in zip(cfg.channels, ("tab:blue", "tab:orange", "tab:green")):
        labs = [lab for lab, (f, c) in keys.items() if c == ch]
        frames = [keys[lab][0] for lab in labs]
        ax1.plot(frames, [mp[lab][caches.ID] for lab in labs], "o-", color=colour, label=f"{ch} ID")
        ax1.plot(frames, [mp[lab][caches.OOD_VIEWS] for lab in labs], "s--", color=colour, label=f"{ch} OOD views")
        for n, style, marker in zip(names, (":", "-.", "--"), ("v", "^", "D")):
            ax2.plot(frames, [delta_pct(mp[lab][caches.ID], mp[lab][n]) for lab in labs], marker=marker,
                     linestyle=style, color=colour, label=f"{ch} {n}")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xticks(list(cfg.frames))
        ax.set_xticklabels([str(f) for f in cfg.frames])
        ax.set_xlabel("input frames (10 fps)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax1.set_ylabel("MPJPE (mm)")
    ax1.set_title("Accuracy vs sequence length (SIMULATED cues)")
    ax2.set_ylabel("Δ% MPJPE vs original order/speed")
    ax2.set_title("Motion brittleness")
    ax2.axhline(0.0, color="black", lw=0.8)
    fig.tight_layout()
    name = "sequence_length.png"
    ctx.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(ctx.out / name, dpi=110)
    return name


def _reading(keys: dict, mp: dict, brittle: dict, names: list[str]) -> str:
    lines = []
    for ch in sorted({c for _, c in keys.values()}):
        labs = [lab for lab, (f, c) in keys.items() if c == ch]
        best_id = min(labs, key=lambda lab: mp[lab][caches.ID])
        best_ood = min(labs, key=lambda lab: mp[lab][caches.OOD_VIEWS])
        worst = max(labs, key=lambda lab: max(brittle[lab].values()))
        lines.append(f"- {ch}: best ID at {keys[best_id][0]} frames, best OOD at {keys[best_ood][0]} frames; most "
                     f"brittle: {keys[worst][0]} frames ({fmt_delta(max(brittle[worst].values()))}).")
    single = [lab for lab, (f, c) in keys.items() if f == 1]
    if single:
        lines.append(f"- 1 frame: brittleness {', '.join(fmt_delta(brittle[single[0]][n]) for n in names)} — a "
                     "single-frame lifter sees each pose alone, so order and speed cannot change its output (any "
                     "Δ% here comes only from which frames the re-timed set contains).")
    worse_id = sorted(f for lab, (f, c) in keys.items() if c == "xycd"
                      and (base := next((b for b, (fb, cb) in keys.items() if fb == f and cb == "xy"), None))
                      and mp[lab][caches.ID] > 1.01 * mp[base][caches.ID])
    if worse_id:
        lines.append(f"- xycd is *worse* than xy in distribution at {', '.join(map(str, worse_id))} frames, unlike the "
                     "paper (-8.0% at 1 frame). We think this study's short schedule (its Training section gives the "
                     "epochs and the S8 curve) leaves the wider input under-trained; the cross-input study trains "
                     "longer, and its page shows whether the gap closes there.")
    lines.append("\nThe paper's claim (earlier version): longer sequences overfit the training motion and generalise "
                 "worse; AugLift is best at short lengths. Compare the OOD column and the brittleness Δ% above.")
    return "\n".join(lines)
