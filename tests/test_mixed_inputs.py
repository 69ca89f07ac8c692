"""Inputs that do not belong together are refused at the door, before any work, naming a shard:
depth kinds mixed in one depth channel, a depth channel without depth, a checkpoint evaluated on
another skeleton, landmark-z depth from a detector without landmark z. Real shards from
../shared/data (conftest: gt_cache = GT 2D + metric depth, sim_cache = simulated_metric)."""
from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from auglift.cache import list_shards, open_shard, write_shard
from auglift.cli import main


def derived_shard(src, root, **attrs_change):
    """A copy of real shard `src` under `root` with some attributes changed (and depth NaN when
    the change says the shard has no depth), written through the cache like any producer's."""
    with open_shard(src) as s:
        arrays, attrs = s.read_all(), s.copy_attrs()
    attrs.update(attrs_change)
    if attrs["depth_backend"]["kind"] == "none":
        arrays["depth"] = np.full_like(arrays["depth"], np.nan)
    return write_shard(root, s.key, arrays, attrs)


def train_args(*caches, channels="xycd", out):
    return ["train", "--channels", channels, *[a for c in caches for a in ("--train", str(c))],
            "--max-steps", "1", "--batch-size", "64", "--out", str(out), "--quiet"]


def test_training_on_two_depth_kinds_is_refused(gt_cache, sim_cache, tmp_path):
    # GT metric and simulated metric depth are one family (metres): they may train one channel
    # together; landmark z is another family.
    derived_shard(list_shards(sim_cache)[0], tmp_path / "lz", depth_backend={
        "name": "simulated-landmark-z", "version": "1", "params": {}, "kind": "simulated_landmark_z"})
    result = CliRunner().invoke(main, train_args(gt_cache, tmp_path / "lz", out=tmp_path / "T"))
    assert result.exit_code == 1
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("Error: shards mix depth families ['landmark_z', 'metric'] (")
    assert str(gt_cache) in line and str(tmp_path / "lz") in line
    assert not (tmp_path / "T").exists()
    ok = CliRunner().invoke(main, train_args(gt_cache, sim_cache, out=tmp_path / "T2"))
    assert ok.exit_code == 0, ok.output


def test_depth_channel_on_a_cache_without_depth_is_refused(sim_cache, tmp_path):
    src = list_shards(sim_cache)[0]
    shard = derived_shard(src, tmp_path / "nodepth", depth_backend={"name": "none", "version": "1", "params": {},
                                                                     "kind": "none"},
                          provenance={"keypoints_2d": "simulated", "confidence": "simulated", "depth": "none"})
    result = CliRunner().invoke(main, train_args(tmp_path / "nodepth", out=tmp_path / "T"))
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: {shard}: channels 'xycd' need depth but this shard has none (depth kind 'none'; 1 of 1 shards); "
        f"use a channel set without d or a cache with depth")


def test_checkpoint_on_another_skeleton_is_refused(sim_cache, sim_checkpoint, tmp_path):
    shard = derived_shard(list_shards(sim_cache)[0], tmp_path / "coco", skeleton="coco17")
    result = CliRunner().invoke(main, ["evaluate", "--checkpoint", str(sim_checkpoint), "--test",
                                       str(tmp_path / "coco"), "--out", str(tmp_path / "E"), "--quiet"])
    assert result.exit_code == 1
    line = result.output.strip().splitlines()[-1]
    assert line == (f"Error: {sim_checkpoint} on test set 'test': {shard}: skeleton 'coco17' with 17 keypoints, "
                    f"but the checkpoint was trained on ['h36m17'] with 17; its joints would be read in the "
                    f"wrong order")
    assert not (tmp_path / "E.json").exists()


def test_landmark_z_without_a_landmark_z_detector_is_refused_at_config_time(shared_data, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["precompute", "--data-root", str(shared_data), "--detector", "rtmpose",
                                       "--depth", "landmark-z", "--out", str(out), "--quiet"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: depth backend 'landmark-z' needs the detector's per-landmark ['landmark_z_world'] but detector "
        "'rtmpose' has no landmark z (it gives only x, y, c); use --detector mediapipe or another --depth")
    assert not out.exists()                       # refused before anything was built or written
