"""One conflict / resume / expected-keys policy for every producer (pipeline/produce.py), on real
Human3.6M S9 "Walking" shards from ../shared/data."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from auglift.cache import ShardWriter, list_shards, open_shard, write_shard
from auglift.cli import main
from auglift.pipeline.produce import CONFLICT, KEEP, WRITE, after_race, decide

REPO = Path(__file__).resolve().parents[1]
SIM = ["simulate", "--dataset", "h36m", "--subjects", "S9", "--actions", "Walking"]


def auglift(*args: str, data_root: Path) -> subprocess.Popen:
    """`auglift ARGS` in a child process (this checkout's code), stdout+stderr piped."""
    env = {**os.environ, "AUGLIFT_DATA": str(data_root)}
    return subprocess.Popen([sys.executable, "-c", "from cli import main; main()", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def seed0(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("seed0")
    result = CliRunner().invoke(main, [*SIM, "--data-root", str(shared_data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_simulate_refuses_another_seed_unless_overwrite(seed0, shared_data, tmp_path):
    root = tmp_path / "A"
    shutil.copytree(seed0, root)
    before = {p: p.stat().st_mtime_ns for p in (root / "h36m").rglob("*") if p.is_file()}
    runner = CliRunner()
    refused = runner.invoke(main, [*SIM, "--data-root", str(shared_data), "--out", str(root), "--seed", "1"])
    assert refused.exit_code == 1
    victim = root / "h36m/S9/Walking/54138969.zarr"
    assert f"FAILED h36m/S9/Walking/54138969: FileExistsError: {victim}: a verified shard made with another " \
           f"configuration" in refused.output and "--overwrite" in refused.output
    assert {p: p.stat().st_mtime_ns for p in before} == before      # nothing replaced
    replaced = runner.invoke(main, [*SIM, "--data-root", str(shared_data), "--out", str(root), "--seed", "1",
                                    "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    with open_shard(victim) as s:
        assert s.attrs["seed"] == 1


def test_build_gt_refuses_to_replace_simulated_shards(seed0, shared_data, tmp_path):
    root = tmp_path / "A"
    shutil.copytree(seed0, root)
    runner = CliRunner()
    args = ["cache", "build-gt", "--data-root", str(shared_data), "--subjects", "S9", "--actions", "Walking",
            "--out", str(root)]
    refused = runner.invoke(main, args)
    assert refused.exit_code == 1
    assert f"{root / 'h36m/S9/Walking/54138969.zarr'}: a verified shard made with another configuration" \
        in refused.output
    with open_shard(root / "h36m/S9/Walking/54138969.zarr") as s:
        assert s.attrs["simulated"] is True
    assert runner.invoke(main, [*args, "--overwrite"]).exit_code == 0
    with open_shard(root / "h36m/S9/Walking/54138969.zarr") as s:
        assert s.attrs["detector"]["name"] == "ground_truth"


def test_verify_fails_a_root_mixing_config_hashes(seed0, shared_data, tmp_path):
    root = tmp_path / "A"
    shutil.copytree(seed0, root)
    runner = CliRunner()
    gt = runner.invoke(main, ["cache", "build-gt", "--data-root", str(shared_data), "--subjects", "S9",
                              "--actions", "Walking?1", "--out", str(root)])
    assert gt.exit_code == 0, gt.output
    result = runner.invoke(main, ["cache", "verify", str(root)])
    assert result.exit_code == 1
    line = next(ln for ln in result.output.splitlines() if "mixes config hashes" in ln)
    assert line.startswith("FAIL  dataset 'h36m' mixes config hashes: ") and line.count("(4 shards)") == 2


def test_interrupted_simulate_does_not_verify_as_complete(shared_data, tmp_path):
    root = tmp_path / "A"
    child = auglift(*SIM, "--out", str(root), data_root=shared_data)
    try:
        deadline = time.time() + 120
        while not list_shards(root) if root.is_dir() else True:
            assert child.poll() is None, child.stdout.read()
            assert time.time() < deadline
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()
    done = len(list_shards(root))
    assert 1 <= done < 4
    result = CliRunner().invoke(main, ["cache", "verify", str(root)])
    assert result.exit_code == 1
    assert f"expected keys from {root / 'expected_keys.txt'}: 4" in result.output
    assert result.output.count("(expected, missing)") == 4 - done


def test_two_identical_concurrent_runs_both_succeed(shared_data, tmp_path):
    root = tmp_path / "A"
    children = [auglift(*SIM, "--out", str(root), data_root=shared_data) for _ in range(2)]
    outputs = [c.communicate(timeout=300)[0] for c in children]
    assert [c.returncode for c in children] == [0, 0], outputs
    result = CliRunner().invoke(main, ["cache", "verify", str(root)])
    assert result.exit_code == 0, result.output
    assert "4 shards verified: 4 ok, 0 failed" in result.output


def test_a_lost_race_keeps_the_winners_shard_only_with_the_same_hash(seed0, tmp_path):
    src = seed0 / "h36m/S9/Walking/54138969.zarr"
    with open_shard(src) as s:
        arrays, attrs = s.read_all(), s.copy_attrs()
    key, chash = "h36m/S9/Walking/54138969", attrs["config_hash"]
    loser = ShardWriter(tmp_path, key, attrs)
    loser.append(arrays)
    winner = write_shard(tmp_path, key, arrays, attrs)          # commits while the loser still writes
    assert decide(winner, chash).action == KEEP
    with pytest.raises(FileExistsError) as lost:
        loser.close()
    assert after_race(winner, chash, lost.value).action == KEEP
    assert decide(winner, "0" * 16).action == CONFLICT
    with pytest.raises(FileExistsError, match="another configuration"):
        after_race(winner, "0" * 16, lost.value)
    assert decide(winner, "0" * 16, overwrite=True).action == WRITE
    assert list(tmp_path.joinpath(".tmp").rglob("*.zarr")) == []  # the loser left nothing behind
