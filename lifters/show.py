"""Figures of predicted vs ground-truth skeletons for chosen frames of one shard."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from auglift.cache import open_shard

from .checkpoint import build_from_checkpoint, load_checkpoint
from .data import WindowSpec, encode_frames, needed_arrays, ordinal_name, root_relative_metres
from .shards import ShardInfo
from .metrics import mpjpe
from .plot import plot_frames

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def find_images(directory: str | Path, frame_indices: Sequence[int]) -> list[np.ndarray | None]:
    """Images whose file name's last number equals the frame index (e.g. 000123.jpg, img_123.png)."""
    import matplotlib.image as mpimg

    by_number = {}
    for p in sorted(Path(directory).iterdir()):
        numbers = re.findall(r"\d+", p.stem)
        if p.suffix.lower() in IMAGE_SUFFIXES and numbers:
            by_number.setdefault(int(numbers[-1]), p)
    return [mpimg.imread(by_number[f]) if f in by_number else None for f in frame_indices]


@torch.no_grad()
def predict_rows(model, codec, info: ShardInfo, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, GT), root-relative mm `(F, K, 3)`, for shard rows `rows` (test windows)."""
    n = info.n_frames
    bad = [r for r in rows if not 0 <= r < n]
    if bad:
        raise IndexError(f"{info.path}: rows {bad} outside 0..{n - 1}")
    spec = WindowSpec.for_model(model, train=False)
    names = needed_arrays(codec, True, info.arrays)
    preds, gts = [], []
    with open_shard(info.path) as shard:
        for r in rows:
            # "all" models: the chunk that holds r, placed like the test protocol's chunks
            anchor = r if spec.predicts == "center" else min(max(r - spec.length // 2, 0), max(n - spec.length, 0))
            rows_in, rows_out, _ = spec.rows(np.array([anchor]), n)
            lo, hi = int(rows_in.min()), int(rows_in.max()) + 1
            raw = {k: shard.read(k, lo, hi) for k in names}
            if ordinal_name(codec) in raw:
                raw["ordinal"] = raw.pop(ordinal_name(codec))
            x = encode_frames(codec, raw, info.image_size)[rows_in[0] - lo]
            out = model(torch.from_numpy(x)[None])[0].numpy() * 1000.0
            pos = int(np.flatnonzero(rows_out[0] == r)[0])
            pred = out[pos]
            preds.append(pred - pred[codec.config.root])
            gts.append(root_relative_metres(raw["joints_3d_cam"][r - lo], codec.config.root) * 1000.0)
    return np.stack(preds), np.stack(gts)


def show(checkpoint: str | Path, shard: str | Path, rows: Sequence[int], out: str | Path,
         images: str | Path | None = None) -> Path:
    """Render rows of `shard`: the 2D input (over the image when `images` has it) and 3D pred vs GT."""

    if not rows:
        raise ValueError("no frames given")
    model, codec = build_from_checkpoint(load_checkpoint(checkpoint))
    info = ShardInfo.read(shard)
    if "joints_3d_cam" not in info.arrays:
        raise ValueError(f"{info.path}: no ground truth (joints_3d_cam) to compare with")
    pred, gt = predict_rows(model, codec, info, rows)
    with open_shard(info.path) as s:
        kp = np.stack([s.read("keypoints_2d", r, r + 1)[0] for r in rows])
        frame_index = [int(s.read("frame_index", r, r + 1)[0]) for r in rows]
    imgs = find_images(images, frame_index) if images is not None else None
    titles = [f"{info.key} frame {f}: MPJPE {mpjpe(p, g):.0f} mm" for f, p, g in zip(frame_index, pred, gt)]
    return plot_frames(pred, gt, images=imgs, keypoints_2d=kp, path=out, titles=titles)
