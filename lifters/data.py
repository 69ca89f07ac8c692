"""Streaming windows of cached cues for the lifters, holding at most a bounded memo in memory.

A `WindowDataset` walks a list of shards and yields, per window of frames,

    inputs (L, K, C) float32   the cue codec's encoding of L frames (L = the receptive field)
    target (T_out, K, 3)       root-relative ground-truth 3D in metres (joints_3d_cam mm / 1000,
                               pelvis subtracted); T_out = 1 for "center" models, L for "all"
    shard, rows, frame_index, valid   where the target frames come from (for evaluation)

Protocols (the papers'): training takes windows every `stride` frames; testing makes every
frame the centre of one window ("center" models) or cuts each sequence into L-frame chunks, the
last one shifted back to end at the last frame ("all", MotionBERT-style seq2seq). Frames
outside a sequence repeat its first/last frame (edge padding); in "all" chunks of a sequence
shorter than L the padded targets carry valid=False.

Shards are read in blocks of `chunk_frames` rows (only the arrays the codec needs), encoded
once per block, and cut into windows by index. For shuffling, the shard order is permuted per
epoch from the seed, `open_shards` shards are interleaved at random, and windows pass through a
bounded shuffle buffer (at most `shuffle_buffer` windows and `max_buffer_mb` MiB). Shards are
split across DataLoader workers and distributed ranks: after the epoch's permutation, split
`rank * num_workers + worker` takes every (world_size * num_workers)-th shard.

Shards that fit `memo_mb` are read whole once per process and kept (`shard_memo`: checked bytes
only, re-read when the shard is replaced), so later epochs and trainings read no file; the
windows, and so the trained weights, are the same with any budget.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from auglift.cache import ordinal_array_name
from auglift.cache.reader import edge_rows
from auglift.core.codec import CueCodec, ordinal_depth
from auglift.core.skeleton import flip_pairs

from .shard_memo import DEFAULT_BUDGET_MB, MEMO
from .shards import ShardInfo

PREDICTS = ("center", "all")


# ------------------------------------------------------------------------------ windows
@dataclass(frozen=True)
class WindowSpec:
    length: int = 1            # input frames per window (the model's receptive field)
    predicts: str = "center"   # "center": target = centre frame; "all": target = every frame
    stride: int = 1            # between window anchors (centres or starts)
    cover_all: bool = False    # "all" only: add a last window ending at the last frame

    def __post_init__(self):
        if self.length < 1 or self.stride < 1:
            raise ValueError(f"window length and stride must be >= 1, got {self.length}, {self.stride}")
        if self.predicts not in PREDICTS:
            raise ValueError(f"predicts must be one of {PREDICTS}, got {self.predicts!r}")

    @classmethod
    def for_model(cls, model, train: bool, stride: int = 1) -> "WindowSpec":
        """Training: windows every `stride` frames. Testing: every frame as a target once."""
        length, predicts = int(model.receptive_field), str(model.predicts)
        if train:
            return cls(length, predicts, stride)
        return cls(length, predicts, length if predicts == "all" else 1, cover_all=True)

    @property
    def out_length(self) -> int:
        return 1 if self.predicts == "center" else self.length

    def anchors(self, n: int) -> np.ndarray:
        """Window centres ("center") or first frames ("all") of a sequence of n frames."""
        if self.predicts == "center":
            return np.arange(0, n, self.stride)
        a = np.arange(0, max(n - self.length, 0) + 1, self.stride)
        if self.cover_all and a[-1] + self.length < n:
            a = np.append(a, n - self.length)
        return a

    def rows(self, anchors: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(input rows (W, L), target rows (W, T_out), target valid (W, T_out)), rows clipped to 0..n-1."""
        anchors = np.asarray(anchors, np.int64)
        if self.predicts == "center":
            centre = anchors[:, None]
            return edge_rows(anchors - self.length // 2, self.length, n), centre, np.ones(centre.shape, bool)
        rows = edge_rows(anchors, self.length, n)
        return rows, rows, anchors[:, None] + np.arange(self.length) < n


# ------------------------------------------------------------------------------ encoding
def flip_frames(arrays: dict[str, np.ndarray], image_width: int) -> dict[str, np.ndarray]:
    """Mirror frames left-right: x -> W - 1 - x in pixels, 3D x -> -x, left/right joints swapped."""
    perm = flip_pairs()
    out = {}
    for name, a in arrays.items():
        if name == "keypoints_2d":
            a = a[:, perm].copy()
            a[..., 0] = (image_width - 1) - a[..., 0]
        elif name == "joints_3d_cam":
            a = a[:, perm].copy()
            a[..., 0] = -a[..., 0]
        elif a.ndim >= 2 and a.shape[1] == len(perm):
            a = a[:, perm]
        out[name] = a
    return out


def root_relative_metres(joints_mm: np.ndarray, root: int = 0) -> np.ndarray:
    j = np.asarray(joints_mm, np.float32)
    return (j - j[..., root : root + 1, :]) / np.float32(1000.0)


def needed_arrays(codec: CueCodec, with_target: bool, available: Sequence[str]) -> list[str]:
    """Arrays to read from a shard holding `available` (ordinal: cached if there, else from GT)."""
    names = ["keypoints_2d"]
    ch = codec.config.channels
    if "c" in ch:
        names.append("confidence")
    if "d" in ch:
        names.append("depth")
    if "o" in ch:
        names.append(ordinal_name(codec) if ordinal_name(codec) in available else "joints_3d_cam")
    if with_target:
        names.append("joints_3d_cam")
    return list(dict.fromkeys(names))


def ordinal_name(codec: CueCodec) -> str:
    return ordinal_array_name(codec.config.ordinal_bin)


def encode_frames(codec: CueCodec, arrays: dict[str, np.ndarray], image_size) -> np.ndarray:
    """Encode a block of frames `(n, K, ...)` (already flipped if wanted) -> `(n, K, C)`."""
    ordinal = None
    if "o" in codec.config.channels:
        ordinal = arrays.get("ordinal")
        if ordinal is None:  # ORACLE: from ground truth, exactly as the cached ordinal arrays
            ordinal = ordinal_depth(arrays["joints_3d_cam"], codec.config.ordinal_bin, codec.config.root)
    return codec.encode(arrays["keypoints_2d"], np.asarray(image_size), confidence=arrays.get("confidence"),
                        depth=arrays.get("depth"), ordinal=ordinal)


def _encode_windows(block: dict[str, np.ndarray], sel: np.ndarray, raw: dict[str, np.ndarray], rows_in: np.ndarray,
                    rows_out: np.ndarray, mirror: bool, codec: CueCodec, image_size, with_target: bool) -> None:
    """Fill `block`'s "inputs" (and "target") for the windows `sel`, from the block's frames `raw`
    (rows relative to its first frame), mirrored if `mirror`.

    Only the frames these windows read are flipped and encoded (the codec works frame by frame,
    so the values are the same as encoding the whole block): with flip augmentation each window is
    in one of two subsets, and encoding every frame for both did the codec's work twice.
    """
    need = np.unique(rows_in[sel])     # target rows lie inside the input rows (centre / all frames)
    if len(need) < len(raw["keypoints_2d"]):
        raw = {k: v[need] for k, v in raw.items()}
        rows_in, rows_out = np.searchsorted(need, rows_in[sel]), np.searchsorted(need, rows_out[sel])
    else:
        rows_in, rows_out = rows_in[sel], rows_out[sel]
    frames = flip_frames(raw, image_size[0]) if mirror else raw
    enc = encode_frames(codec, frames, image_size)
    n = len(sel)
    if "inputs" not in block:
        block["inputs"] = np.empty((n, rows_in.shape[1], *enc.shape[1:]), np.float32)
    block["inputs"][sel] = enc[rows_in]
    if with_target:
        tgt = root_relative_metres(frames["joints_3d_cam"], codec.config.root)
        if "target" not in block:
            block["target"] = np.empty((n, rows_out.shape[1], *tgt.shape[1:]), np.float32)
        block["target"][sel] = tgt[rows_out]


def _shard_blocks(info: ShardInfo, index: int, spec: WindowSpec, codec: CueCodec, names: list[str],
                  with_target: bool, flip: float, rng: np.random.Generator,
                  chunk_frames: int, memo_mb: float) -> Iterator[dict[str, np.ndarray]]:
    """Windows of one shard in blocks (dicts of arrays with a leading window axis)."""
    n = info.n_frames
    anchors = spec.anchors(n)
    per_block = max(1, -(-chunk_frames // spec.stride))
    read = list(dict.fromkeys([*names, "frame_index"]))
    with MEMO.source(info.path, read, memo_mb) as shard:
        for b in range(0, len(anchors), per_block):
            rows_in, rows_out, valid = spec.rows(anchors[b : b + per_block], n)
            lo, hi = int(rows_in.min()), int(rows_in.max()) + 1
            raw = shard.read_all(read, lo, hi)
            frame_index = raw.pop("frame_index") if "frame_index" not in names else raw["frame_index"]
            if ordinal_name(codec) in raw:
                raw["ordinal"] = raw.pop(ordinal_name(codec))
            flips = rng.random(len(rows_in)) < flip if flip > 0 else np.zeros(len(rows_in), bool)
            block = {"shard": np.full(len(rows_in), index, np.int64), "rows": rows_out,
                     "frame_index": frame_index[rows_out - lo], "valid": valid, "flipped": flips}
            for sel, mirror in ((~flips, False), (flips, True)):
                if sel.any():
                    _encode_windows(block, sel, raw, rows_in - lo, rows_out - lo, mirror, codec, info.image_size,
                                    with_target)
            yield block


# ------------------------------------------------------------------------------ shuffling
class ShuffleBuffer:
    """Bounded shuffle buffer over blocks of windows; every window comes out exactly once.

    Until full it only fills; then each incoming window evicts a random resident window, which
    is emitted. `drain()` empties it in random order at the end of the epoch.
    """

    def __init__(self, capacity: int, rng: np.random.Generator):
        if capacity < 1:
            raise ValueError(f"shuffle buffer capacity must be >= 1, got {capacity}")
        self.capacity, self.rng, self.size = int(capacity), rng, 0
        self.store: dict[str, np.ndarray] | None = None

    def push(self, block: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
        m = len(next(iter(block.values())))
        if self.store is None:
            self.store = {k: np.empty((self.capacity, *v.shape[1:]), v.dtype) for k, v in block.items()}
        out, pos = [], min(self.capacity - self.size, m)
        for k, v in block.items():
            self.store[k][self.size : self.size + pos] = v[:pos]
        self.size += pos
        while pos < m:
            r = min(m - pos, self.capacity)
            slots = self.rng.choice(self.capacity, r, replace=False)
            out.append({k: s[slots] for k, s in self.store.items()})
            for k, s in self.store.items():
                s[slots] = block[k][pos : pos + r]
            pos += r
        return out

    def drain(self) -> list[dict[str, np.ndarray]]:
        if not self.size:
            return []
        order = self.rng.permutation(self.size)
        out = {k: s[order] for k, s in self.store.items()}
        self.size = 0
        return [out]


def _batches(parts: Iterator[dict[str, np.ndarray]], batch_size: int, drop_last: bool):
    """Re-cut a stream of blocks into batches of exactly `batch_size` (the last may be short)."""
    pending: list[dict[str, np.ndarray]] = []
    count = 0
    for part in parts:
        pending.append(part)
        count += len(part["inputs"])
        while count >= batch_size:
            merged = pending[0] if len(pending) == 1 else {k: np.concatenate([p[k] for p in pending]) for k in part}
            yield {k: v[:batch_size] for k, v in merged.items()}
            rest = {k: v[batch_size:] for k, v in merged.items()}
            count -= batch_size
            pending = [rest] if count else []
    if count and not drop_last:
        yield pending[0] if len(pending) == 1 else {k: np.concatenate([p[k] for p in pending]) for k in pending[0]}


def _to_torch(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}


# ------------------------------------------------------------------------------ the dataset
class WindowDataset(IterableDataset):
    """Windows of cached cues (see the module docstring). `flip` is the probability of mirroring a
    window (0.5 for training augmentation, 1.0 to mirror all for test-time flipping).

    Use with `DataLoader(ds, batch_size=None)`
    when `batch_size` is set here (batches are cut from the shuffle buffer, which is much cheaper
    than collating single windows), or with a normal batch size when it is None.
    """

    def __init__(self, shards: Sequence[ShardInfo], codec: CueCodec, window: WindowSpec, *,
                 shuffle: bool = False, flip: float = 0.0, with_target: bool = True,
                 batch_size: int | None = None, drop_last: bool = False, seed: int = 0,
                 shuffle_buffer: int = 65536, max_buffer_mb: float = 256.0, open_shards: int = 4,
                 chunk_frames: int = 1024, rank: int = 0, world_size: int = 1,
                 memo_mb: float = DEFAULT_BUDGET_MB):
        super().__init__()
        if not shards:
            raise ValueError("WindowDataset needs at least one shard")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
        if codec.config.box_rescale and codec.mean_box is None:
            raise ValueError("the cue codec is not fitted (mean box unknown): call fit_codec() first")
        self.shards = list(shards)
        self.codec, self.window = codec, window
        if not 0.0 <= float(flip) <= 1.0:
            raise ValueError(f"flip is a probability in [0, 1], got {flip}")
        self.shuffle, self.flip, self.with_target = shuffle, float(flip), with_target
        self.batch_size, self.drop_last, self.seed = batch_size, drop_last, int(seed)
        self.shuffle_buffer, self.max_buffer_mb = int(shuffle_buffer), float(max_buffer_mb)
        self.open_shards, self.chunk_frames = max(1, int(open_shards)), int(chunk_frames)
        self.memo_mb = float(memo_mb)
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch = 0
        k = {i.num_keypoints for i in self.shards}
        if len(k) != 1:
            raise ValueError(f"shards mix keypoint counts {sorted(k)}; a lifter needs one skeleton")
        for info in self.shards:
            missing = [n for n in needed_arrays(codec, with_target, info.arrays) if n not in info.arrays]
            if missing:
                why = "the ground-truth target" if with_target and "joints_3d_cam" in missing else "the codec"
                raise ValueError(f"{info.path}: shard lacks array(s) {missing} needed for {why} "
                                 f"(channels {codec.config.channels!r})")

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for `epoch` (call before iterating; DataLoader workers pick it up)."""
        self.epoch = int(epoch)

    def num_windows(self) -> int:
        return sum(len(self.window.anchors(i.n_frames)) for i in self.shards)

    def window_bytes(self) -> int:
        k, c, w = self.shards[0].num_keypoints, self.codec.in_channels, self.window
        return 4 * (w.length * k * c + (w.out_length * k * 3 if self.with_target else 0)) + 18 * w.out_length + 9

    def buffer_capacity(self) -> int:
        return max(1, min(self.shuffle_buffer, int(self.max_buffer_mb * 2**20) // self.window_bytes()))

    def split_order(self, worker_id: int = 0, num_workers: int = 1, rank: int | None = None,
                    world_size: int | None = None) -> list[int]:
        """Indices (into `self.shards`) this rank/worker reads this epoch, in reading order
        (`rank`/`world_size`: another rank's, default this dataset's)."""
        order = np.arange(len(self.shards))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.shards))
        rank = self.rank if rank is None else rank
        world_size = self.world_size if world_size is None else world_size
        split, n_splits = rank * num_workers + worker_id, world_size * num_workers
        return [int(i) for i in order[split::n_splits]]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker_id, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        mine = self.split_order(worker_id, num_workers)
        split = self.rank * num_workers + worker_id
        rng = np.random.default_rng([self.seed, self.epoch, split, 7919])
        parts = self._shuffled(mine, rng) if self.shuffle else self._ordered(mine, rng)
        if self.batch_size is None:
            for part in parts:
                for i in range(len(part["inputs"])):
                    yield {k: (int(v[i]) if k == "shard" else torch.as_tensor(np.array(v[i])))
                           for k, v in part.items()}
        else:
            for batch in _batches(parts, self.batch_size, self.drop_last):
                yield _to_torch(batch)

    def _blocks(self, index: int, rng) -> Iterator[dict[str, np.ndarray]]:
        info = self.shards[index]
        names = needed_arrays(self.codec, self.with_target, info.arrays)
        return _shard_blocks(info, index, self.window, self.codec, names, self.with_target,
                             self.flip, rng, self.chunk_frames, self.memo_mb)

    def _ordered(self, mine: list[int], rng) -> Iterator[dict[str, np.ndarray]]:
        for index in mine:
            yield from self._blocks(index, rng)

    def _shuffled(self, mine: list[int], rng) -> Iterator[dict[str, np.ndarray]]:
        pending = iter(mine)
        active = [self._blocks(i, rng) for i in _take(pending, self.open_shards)]
        buffer = ShuffleBuffer(self.buffer_capacity(), rng)
        while active:
            j = int(rng.integers(len(active)))
            block = next(active[j], None)
            if block is None:
                active[j:j + 1] = [self._blocks(i, rng) for i in _take(pending, 1)]
                continue
            order = rng.permutation(len(block["inputs"]))
            yield from buffer.push({k: v[order] for k, v in block.items()})
        yield from buffer.drain()


def _take(it: Iterator[int], n: int) -> list[int]:
    out = []
    for _ in range(n):
        nxt = next(it, None)
        if nxt is None:
            break
        out.append(nxt)
    return out
