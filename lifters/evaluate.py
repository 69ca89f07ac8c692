"""Evaluate lifter checkpoints on cached test shards; write JSON and a paper-style table.

Every frame of every test shard is predicted once (the test protocol of `WindowSpec.for_model`:
each frame the centre of one window, or seq2seq chunks; a frame predicted by two overlapping
chunks gets their mean). Predictions and targets are root-relative, in millimetres; the
prediction's root is re-zeroed (Protocol 1 as in VideoPose3D). Metrics come from
`lifters.metrics`: MPJPE, P-MPJPE, N-MPJPE, PCK@150 mm, AUC (0-150 mm), over all frames, per
joint and per action (H36M's sub-action numbers merged, e.g. "Walking 1" -> "Walking").

Predictions are kept per frame (K x 3 floats) because P-MPJPE and the per-action split need
them; the cues themselves are streamed.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from auglift.core.config_io import writing
from auglift.core.skeleton import H36M17_JOINTS
from auglift.lifters.provenance import git_revision

from .checkpoint import build_from_checkpoint, describe, load_checkpoint
from .shards import resolve_shards
from .metrics import evaluate_all
from .predict import DepthKindMismatch, Predictions, action_group, check_depth_kinds, check_skeleton, predict

__all__ = ["DepthKindMismatch", "Predictions", "action_group", "check_skeleton", "evaluate", "markdown",
           "parse_joints", "predict", "score"]


def parse_joints(spec: str | Sequence | None, num_joints: int = 17) -> list[int] | None:
    """'all' / None -> None; '0,1,2' or 'pelvis,r_hip' -> indices."""
    if spec is None or spec == "all":
        return None
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for item in items:
        item = str(item).strip()
        if item.isdigit():
            out.append(int(item))
        elif item in H36M17_JOINTS:
            out.append(H36M17_JOINTS.index(item))
        else:
            raise ValueError(f"unknown joint {item!r}: give indices 0..{num_joints - 1} or names {H36M17_JOINTS}")
    if not out or max(out) >= num_joints:
        raise ValueError(f"joint subset {spec!r} is empty or outside 0..{num_joints - 1}")
    return sorted(set(out))


def score(preds: Predictions, joints: list[int] | None = None) -> dict[str, Any]:
    """Metrics over all frames, per joint and per action; joints without GT (NaN) are left out."""
    pred, gt, groups = preds.stacked()
    k = pred.shape[1]
    joints = list(range(k)) if joints is None else list(joints)
    with_gt = [j for j in joints if np.isfinite(gt[:, j]).all()]
    if not with_gt:
        raise ValueError("no joint of the subset has ground truth in every test frame")
    result = evaluate_all(pred, gt, joints=with_gt, groups=groups)
    result["frames"] = int(len(pred))
    result["shards"] = len(preds.shards)
    result["joint_names"] = [H36M17_JOINTS[j] if k == 17 else str(j) for j in with_gt]
    result["dropped_joints_without_gt"] = [j for j in joints if j not in with_gt]
    return result


def check_out_stem(out: str | Path) -> None:
    """Fail now, not after predicting, when `<out>.json` / `<out>.md` cannot be written."""
    out = Path(out)
    for p in (out.with_suffix(".json"), out.with_suffix(".md")):
        if p.is_dir():
            raise ValueError(f"{p}: is a directory; --out is a file stem (OUT.json and OUT.md are written)")
    if out.parent.exists() and not out.parent.is_dir():
        raise ValueError(f"{out.parent}: is a file, not a directory for --out {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    probe = out.parent / f".{out.name}.{os.getpid()}.tmp"
    probe.write_text("")  # raises (naming the file) on a read-only or full directory
    probe.unlink()


def evaluate(checkpoints: Sequence[str | Path], tests: Sequence[Sequence[str]], names: Sequence[str] | None = None,
             out: str | Path | None = None, subjects: Sequence[str] | None = None, joints=None,
             labels: Sequence[str] | None = None, flip_test: bool = False, allow_depth_kind_mismatch: bool = False,
             batch_size: int = 4096, device: str = "cpu", progress: bool = True, command: str | None = None,
             notes: Sequence[str] = ()) -> dict:
    """Evaluate every checkpoint on every test set; write `<out>.json` and `<out>.md` if `out`.

    `notes`: paragraphs printed under the command (e.g. the paper's figure for the same setting).
    """
    if not checkpoints or not tests:
        raise ValueError("need at least one checkpoint and one test set")
    if out is not None:
        check_out_stem(out)
    names = list(names) if names else [f"test{i + 1}" if len(tests) > 1 else "test" for i in range(len(tests))]
    if len(names) != len(tests):
        raise ValueError(f"{len(names)} --name for {len(tests)} --test sets; give one name per test set")
    test_shards = {n: resolve_shards(t, subjects=subjects) for n, t in zip(names, tests)}
    ckpts = [load_checkpoint(c) for c in checkpoints]
    labels = _unique_labels(labels, ckpts)
    for path, ckpt in zip(checkpoints, ckpts):  # refuse before spending any time predicting
        for n, shards in test_shards.items():
            check_skeleton(ckpt, shards, where=f"{path} on test set {n!r}: ")
            check_depth_kinds(ckpt, shards, allow_depth_kind_mismatch, where=f"{path} on test set {n!r}: ")

    report: dict[str, Any] = {
        "command": command,
        "git": git_revision(exclude=[Path(out).parent] if out is not None else []),
        "notes": list(notes),
        "protocol": "root-relative (pelvis) mm; MPJPE = Protocol 1, P-MPJPE = Protocol 2",
        "flip_test": flip_test, "subjects": list(subjects) if subjects else None,
        "test_sets": {n: _test_set_summary(t, test_shards[n]) for n, t in zip(names, tests)},
        "checkpoints": [], "results": {},
    }
    for path, ckpt, label in zip(checkpoints, ckpts, labels):
        model, codec = build_from_checkpoint(ckpt, device)
        jsel = parse_joints(joints, ckpt["model"]["num_joints"])
        report["checkpoints"].append({"label": label, "path": str(path), "model": ckpt["model"]["name"],
                                      "preset": ckpt["model"]["preset"], "channels": codec.config.channels,
                                      "epochs_done": ckpt.get("epochs_done"),
                                      "train_shards": ckpt["train_shards"]})
        report["results"][label] = {}
        for n, shards in test_shards.items():
            t0 = time.time()
            preds = predict(model, codec, shards, batch_size, device, flip_test, progress)
            res = score(preds, jsel)
            res["seconds"] = round(time.time() - t0, 2)
            report["results"][label][n] = res
    if out is not None:
        _write_json_and_markdown(report, out)
    return report


def _unique_labels(labels: Sequence[str] | None, ckpts: Sequence[dict]) -> list[str]:
    """One label per checkpoint (its description by default); repeated labels get ` #i`."""
    labels = list(labels) if labels else [describe(c) for c in ckpts]
    if len(labels) != len(ckpts):
        raise ValueError(f"{len(labels)} labels for {len(ckpts)} checkpoints")
    return [lab if labels.count(lab) == 1 else f"{lab} #{i + 1}" for i, lab in enumerate(labels)]


def _test_set_summary(specs: Sequence[str], shards: Sequence) -> dict:
    return {"specs": [str(s) for s in specs], "shards": len(shards),
            "frames": int(sum(i.n_frames for i in shards)),
            "depth_kinds": sorted({i.depth_kind for i in shards}),
            "config_hashes": sorted({i.config_hash for i in shards})}


def _write_json_and_markdown(report: dict, out: str | Path) -> None:
    """`<out>.json` and `<out>.md`, each written atomically."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for path, text in ((out.with_suffix(".json"), json.dumps(report, indent=1)),
                       (out.with_suffix(".md"), markdown(report))):
        with writing(path):
            path.write_text(text)


def _fmt(x: float, digits: int = 1) -> str:
    return f"{x:.{digits}f}"


def markdown(report: dict) -> str:
    """Tables laid out like the AugLift paper's Tables 1/2: rows = variants, columns = test sets."""
    labels = list(report["results"])
    tests = list(report["test_sets"])
    lines = ["# Lifter evaluation", ""]
    if report.get("command"):
        lines += ["```", report["command"], "```", ""]
    git = report.get("git") or {}
    if git.get("commit"):
        lines += [f"Git revision `{git['commit'][:12]}`" + (" with uncommitted changes." if git.get("dirty") else "."), ""]
    for note in report.get("notes") or ():
        lines += [note, ""]
    lines += ["Root-relative errors in mm (MPJPE = Protocol 1, P-MPJPE = Protocol 2 after Procrustes); "
              "PCK@150 mm and AUC (0-150 mm) in %." + (" Test-time flip averaging on." if report.get("flip_test") else ""),
              "", "Test sets: " + "; ".join(f"**{n}** = {s['shards']} shards, {s['frames']} frames, depth "
                                             f"{'/'.join(s['depth_kinds'])}" for n, s in report["test_sets"].items()), ""]
    lines += ["## Checkpoints", "", "| Model (channels) | Checkpoint | Epochs | Trained on | Frames | Depth kind | "
              "Cache config hashes |", "|---|---|---:|---|---:|---|---|"]
    for c in report["checkpoints"]:
        t = c["train_shards"]
        lines.append(f"| {c['label']} | `{c['path']}` | {c.get('epochs_done')} | {'/'.join(t.get('datasets', []))} "
                     f"{','.join(t.get('subjects', []))} ({t.get('count')} shards) | {t.get('frames')} | "
                     f"{'/'.join(t.get('depth_kinds', []))} | {', '.join(t.get('config_hashes', []))} |")
    lines += ["", "## MPJPE (mm), lower is better", "", "| Model (channels) | " + " | ".join(tests) + " |",
              "|---|" + "---:|" * len(tests)]
    for lab in labels:
        lines.append(f"| {lab} | " + " | ".join(_fmt(report["results"][lab][t]["mpjpe"]) for t in tests) + " |")
    base = labels[0]
    for lab in labels[1:]:
        cells = []
        for t in tests:
            a, b = report["results"][base][t]["mpjpe"], report["results"][lab][t]["mpjpe"]
            cells.append(f"{100.0 * (b - a) / a:+.1f}%")
        lines.append(f"| Δ% ({lab} vs {base}) | " + " | ".join(cells) + " |")
    lines += ["", "## All metrics", "",
              "| Model (channels) | Test set | Frames | MPJPE | MPJPE (action mean) | P-MPJPE | N-MPJPE | PCK@150 | AUC |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for lab in labels:
        for t in tests:
            r = report["results"][lab][t]
            lines.append(f"| {lab} | {t} | {r['frames']} | {_fmt(r['mpjpe'])} | {_fmt(r['group_mean']['mpjpe'])} | "
                         f"{_fmt(r['p_mpjpe'])} | {_fmt(r['n_mpjpe'])} | {_fmt(r['pck'])} | {_fmt(r['auc'])} |")
    for t in tests:
        actions = sorted({a for lab in labels for a in report["results"][lab][t]["per_group"]})
        lines += ["", f"## MPJPE per action (mm), {t}", "", "| Action | " + " | ".join(labels) + " |",
                  "|---|" + "---:|" * len(labels)]
        for a in actions:
            cells = [_fmt(report["results"][lab][t]["per_group"][a]["mpjpe"])
                     if a in report["results"][lab][t]["per_group"] else "-" for lab in labels]
            lines.append(f"| {a} | " + " | ".join(cells) + " |")
        lines.append("| **mean over actions** | " + " | ".join(
            _fmt(report["results"][lab][t]["group_mean"]["mpjpe"]) for lab in labels) + " |")
    for t in tests:
        r0 = report["results"][labels[0]][t]
        lines += ["", f"## MPJPE per joint (mm), {t}", "", "| Joint | " + " | ".join(labels) + " |",
                  "|---|" + "---:|" * len(labels)]
        for i, name in enumerate(r0["joint_names"]):
            lines.append(f"| {name} | " + " | ".join(
                _fmt(report["results"][lab][t]["per_joint"]["mpjpe"][i]) for lab in labels) + " |")
    return "\n".join(lines) + "\n"
