"""The AugLift paper's numbers that our studies are compared with ("anchors").

Only numbers we could read in the paper's public text are recorded, each with where it comes
from; every other cell of a paper table is "paper: n/a" (never filled in from memory or guessed).
The per-table numbers of Tables 2, 4, 5, 8-11 were not readable in the text available to us, so
only the headline figures of the abstracts are anchors for them; Section 4.4's per-frame GPU
latencies are anchors too (quoted from the paper in issue 15).

Signs: the paper reports improvements as positive percentages of MPJPE; our tables report
Δ% = 100 (ours - baseline) / baseline, where lower error is better, so a paper "10.1 %
improvement" appears as -10.1 %.
"""
from __future__ import annotations

from dataclasses import dataclass

ARXIV = "arXiv:2508.07112 (AugLift: Boosting Generalization in Lifting-based 3D Human Pose Estimation), abstract"
OPENREVIEW = ("OpenReview 4DTaeFduG9 (AugLift: Improving Generalization of 3D Pose Lifting via Depth Cues, "
              "2025), abstract")
ARXIV_LATENCY = "arXiv:2508.07112, Section 4.4 (per-frame latency on a GPU)"
NA = "paper: n/a"


@dataclass(frozen=True)
class Anchor:
    value: float | None      # None: the paper's number is not available to us
    unit: str
    what: str
    source: str = ""

    def cell(self) -> str:
        if self.value is None:
            return NA
        return f"{self.value:+.1f}{self.unit}" if self.unit == "%" else f"{self.value:g} {self.unit}"


ANCHORS: dict[str, Anchor] = {
    # xycd vs xy, MPJPE, mean over 4 datasets x 4 lifters, detected 2D (Table 2's summary)
    "ood_delta_pct": Anchor(-10.1, "%", "cross-dataset MPJPE change, xycd vs xy (mean of 4 datasets, 4 lifters)", ARXIV),
    "id_delta_pct": Anchor(-4.0, "%", "in-distribution MPJPE change, xycd vs xy (mean of 4 lifters)", ARXIV),
    # the earlier (OpenReview) version: single-frame AugLift vs single-frame xy
    "single_frame_ood_delta_pct": Anchor(-21.0, "%", "cross-dataset MPJPE change, single-frame AugLift vs xy",
                                         OPENREVIEW),
    "single_frame_id_delta_pct": Anchor(-8.0, "%", "within-dataset MPJPE change, single-frame AugLift vs xy",
                                        OPENREVIEW),
    "single_frame_gap_delta_pct": Anchor(-27.0, "%", "generalisation gap (OOD - ID MPJPE) change, single frame",
                                         OPENREVIEW),
    # Section 4.4: the paper's stages, per frame on a GPU (its detector, depth model and lifter)
    "latency_detector_ms": Anchor(44.0, "ms", "2D detector HRNet-W48, per frame, GPU", ARXIV_LATENCY),
    "latency_depth_ms": Anchor(13.3, "ms", "depth model Depth Anything v2 Small, per frame, GPU", ARXIV_LATENCY),
    "latency_lifter_ms": Anchor(16.7, "ms", "lifter MotionBERT, per frame, GPU", ARXIV_LATENCY),
}


def anchor(key: str | None) -> Anchor:
    """The anchor named `key`, or an n/a anchor for anything the paper text did not give us."""
    if key is None or key not in ANCHORS:
        return Anchor(None, "", key or "")
    return ANCHORS[key]


def cell(key: str | None) -> str:
    return anchor(key).cell()


def sources_note(keys) -> str:
    """A markdown list naming the source of every anchor used on a page."""
    used = [ANCHORS[k] for k in dict.fromkeys(keys) if k in ANCHORS]
    if not used:
        return "No number of the paper's tables for this study was available to us: every paper cell reads 'paper: n/a'."
    lines = ["Paper numbers used on this page (others read 'paper: n/a': not available to us, not guessed):", ""]
    lines += [f"- {a.cell()}: {a.what} — {a.source}" for a in used]
    return "\n".join(lines)
