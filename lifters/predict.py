"""The one prediction path: a lifter over every frame of some shards, shared by evaluate and lift.

Every frame is predicted once under the test protocol of `WindowSpec.for_model` (each frame the
centre of one window, or seq2seq chunks whose overlaps are averaged); windows at a sequence's
ends repeat its first/last frame, so temporal lifters see the neighbouring frames wherever they
exist. Predictions are root-relative millimetres in the camera frame, the root re-zeroed
(Protocol 1 as in VideoPose3D). Targets come along when the shards have ground truth.

Before predicting, `check_depth_kinds` refuses shards whose depth family is not the one the
lifter learnt (the d channel would mean something else), and `check_skeleton` shards of another
joint order.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from auglift.cache import depth_family
from auglift.core.skeleton import flip_pairs

from .data import WindowDataset, WindowSpec
from .shards import ShardInfo, depth_families


class DepthKindMismatch(ValueError):
    """The shards' depth is not the family the model was trained on (e.g. metric vs landmark z)."""


def action_group(action: str) -> str:
    """'Walking 1' / 'Walking_1' / 'WalkDog' -> 'Walking' / 'Walking' / 'WalkDog'."""
    return re.sub(r"[\s_-]*\d+$", "", action.strip()) or action


@dataclass
class Predictions:
    shards: list[ShardInfo]
    pred: list[np.ndarray]          # per shard (n, K, 3) mm, root-relative
    gt: list[np.ndarray | None]     # per shard (n, K, 3) mm, root-relative; None without targets

    def stacked(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pred (N, K, 3), gt (N, K, 3), action label per frame (N,))."""
        if any(g is None for g in self.gt):
            raise ValueError("these predictions were made without ground truth")
        groups = np.concatenate([np.full(len(p), action_group(i.action), object)
                                 for i, p in zip(self.shards, self.pred)])
        return np.concatenate(self.pred), np.concatenate(self.gt), groups


def trained_depth_family(ckpt: dict) -> str | None:
    """The depth family a checkpoint's d channel learnt (None when it has no d channel).

    Checkpoints written before the codec recorded it carry their training shards' kinds.
    """
    codec = ckpt["codec"]["config"]
    if "d" not in codec["channels"]:
        return None
    if codec.get("depth_kind"):
        return str(codec["depth_kind"])
    families = sorted({depth_family(k) for k in ckpt["train_shards"]["depth_kinds"]})
    return families[0] if len(families) == 1 else "/".join(families)


def check_depth_kinds(ckpt: dict, shards: Sequence[ShardInfo], allow: bool, where: str = "") -> None:
    """Refuse shards whose depth family the model never learnt, when its input uses depth."""
    trained = trained_depth_family(ckpt)
    if trained is None or allow:
        return
    bad = [i for i in shards if depth_families([i]) != [trained]]
    if bad:
        kinds = sorted({i.depth_kind for i in bad})
        raise DepthKindMismatch(
            f"{where}the lifter learnt {trained!r} depth but {len(bad)} shard(s) hold {kinds} depth "
            f"(e.g. {bad[0].path}); the depth channel would mean something else. Use a lifter trained on "
            f"that kind, or pass --allow-depth-kind-mismatch to go on anyway.")


def check_skeleton(ckpt: dict, shards: Sequence[ShardInfo], where: str = "") -> None:
    """Refuse test shards of another skeleton (joint order) or keypoint count than the training's."""
    k = int(ckpt["model"]["num_joints"])
    trained = set(ckpt["train_shards"].get("skeletons") or [])  # absent in older checkpoints
    for i in shards:
        if i.num_keypoints != k or (trained and i.skeleton not in trained):
            raise ValueError(f"{where}{i.path}: skeleton {i.skeleton!r} with {i.num_keypoints} keypoints, but the "
                             f"checkpoint was trained on {sorted(trained) or '?'} with {k}; its joints would be "
                             f"read in the wrong order")


@torch.no_grad()
def predict(model, codec, shards: Sequence[ShardInfo], batch_size: int = 4096, device: str = "cpu",
            flip_test: bool = False, progress: bool = False, with_target: bool = True) -> Predictions:
    """Root-relative predictions (and, `with_target`, targets) in mm for every frame of `shards`."""
    model = model.to(device).eval()
    window = WindowSpec.for_model(model, train=False)
    root = codec.config.root
    total = [np.zeros((i.n_frames, i.num_keypoints, 3)) for i in shards]
    count = [np.zeros(i.n_frames) for i in shards]
    gt: list[np.ndarray | None] = [None] * len(shards)
    for p in ([0.0, 1.0] if flip_test else [0.0]):
        ds = WindowDataset(shards, codec, window, flip=p, batch_size=batch_size, with_target=with_target)
        it = ds
        if progress:
            it = tqdm(ds, total=-(-ds.num_windows() // batch_size), desc="predict" + (" (flipped)" if p else ""),
                      leave=False)
        for batch in it:
            out = _unflip(model(batch["inputs"].to(device)).float().cpu().numpy() * 1000.0, p)
            out = out - out[..., root : root + 1, :]
            tgt = _unflip(batch["target"].numpy() * 1000.0, p) if with_target else None
            shard, rows, valid = batch["shard"].numpy(), batch["rows"].numpy(), batch["valid"].numpy()
            for s in np.unique(shard):
                sel = shard == s
                r, v = rows[sel][valid[sel]], valid[sel]
                np.add.at(total[s], r, out[sel][v])
                np.add.at(count[s], r, 1.0)
                if tgt is not None:
                    if gt[s] is None:
                        gt[s] = np.full((shards[s].n_frames, shards[s].num_keypoints, 3), np.nan, np.float32)
                    gt[s][r] = tgt[sel][v]
    for s, c in enumerate(count):
        if (c == 0).any():
            raise RuntimeError(f"{shards[s].path}: {int((c == 0).sum())} frames were never predicted")
    return Predictions(list(shards), [(t / c[:, None, None]).astype(np.float32) for t, c in zip(total, count)], gt)


def _unflip(poses: np.ndarray, flipped: float) -> np.ndarray:
    """Mirror predictions of mirrored inputs back: x -> -x and left/right joints swapped."""
    if not flipped:
        return poses
    poses = poses[..., flip_pairs(), :]
    poses[..., 0] = -poses[..., 0]
    return poses
