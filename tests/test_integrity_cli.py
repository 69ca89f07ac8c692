"""Damaged shards never reach a lifter: `auglift train`, `evaluate` and `cache verify` all refuse
them, exit non-zero and name the shard (and the array where one is damaged). Real simulated
shards of Human3.6M S9 "Walking" (4 cameras) from ../shared/data."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import pytest
import zarr
from click.testing import CliRunner

from auglift.cache import ShardError, list_shards, open_shard, verify_shard, write_shard
from auglift.cli import main

VICTIM = "h36m/S9/Walking/54138969"


def _copy(sim_cache: Path, tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "B"
    shutil.copytree(sim_cache, root)
    return root, root / (VICTIM + ".zarr")


def _flip_two_bytes(path: Path, at: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if at is None else at
    data[i] ^= 0xFF
    data[i + 1] ^= 0x0F
    path.write_bytes(bytes(data))


def _edit_attrs(shard: Path, **change) -> None:
    g = zarr.open_group(store=str(shard), mode="r+")
    attrs = dict(g.attrs["auglift"])
    for name, value in change.items():
        if "." in name:
            outer, inner = name.split(".")
            attrs[outer] = {**attrs[outer], inner: value}
        else:
            attrs[name] = value
    g.attrs["auglift"] = attrs


def flipped(shard):
    _flip_two_bytes(shard / "keypoints_2d" / "c" / "0" / "0" / "0")


def deleted(shard):
    (shard / "keypoints_2d" / "c" / "0" / "0" / "0").unlink()


DAMAGE = {
    "flipped_bytes": (flipped, "'keypoints_2d'"),
    "deleted_chunk": (deleted, "'keypoints_2d'"),
    "n_frames": (lambda s: _edit_attrs(s, n_frames=100), "n_frames"),
    "image_size": (lambda s: _edit_attrs(s, image_size=[2000, 2000]), "attributes were modified"),
    "provenance": (lambda s: _edit_attrs(s, **{"provenance.depth": "real"}), "attributes were modified"),
    "detector": (lambda s: _edit_attrs(s, **{"detector.name": "rtmpose"}), "attributes were modified"),
    "depth_kind": (lambda s: _edit_attrs(s, **{"depth_backend.kind": "metric"}), "attributes were modified"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_shard_fails_verify_train_and_evaluate(damage, sim_cache, sim_checkpoint, tmp_path):
    root, shard = _copy(sim_cache, tmp_path)
    apply, names = DAMAGE[damage]
    apply(shard)
    runner = CliRunner()

    verify = runner.invoke(main, ["cache", "verify", str(root)])
    assert verify.exit_code == 1, verify.output
    assert f"FAIL  {VICTIM}  [{shard}]" in verify.output and names in verify.output
    assert "4 shards verified: 3 ok, 1 failed" in verify.output

    run = tmp_path / "T"
    train = runner.invoke(main, ["train", "--channels", "xycd", "--train", str(root), "--epochs", "1",
                                 "--batch-size", "64", "--max-steps", "2", "--out", str(run), "--quiet"])
    assert train.exit_code == 1, train.output
    error = train.output.strip().splitlines()[-1]
    assert error.startswith(f"Error: {shard}") and names in error and "Traceback" not in train.output
    assert not (run / "last.pt").exists()

    out = tmp_path / "E"
    evaluate = runner.invoke(main, ["evaluate", "--checkpoint", str(sim_checkpoint), "--test", str(root),
                                    "--out", str(out), "--quiet"])
    assert evaluate.exit_code == 1, evaluate.output
    error = evaluate.output.strip().splitlines()[-1]
    assert error.startswith(f"Error: {shard}") and names in error and "MPJPE" not in evaluate.output
    assert not out.with_suffix(".json").exists()


def test_clean_cache_trains_and_evaluates(sim_cache, sim_checkpoint, tmp_path):
    """The control for the test above: the undamaged copy passes all three."""
    root, _ = _copy(sim_cache, tmp_path)
    runner = CliRunner()
    assert runner.invoke(main, ["cache", "verify", str(root)]).exit_code == 0
    result = runner.invoke(main, ["evaluate", "--checkpoint", str(sim_checkpoint), "--test", str(root),
                                  "--out", str(tmp_path / "E"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "E.json").read_text())["test_sets"]["test"]["shards"] == 4


def test_flipped_byte_in_an_hdf5_chunk_fails_its_fletcher32(sim_cache, tmp_path):
    src = sim_cache / (VICTIM + ".zarr")
    with open_shard(src) as s:
        path = write_shard(tmp_path, VICTIM, s.read_all(), s.copy_attrs(), backend="hdf5", chunk_frames=64)
    with h5py.File(path, "r") as f:
        info = f["depth"].id.get_chunk_info(1)
    data = bytearray(path.read_bytes())
    data[info.byte_offset + info.size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    report = verify_shard(path)
    assert not report.ok and any(p.startswith("array 'depth': reading rows") for p in report.problems)
    with open_shard(path) as shard:
        shard.read("depth", 0, 64)                       # the intact first chunk still reads
        with pytest.raises(ShardError, match=rf"{path}: reading 'depth' rows 0:\d+ failed"):
            shard.read_all(["keypoints_2d", "depth"])


def test_format_1_shard_is_refused_with_what_to_do(sim_cache, tmp_path):
    root, shard = _copy(sim_cache, tmp_path)
    _edit_attrs(shard, format_version=1)
    with pytest.raises(ShardError, match=f"{shard}: format_version 1 .* re-create it by rerunning"):
        open_shard(shard)
    result = CliRunner().invoke(main, ["cache", "verify", str(shard)])
    assert result.exit_code == 1 and "format_version 1" in result.output


def test_verify_on_a_file_is_one_line(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("not a cache")
    result = CliRunner().invoke(main, ["cache", "verify", str(f)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {f}: not a cache root or shard (expected a directory, a '.zarr' directory or a '.h5' file)"
        "  (rerun as `auglift --debug ...` for the traceback)"]
    debug = CliRunner().invoke(main, ["--debug", "cache", "verify", str(f)])
    assert debug.exit_code == 1 and isinstance(debug.exception, ValueError)


def test_list_of_shards_is_unchanged_by_a_failed_run(sim_cache):
    assert [p.name for p in list_shards(sim_cache)] == ["54138969.zarr", "55011271.zarr", "58860488.zarr",
                                                        "60457274.zarr"]


def test_damage_met_mid_training_in_a_loader_worker_is_one_line(sim_cache, tmp_path):
    """A damaged depth chunk is first read by a DataLoader worker, after training started: the
    run stops with the worker's error as one line naming shard and array, no traceback."""
    root, shard = _copy(sim_cache, tmp_path)
    _flip_two_bytes(shard / "depth" / "c" / "0" / "0")
    result = CliRunner().invoke(main, ["train", "--channels", "xycd", "--train", str(root), "--epochs", "1",
                                       "--batch-size", "64", "--num-workers", "1", "--out", str(tmp_path / "T"),
                                       "--quiet"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1].startswith(f"Error: {shard}: reading 'depth' rows 0:")
