"""Study 1 (paper Table 2): xy vs xyc vs xycd, in distribution and out of it.

Each lifter is trained three times on SIMULATED H36M cues (S1 S5 S6 S7; best epoch chosen on
S8), once per channel set, and tested on every set this project can read: H36M S9/S11
(simulated cues, and the real Stacked-Hourglass 2D), the same test motion played reversed and
at other speeds, synthetic out-of-distribution camera views of S9/S11, and the real
MPI-INF-3DHP sample frames through the real detector path (when the precompute backends are
available). Three more out-of-distribution columns come from lifters retrained on less
(`heldout`): without the fourth real H36M camera, without the sitting actions, and on one
subject only. Only the synthetic views depend on the simulator's virtual-camera model.

Δ% compares each channel set with xy of the same lifter. With `--seeds 0,1,2` every lifter is
trained once per seed and every cell is mean ± std over the seeds (`seeds`); `--size medium`
is the longer, resumable regime of `medium`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import caches, heldout, medium, real_frames, seeds, sequence_length
from .common import StudyResult, delta_pct, md_table
from .context import (
    TEST_SUBJECTS,
    TRAIN_SUBJECTS,
    VAL_SUBJECTS,
    Lifter,
    Schedule,
    schedule_note,
    summary_metrics,
    train_config,
)
from .cross_input_reading import interpretation, summary_rows
from .paper import sources_note
from .seeds import collect, fmt_delta_spread, fmt_spread, per_seed, to_json

SEEDED = True   # --seeds: every table is mean ± std over the seeds
TITLE = "Cross-input study: xy vs xyc vs xycd (paper Table 2)"
CHANNELS = ("xy", "xyc", "xycd")
HELD_OUT_CHANNELS = ("xy", "xycd")   # the retrained lifters: xyc left out to fit 2 cores
# Chosen on the validation subject S8 only, never on S9/S11.
SMALL_EPOCHS_WHY = ("12, chosen on the validation subject S8 alone (never on a test column): with 4 epochs "
                    "xy and xycd were level on S8 while its error was still falling; the Training section "
                    "gives this run's S8 curve, so the choice can be checked against the data it was made on. "
                    "12 keeps `make experiments` within about an hour on 2 cores.")
CAMERA, ACTION, SUBJECT = heldout.CAMERA, heldout.ACTION, heldout.SUBJECT
TRANSFORMS = sequence_length.TRANSFORMS
HELD_OUT_NOTES = {
    CAMERA: f"REAL camera shift: lifters retrained on the three other H36M cameras (no sitting actions), tested on "
            f"S9/S11 through camera {heldout.HELD_OUT_CAMERA} with its real calibration (sitting actions left out, "
            "so only the camera changes); cues simulated",
    ACTION: "action shift: the same retrained lifters (no Sitting / SittingDown in training), tested on S9/S11 "
            "Sitting and SittingDown through the three training cameras; cues simulated",
    SUBJECT: "subject shift beyond the standard split: lifters retrained on S1 alone (instead of S1 S5 S6 S7; S8 "
             "picks the epoch), tested on S9/S11 through the real cameras; cues simulated",
}


@dataclass
class Config:
    lifters: tuple[Lifter, ...]
    schedule: Schedule
    data: caches.DataSize = field(default_factory=caches.DataSize)
    channels: tuple[str, ...] = CHANNELS
    held_out: bool = True                       # retrain without a camera / the sitting actions / on S1
    transforms: tuple[str, ...] = TRANSFORMS     # time transforms of the test motion
    sitting_minutes: float = 0.0                 # medium: training minutes per lifter in one run
    test_subjects: tuple[str, ...] = TEST_SUBJECTS   # every test column's subjects (S9 S11)

    @classmethod
    def for_size(cls, size: str) -> "Config":
        if size == "medium":
            lifters, schedule = medium.config()
            return cls(lifters, schedule, caches.data_size("small"), held_out=False, transforms=(), sitting_minutes=10.0)
        if size == "small":
            return cls((Lifter("simple_baseline", "paper", (("width", 256),)),
                        Lifter("videopose3d", "vp3d-9", (("channels", 128),))),
                       Schedule(epochs=12, val_every=4, chosen=SMALL_EPOCHS_WHY), caches.data_size(size))
        return cls((Lifter("simple_baseline", "paper"), Lifter("videopose3d", "vp3d-243"),
                    Lifter("poseformer", "paper"), Lifter("motionbert", "paper")),
                   Schedule(epochs=60, batch_size=1024, lr_decay=0.95, stride=1, val_every=1), caches.data_size(size))


def data_description(ctx, cfg: Config) -> dict:
    return caches.describe(cfg.data, ctx.data_root)


def trained(ctx, cfg: Config, lifter: Lifter, channels: str, box_rescale: bool = True):
    """The checkpoint of one lifter / channel set (shared with the box-rescaling study)."""
    train = [str(caches.h36m(ctx, cfg.data))]
    tc = train_config(ctx, lifter, channels, train, cfg.schedule, val=train, box_rescale=box_rescale)
    tag = "" if box_rescale else "-nobox"
    return ctx.train(f"{lifter.slug}-{channels}{tag}", tc)


def trained_held_out(ctx, cfg: Config, lifter: Lifter, channels: str) -> dict[str, object]:
    """{column: checkpoint} of the lifters retrained on less: three cameras and no sitting
    (CAMERA and ACTION), and S1 alone (SUBJECT)."""
    main = caches.h36m(ctx, cfg.data)
    restricted = heldout.restricted_train(main, TRAIN_SUBJECTS + VAL_SUBJECTS)
    tc = train_config(ctx, lifter, channels, restricted, cfg.schedule, val=restricted)
    three_cams = ctx.train(f"{lifter.slug}-{channels}-heldout-cam-sitting", tc)
    tc = train_config(ctx, lifter, channels, [str(main)], cfg.schedule, val=[str(main)],
                      train_subjects=heldout.CROSS_SUBJECT_TRAIN)
    one_subject = ctx.train(f"{lifter.slug}-{channels}-heldout-subjects", tc)
    return {CAMERA: three_cams, ACTION: three_cams, SUBJECT: one_subject}


def held_out_tests(ctx, cfg: Config) -> dict[str, list[str]]:
    main = caches.h36m(ctx, cfg.data)
    return {CAMERA: heldout.camera_test(main, cfg.test_subjects), ACTION: heldout.action_test(main, cfg.test_subjects),
            SUBJECT: [str(main)]}


def single_frame(lifter: Lifter) -> bool:
    """A lifter that sees one frame: playing the motion reversed or re-timed cannot change its output."""
    return lifter.model == "simple_baseline" or lifter.preset == "vp3d-1"


def measure(ctx, cfg: Config) -> dict:
    """One seed's numbers: {"results": {label: {column: metrics}}, "labels", "checkpoints", "real"}."""
    ckpts, labels, held = {}, {}, {}
    for lifter in cfg.lifters:    # every training first: the test sets are made after them
        for ch in cfg.channels:
            label = f"{lifter.label} {ch}"
            ckpts[label] = trained(ctx, cfg, lifter, ch)
            labels[label] = (lifter.label, ch)
            if cfg.held_out and ch in HELD_OUT_CHANNELS:
                held[label] = trained_held_out(ctx, cfg, lifter, ch)
    tests, _ = caches.standard_tests(ctx, cfg.data)
    timed = sequence_length.transformed_tests(ctx, caches.h36m(ctx, cfg.data), cfg.transforms, cfg.test_subjects)
    ho_tests = held_out_tests(ctx, cfg) if cfg.held_out else {}
    lifter_of = {f"{lf.label} {ch}": lf for lf in cfg.lifters for ch in cfg.channels}
    results = {}
    for label, ckpt in ckpts.items():
        own = {ckpt: {**tests, **({} if single_frame(lifter_of[label]) else timed)}}
        for column, ho in held.get(label, {}).items():
            own.setdefault(ho, {})[column] = ho_tests[column]
        results[label] = {}
        for path, sets in own.items():   # each checkpoint on its test columns, every one on the test subjects
            r = ctx.evaluate({label: path}, sets, {t: cfg.test_subjects for t in sets})
            results[label].update(r[label])
    real = real_frames.evaluate_samples(ctx, ckpts, dataset="3dhp")
    if real.ok:
        for label in ckpts:
            results[label][caches.OOD_3DHP] = real.metrics[label]
    return {"results": {lab: {t: summary_metrics(r) for t, r in res.items()} for lab, res in results.items()},
            "labels": labels, "real": real, "checkpoints": {lab: str(p) for lab, p in ckpts.items()}}


def columns_of(cfg: Config, real_ok: bool) -> list[str]:
    """The table's test columns, in order: simulator-camera-free ones first, synthetic views last."""
    cols = [caches.ID, caches.ID_SH]
    cols += [CAMERA, ACTION, SUBJECT] if cfg.held_out else []
    cols += [sequence_length.TRANSFORM_LABELS[t] for t in cfg.transforms]
    cols += [caches.OOD_3DHP] if real_ok else []
    return cols + [caches.OOD_VIEWS]


def deltas_vs(results: dict, labels: dict[str, tuple[str, str]], tests: list[str], base_channels: str = "xy"):
    """{label: {test: Δ% against the same lifter's `base_channels` row}} (None: base row or missing)."""
    deltas = {}
    for label, (lifter, channels) in labels.items():
        base = next((lab for lab, (lf, ch) in labels.items() if lf == lifter and ch == base_channels), None)
        for t in tests:
            r, b = results[label].get(t), results[base].get(t) if base else None
            deltas.setdefault(label, {})[t] = (delta_pct(b["mpjpe"], r["mpjpe"])
                                               if base and base != label and r and b else None)
    return deltas


def run(ctx, cfg: Config) -> StudyResult:
    if ctx.size == "medium":
        return medium.run(ctx, cfg)
    chosen = ctx.all_seeds
    res = StudyResult("cross_input", TITLE,
                      "MPJPE (mm, Protocol 1, root-relative) of each lifter with each input channel set. Training "
                      "cues are SIMULATED from H36M mocap (S1 S5 S6 S7; best epoch on S8). Δ% = change against the "
                      "same lifter's xy row (negative = lower error = better). " + seeds.note(ctx) + " " + size_note(cfg))
    runs = per_seed(ctx, lambda c: measure(c, cfg))
    first = runs[chosen[0]]
    labels, real = first["labels"], first["real"]
    columns = columns_of(cfg, real.ok)
    deltas = {s: deltas_vs(r["results"], labels, columns) for s, r in runs.items()}
    mp = collect({s: {lab: {t: m["mpjpe"] for t, m in r["results"][lab].items()} for lab in labels}
                  for s, r in runs.items()})
    dsp = collect(deltas)
    rows = []
    for label, (lifter, ch) in labels.items():
        row = [lifter, ch]
        for t in columns:
            d = dsp[label].get(t)
            row += [fmt_spread(mp[label][t]) if t in mp[label] else "–",
                    "" if d is None or d.n == 0 else fmt_delta_spread(d)]
        rows.append(row)
    headers = ["Lifter", "Input"]
    for t in columns:
        headers += [t + (" (SYNTHETIC, simulator cameras)" if t == caches.OOD_VIEWS else ""), "Δ%"]
    res.add("MPJPE (mm) and Δ% vs xy" + (f", mean ± std over seeds {', '.join(map(str, chosen))}" if len(chosen) > 1
                                         else ""), md_table(headers, rows, numeric_from=2))
    real_cols = [t for t in columns if t not in (caches.ID, caches.ID_SH, caches.OOD_VIEWS)]
    res.add("Mean Δ% over lifters, ours beside the paper",
            md_table(["Input", "ID Δ% (ours)", "ID Δ% (paper)", "OOD Δ%, real cameras (ours)",
                      "OOD Δ%, synthetic views (ours)", "OOD Δ% (paper)"], summary_rows(deltas, labels, real_cols)) +
            "\n\nOurs: mean over the lifters above (per seed, then mean ± std over seeds); OOD, real cameras = mean "
            "over " + ", ".join(real_cols) + " (no simulator camera in them); synthetic views = "
            f"{caches.OOD_VIEWS}, kept apart because the simulator made those cameras. Paper: mean over 4 datasets "
            "and 4 lifters with real detections and Depth Anything depth.\n\n"
            + sources_note(["id_delta_pct", "ood_delta_pct"]))
    res.add("Reading", interpretation(dsp, labels, columns, real_cols))
    res.add("All metrics" + (f" (seed {chosen[0]})" if len(chosen) > 1 else ""),
            md_table(["Lifter + input", "Test set", "Frames", "MPJPE", "P-MPJPE", "PCK@150", "AUC"],
                     [[lab, t, r["frames"], r["mpjpe"], r["p_mpjpe"], r["pck"], r["auc"]]
                      for lab in labels for t in columns for r in [first["results"][lab].get(t)] if r],
                     numeric_from=2))
    res.add("Test sets", test_sets_note(cfg, columns, real))
    if not real.ok:
        res.complete = False
    res.add("Training", schedule_note(ctx, cfg.schedule) + (
        " The held-out lifters (three cameras and no sitting; S1 only) train on the same schedule, xy and xycd only "
        "(xyc left out to fit 2 CPU cores): their xyc cells read –." if cfg.held_out else ""))
    res.data = {"seeds": list(chosen), "columns": columns, "real_camera_columns": real_cols,
                "mpjpe": to_json(mp), "delta_pct": to_json(dsp),
                "per_seed": {str(s): {"results": r["results"], "delta_pct": deltas[s], "checkpoints": r["checkpoints"]}
                             for s, r in runs.items()},
                "real_frames": real.as_dict()}
    return res


def test_sets_note(cfg: Config, columns: list[str], real) -> str:
    notes = {**caches.TEST_SET_NOTES, **HELD_OUT_NOTES}
    for t in cfg.transforms:
        notes[sequence_length.TRANSFORM_LABELS[t]] = (
            "the S9/S11 test sequences (simulated cues, real cameras) played " + sequence_length.TRANSFORM_LABELS[t]
            + " by the lifters trained on the original order; single-frame lifters are not evaluated here (–): "
              "they see each pose alone, so order and speed cannot change their output")
    lines = [f"- **{t}**: {notes[t]}" for t in columns]
    if not real.ok:
        lines.append(f"- **{caches.OOD_3DHP}**: not run — {real.reason}")
    if tuple(cfg.test_subjects) != TEST_SUBJECTS:
        lines.append(f"- Every H36M test column here is restricted to {' '.join(cfg.test_subjects)} (of the standard "
                     f"{' '.join(TEST_SUBJECTS)}), to fit this run's CPU time; the labels keep the standard names.")
    if cfg.held_out:
        lines.append("- Held-out choices (camera, action groups, subject) were fixed before any of these columns was "
                     "computed, on what the data set is (see `lifters/studies/heldout.py`), not on any result.")
    return "\n".join(lines)


def size_note(cfg: Config) -> str:
    """Which lifters this size trains, and where the paper's other lifters are."""
    names = {lf.model for lf in cfg.lifters}
    missing = [n for n in ("poseformer", "motionbert") if n not in names]
    if not missing:
        return ""
    return (f"This size leaves out {' and '.join(missing)}: training them to a useful point does not fit the "
            "hour on 2 CPU cores that `make experiments` allows; `--size full` trains all four lifters (GPU).")
