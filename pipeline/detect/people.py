"""Who is who among several detected people: matching to ground truth, tracking, choosing a subject.

Pure functions on arrays, independent of any detector backend. A frame's candidates are
`boxes` (P, 4) xyxy pixels and `keypoints` (P, 17, 2) pixels (NaN where unknown).

- Ground-truth guidance (datasets): `match_to_guide` keeps the candidate whose keypoints lie
  closest to the actor's ground-truth 2D. The error is the median joint distance divided by
  the size of the actor's ground-truth box (max of its width and height), so it does not depend
  on how large the actor appears. A candidate matches when that error is at most
  `MATCH_MAX_ERROR` = 0.25 (a quarter of the actor's height: another person standing next to
  the actor is further away than that; the right person detected with a few bad joints is well
  inside it). No match: the frame gets NaN keypoints and confidence 0, never another person's.
- Tracking (own videos): `track_people` links each frame's people to the tracks of earlier
  frames by box IoU or keypoint distance, whichever scores higher (greedy, best pairs first,
  score >= `TRACK_MIN_SCORE`); a track unseen for up to `TRACK_MAX_GAP` frames can still be
  continued (short gaps bridged), later it is closed.
- The subject of a tracked video (`choose_track`): "longest" (the track present in most frames;
  ties to the larger mean box), "largest" (largest mean box area over its frames), or a track id.
- Report figures: `identity_switches` counts frames where the kept person's box jumps (IoU
  with the previous kept box < `SWITCH_MAX_IOU`), the sign of a change of body.
"""
from __future__ import annotations

import numpy as np

MATCH_MAX_ERROR = 0.25
TRACK_MIN_SCORE = 0.3
TRACK_MAX_GAP = 5
SWITCH_MAX_IOU = 0.3
SAME_PERSON_ERROR = 0.3     # two poses this close (median joint distance / size) are one body
SAME_PERSON_COVER = 0.8     # ... as are two boxes whose overlap covers this much of the smaller
SUBJECT_RULES = ("longest", "largest")
# Per-frame `person_selection` codes (shard array; names in the shard attribute people.selection_codes)
SELECTION_CODES = {"none": 0, "ground_truth_match": 1, "track": 2, "per_frame": 3}


def box_area(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) xyxy -> (...) area; NaN boxes give 0."""
    b = np.asarray(boxes, np.float64)
    area = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    return np.nan_to_num(area)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of `a` (N, 4) with every box of `b` (M, 4) -> (N, M); NaN boxes give 0."""
    a = np.asarray(a, np.float64).reshape(-1, 4)[:, None]
    b = np.asarray(b, np.float64).reshape(-1, 4)[None]
    lo, hi = np.maximum(a[..., :2], b[..., :2]), np.minimum(a[..., 2:], b[..., 2:])
    inter = np.nan_to_num(np.prod(np.clip(hi - lo, 0, None), axis=-1))
    union = box_area(a) + box_area(b) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def guide_box(keypoints: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """(..., K, 2) ground-truth keypoints -> (..., 4) their extent, widened by `margin` times its
    larger side on every edge; all NaN where no keypoint is finite."""
    kp = np.asarray(keypoints, np.float64)
    finite = np.isfinite(kp).all(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        lo = np.where(finite, kp, np.inf).min(axis=-2)
        hi = np.where(finite, kp, -np.inf).max(axis=-2)
    box = np.concatenate([lo, hi], axis=-1)
    box[~finite.any(axis=(-2, -1))] = np.nan
    pad = margin * np.max(box[..., 2:] - box[..., :2], axis=-1, keepdims=True)
    return box + np.concatenate([-pad, -pad, pad, pad], axis=-1)


def match_errors(candidates: np.ndarray, guide: np.ndarray) -> np.ndarray:
    """Median joint distance of each candidate (P, K, 2) to the guide (K, 2), over the joints
    finite in both, divided by the guide's box size -> (P,); inf where nothing is comparable."""
    cand = np.asarray(candidates, np.float64).reshape(-1, *np.shape(guide))
    g = np.asarray(guide, np.float64)
    box = guide_box(g)
    size = float(np.max(box[2:] - box[:2])) if np.isfinite(box).all() else np.nan
    d = np.linalg.norm(cand - g, axis=-1)
    out = np.full(len(cand), np.inf)
    if not size > 0:
        return out
    for i, row in enumerate(d):
        row = row[np.isfinite(row)]
        if len(row):
            out[i] = np.median(row) / size
    return out


def match_to_guide(candidates: np.ndarray, guide: np.ndarray,
                   max_error: float = MATCH_MAX_ERROR) -> tuple[int, float]:
    """(index of the candidate matching the actor, or -1; its error, NaN when there is none).

    The candidate with the lowest `match_errors` is kept if that error is <= `max_error`."""
    errors = match_errors(candidates, guide)
    if len(errors) == 0 or not np.isfinite(errors).any():
        return -1, float("nan")
    best = int(np.argmin(errors))
    return (best if errors[best] <= max_error else -1), float(errors[best])


def distinct_people(keypoints: np.ndarray, confidence: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Indices (ascending) of the poses to keep when a detector found one body twice (e.g. from two
    overlapping crops): most confident first, a pose is dropped when its median joint distance
    to a kept one is below SAME_PERSON_ERROR of that one's size, or when the overlap of their
    boxes covers more than SAME_PERSON_COVER of the smaller box."""
    kp, b = np.asarray(keypoints, np.float64), np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.nanmean(np.asarray(confidence, np.float64), axis=-1), kind="stable")
    keep: list[int] = []
    for i in order.tolist():
        same = False
        for j in keep:
            lo, hi = np.maximum(b[i, :2], b[j, :2]), np.minimum(b[i, 2:], b[j, 2:])
            inter = float(np.nan_to_num(np.prod(np.clip(hi - lo, 0, None))))
            smaller = min(box_area(b[i]), box_area(b[j]))
            if match_errors(kp[i][None], kp[j])[0] < SAME_PERSON_ERROR or \
                    (smaller > 0 and inter / smaller > SAME_PERSON_COVER):
                same = True
                break
        if not same:
            keep.append(i)
    return np.array(sorted(keep), np.int64)


def track_people(boxes: list[np.ndarray], keypoints: list[np.ndarray] | None = None,
                 min_score: float = TRACK_MIN_SCORE, max_gap: int = TRACK_MAX_GAP) -> list[np.ndarray]:
    """Track ids for every frame's people: boxes (P_t, 4) [and keypoints (P_t, K, 2)] per frame ->
    list of (P_t,) int64 ids (0, 1, ... in order of first appearance).

    A person and an open track are scored by the IoU of the person's box with the track's last
    box or, when keypoints are given and it is higher, by 1 - 2 x `match_errors` of the person's
    keypoints to the track's last keypoints (1 for the same pose, 0 at half the body's size apart:
    this links a person who moved further than their box overlaps, e.g. at a low frame rate).
    Pairs are joined greedily, best first, never below `min_score`; a track not seen for more
    than `max_gap` frames is closed; an unmatched person starts a new track."""
    last: dict[int, tuple[np.ndarray, np.ndarray | None, int]] = {}   # id -> box, keypoints, frame
    out, next_id = [], 0
    for t, frame_boxes in enumerate(boxes):
        frame_boxes = np.asarray(frame_boxes, np.float64).reshape(-1, 4)
        frame_kp = None if keypoints is None else np.asarray(keypoints[t], np.float64)
        ids = np.full(len(frame_boxes), -1, np.int64)
        open_ids = [k for k, (_, _, seen) in last.items() if t - seen <= max_gap + 1]
        if open_ids and len(frame_boxes):
            score = _link_scores(frame_boxes, frame_kp, [last[k] for k in open_ids])
            for flat in np.argsort(-score, axis=None, kind="stable"):
                i, j = np.unravel_index(flat, score.shape)
                if score[i, j] < min_score:
                    break
                if ids[i] < 0 and open_ids[j] not in ids:
                    ids[i] = open_ids[j]
        for i in np.flatnonzero(ids < 0):
            ids[i], next_id = next_id, next_id + 1
        for i, k in enumerate(ids):
            last[int(k)] = (frame_boxes[i], None if frame_kp is None else frame_kp[i], t)
        out.append(ids)
    return out


def _link_scores(boxes: np.ndarray, keypoints: np.ndarray | None, tracks: list) -> np.ndarray:
    """(P, T) scores of people vs open tracks (see track_people)."""
    score = box_iou(boxes, np.stack([box for box, _, _ in tracks]))
    if keypoints is not None:
        for j, (_, kp, _) in enumerate(tracks):
            if kp is not None:
                score[:, j] = np.maximum(score[:, j], 1 - 2 * match_errors(keypoints, kp))
    return score


def track_table(track_ids: list[np.ndarray]) -> dict[int, list[tuple[int, int]]]:
    """{track id: [(frame, index of the person in that frame), ...]} in frame order."""
    table: dict[int, list[tuple[int, int]]] = {}
    for t, ids in enumerate(track_ids):
        for i, k in enumerate(np.asarray(ids).tolist()):
            table.setdefault(int(k), []).append((t, i))
    return table


def choose_track(track_ids: list[np.ndarray], boxes: list[np.ndarray], rule: str | int = "longest") -> int | None:
    """The subject's track id by `rule` ("longest", "largest" or a track id); None if no track."""
    table = track_table(track_ids)
    if not table:
        return None
    if not isinstance(rule, str) or rule.lstrip("-").isdigit():
        k = int(rule)
        if k not in table:
            raise ValueError(f"subject track {k} does not exist; tracks: {sorted(table)}")
        return k
    if rule not in SUBJECT_RULES:
        raise ValueError(f"unknown subject rule {rule!r}; choose from {SUBJECT_RULES} or a track id")
    mean_area = {k: float(np.mean([box_area(boxes[t][i]) for t, i in v])) for k, v in table.items()}
    if rule == "largest":
        return max(table, key=lambda k: (mean_area[k], -k))
    return max(table, key=lambda k: (len(table[k]), mean_area[k], -k))


def track_rows(track_ids: list[np.ndarray], track: int) -> np.ndarray:
    """(T,) index of `track`'s person in each frame, -1 where the track is absent."""
    rows = np.full(len(track_ids), -1, np.int64)
    for t, ids in enumerate(track_ids):
        hit = np.flatnonzero(np.asarray(ids) == track)
        if len(hit):
            rows[t] = hit[0]
    return rows


def identity_switches(boxes: np.ndarray, max_iou: float = SWITCH_MAX_IOU) -> int:
    """Jumps of the kept person's box (T, 4) between consecutive frames that both have one:
    IoU below `max_iou` counts as a switch of body. All-NaN rows (no subject) are skipped."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    kept = b[np.isfinite(b).all(axis=1)]
    if len(kept) < 2:
        return 0
    ious = np.array([box_iou(kept[i], kept[i + 1])[0, 0] for i in range(len(kept) - 1)])
    return int((ious < max_iou).sum())


def people_summary(counts: np.ndarray, subject_boxes: np.ndarray) -> dict:
    """Report fields of one sequence: people found per frame (min / mean / max), frames without the
    subject, identity switches of the subject."""
    counts = np.asarray(counts, np.int64)
    found = np.isfinite(np.asarray(subject_boxes, np.float64)).all(axis=-1)
    stats = (int(counts.min()), round(float(counts.mean()), 3), int(counts.max())) if len(counts) else (0, 0.0, 0)
    return {"people_per_frame": dict(zip(("min", "mean", "max"), stats)),
            "frames_without_subject": int((~found).sum()),
            "identity_switches": identity_switches(subject_boxes)}
