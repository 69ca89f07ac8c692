"""`auglift cache ls` and `auglift cache verify` through click's CliRunner."""
from __future__ import annotations

import h5py
import pytest
from click.testing import CliRunner
from test_cache_support import key_of, make_attrs, synthetic_sequence

from auglift.cache import write_shard
from auglift.cli import main


@pytest.fixture
def tree(tmp_path):
    arrays = synthetic_sequence(120)
    a1 = make_attrs()
    a2 = make_attrs(subject="S9", action="Eating 2", camera="60457274", depth_kind="none")
    a2["provenance"]["keypoints_2d"] = "real"
    p1 = write_shard(tmp_path, key_of(a1), arrays, a1)
    p2 = write_shard(tmp_path, key_of(a2), dict(arrays, depth=arrays["depth"] * float("nan")), a2,
                     backend="hdf5")
    return tmp_path, p1, p2


def test_cache_ls(tree):
    root, p1, p2 = tree
    result = CliRunner().invoke(main, ["cache", "ls", str(root)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].split()[:4] == ["h36m/S1/Walking_1/54138969", "zarr", "120", "frames"]
    assert "K=17" in lines[0] and "det=projected_gt" in lines[0] and "depth=simulated_metric" in lines[0]
    assert "kp=simulated conf=simulated depth=simulated" in lines[0]
    assert lines[1].split()[:3] == ["h36m/S9/Eating_2/60457274", "hdf5", "120"]
    assert "depth=none" in lines[1] and "kp=real" in lines[1]
    assert lines[2] == "total: 2 shards, 240 frames"
    one = CliRunner().invoke(main, ["cache", "ls", str(p2)])
    assert one.exit_code == 0 and "total: 1 shards, 120 frames" in one.output


def test_cache_verify_ok_then_fails_on_damage(tree, tmp_path_factory):
    root, p1, p2 = tree
    runner = CliRunner()
    ok = runner.invoke(main, ["cache", "verify", str(root)])
    assert ok.exit_code == 0, ok.output
    assert "OK    h36m/S1/Walking_1/54138969  (120 frames)" in ok.output
    assert "2 shards verified: 2 ok, 0 failed" in ok.output
    assert "0 stray temporaries" in ok.output

    with h5py.File(p2, "r+") as f:
        f["keypoints_2d"][5, 0, 0] += 1.0
    bad = runner.invoke(main, ["cache", "verify", str(root)])
    assert bad.exit_code == 1
    assert f"FAIL  h36m/S9/Eating_2/60457274  [{p2}]" in bad.output
    assert "- array 'keypoints_2d': checksum mismatch" in bad.output
    assert "2 shards verified: 1 ok, 1 failed" in bad.output
    single = runner.invoke(main, ["cache", "verify", str(p1)])
    assert single.exit_code == 0 and "1 shards verified: 1 ok" in single.output

    keys = tmp_path_factory.mktemp("keys") / "keys.txt"
    keys.write_text("# expected\nh36m/S1/Walking_1/54138969\nh36m/S11/Walking_1/54138969\n")
    missing = runner.invoke(main, ["cache", "verify", str(p1), "--expect-keys", str(keys)])
    assert missing.exit_code == 1
    assert "FAIL  h36m/S11/Walking_1/54138969  (expected, missing)" in missing.output
    keys.write_text("h36m/S1/Walking 1/54138969\n")
    malformed = runner.invoke(main, ["cache", "verify", str(p1), "--expect-keys", str(keys)])
    assert malformed.exit_code == 2 and "keys.txt:1" in malformed.output


def test_cache_verify_counts_and_cleans_stray_temps(tree):
    root, _, _ = tree
    stray = root / ".tmp" / "h36m" / "S1" / "Walking_1" / "54138969.0123456789abcdef0123456789abcdef.zarr"
    stray.mkdir(parents=True)
    (stray / "zarr.json").write_text("{}")
    runner = CliRunner()
    first = runner.invoke(main, ["cache", "verify", str(root)])
    assert first.exit_code == 0
    assert "1 stray temporaries (interrupted writes)" in first.output and "--clean-tmp" in first.output
    cleaned = runner.invoke(main, ["cache", "verify", str(root), "--clean-tmp"])
    assert "deleted 1 stray temporaries" in cleaned.output
    assert not stray.exists()
    assert "0 stray temporaries" in runner.invoke(main, ["cache", "verify", str(root)]).output


def test_cache_ls_reports_unreadable_shard(tree):
    root, p1, p2 = tree
    with open(p2, "r+b") as fh:
        fh.truncate(1000)
    result = CliRunner().invoke(main, ["cache", "ls", str(root)])
    assert result.exit_code == 1
    assert f"ERROR {p2}: truncated or corrupt HDF5 file" in result.output
    assert "total: 1 shards, 120 frames (some shards unreadable)" in result.output
