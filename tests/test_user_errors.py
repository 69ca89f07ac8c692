"""Every user error is one line naming the file and the problem, with a non-zero exit; tracebacks
only with `auglift --debug`. Inputs are real Human3.6M data from ../shared/data or shards and
checkpoints made from it (conftest: sim_cache, sim_checkpoint)."""
from __future__ import annotations

import contextlib
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from auglift.cache import list_shards, verify_tree
from auglift.cli import main
from auglift.lifters.checkpoint import FORMAT, VERSION, load_checkpoint
from auglift.pipeline.sources.base import get_dataset
from auglift.pipeline.sources.custom import write_custom_sequence

HINT = "  (rerun as `auglift --debug ...` for the traceback)"


def error_line(result) -> str:
    """The one line a failed command printed (and that it printed no traceback)."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.output.strip().splitlines()[-1]


@contextlib.contextmanager
def immutable(path: Path):
    """`path` made unwritable even for root (chattr +i), as a read-only mount would be."""
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_dataset_error_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["simulate", "--dataset", "h36m", "--data-root", str(tmp_path),
                                       "--out", str(tmp_path / "out")])
    line = error_line(result)
    assert line.startswith(f"Error: h36m: no dataset found at {tmp_path / 'h36m'}")


def test_unsafe_pickle_fails_that_file_without_running_it(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (subprocess.call, (["touch", str(marker)],))

    seq = tmp_path / "3dpw" / "sequenceFiles" / "train" / "downtown_evil_00.pkl"
    seq.parent.mkdir(parents=True)
    seq.write_bytes(pickle.dumps({"jointPositions": [Payload()]}))
    (tmp_path / "3dpw" / "imageFiles").mkdir()
    result = CliRunner().invoke(main, ["simulate", "--dataset", "3dpw", "--data-root", str(tmp_path),
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    failed = [ln for ln in result.output.splitlines() if ln.startswith("FAILED")]
    assert len(failed) == 1 and str(seq) in failed[0] and "UnsafePickleError" in failed[0]
    assert not marker.exists()


def test_checkpoint_lacking_keys_is_refused_naming_it(sim_checkpoint, sim_cache, tmp_path):
    ckpt = load_checkpoint(sim_checkpoint)
    for drop in ("model", "codec", "train_shards"):
        bad = tmp_path / f"no_{drop}.pt"
        torch.save({k: v for k, v in ckpt.items() if k != drop}, bad)
        result = CliRunner().invoke(main, ["evaluate", "--checkpoint", str(bad), "--test", str(sim_cache),
                                           "--out", str(tmp_path / "E")])
        assert error_line(result) == f"Error: {bad}: checkpoint lacks ['{drop}'] (truncated, or not written by " \
                                     f"auglift train)"
    torch.save({"format": FORMAT, "version": VERSION, **{k: v for k, v in ckpt.items() if k != "optimizer"}},
               bad := tmp_path / "no_optimizer.pt")
    result = CliRunner().invoke(main, ["train", "--resume", str(bad), "--out", str(tmp_path / "T")])
    assert error_line(result) == f"Error: {bad}: cannot resume from this checkpoint: it lacks ['optimizer']"


def test_out_that_is_a_file(sim_cache, sim_checkpoint, tmp_path):
    f = tmp_path / "taken"
    f.write_text("x")
    train = CliRunner().invoke(main, ["train", "--channels", "xycd", "--train", str(sim_cache), "--out", str(f)])
    assert error_line(train) == f"Error: {f}: --out must be a directory (a run directory), but it is a file"
    evaluate = CliRunner().invoke(main, ["evaluate", "--checkpoint", str(sim_checkpoint), "--test", str(sim_cache),
                                         "--out", str(f / "E")])
    assert error_line(evaluate) == f"Error: {f}: is a file, not a directory for --out {f / 'E'}"


def test_out_that_is_read_only_fails_before_any_work(sim_cache, sim_checkpoint, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    with immutable(ro):
        evaluate = CliRunner().invoke(main, ["evaluate", "--checkpoint", str(sim_checkpoint), "--test",
                                             str(sim_cache), "--out", str(ro / "E"), "--quiet"])
        line = error_line(evaluate)
        assert line.startswith(f"Error: {ro}/.E.") and line.endswith(f".tmp: Operation not permitted{HINT}")
        assert "MPJPE" not in evaluate.output
        train = CliRunner().invoke(main, ["train", "--channels", "xycd", "--train", str(sim_cache),
                                          "--max-steps", "1", "--out", str(ro / "run"), "--quiet"])
        assert error_line(train) == f"Error: {ro / 'run'}: Operation not permitted{HINT}"


def test_full_disk_names_the_file(sim_cache, sim_checkpoint):
    shard = list_shards(sim_cache)[0]
    result = CliRunner().invoke(main, ["show", "--checkpoint", str(sim_checkpoint), "--shard", str(shard),
                                       "--out", "/dev/full"])
    assert error_line(result) == f"Error: /dev/full: No space left on device{HINT}"
    debug = CliRunner().invoke(main, ["--debug", "show", "--checkpoint", str(sim_checkpoint), "--shard", str(shard),
                                      "--out", "/dev/full"])
    assert isinstance(debug.exception, OSError)


def test_one_bad_file_in_a_custom_root_fails_only_that_file(shared_data, tmp_path):
    h36m = get_dataset("h36m", shared_data)
    refs = [r for r in h36m.list_sequences(subjects=["S9"]) if r.camera == "54138969"][:2]
    root = tmp_path / "custom"
    for ref in refs:
        seq = h36m.load(ref)
        write_custom_sequence(root / "S9" / f"{ref.action}.npz", seq.joints_3d_cam, skeleton="h36m17", units="mm",
                              coords="camera", camera_names=[ref.camera], f=[seq.cam.f], c=[seq.cam.c],
                              image_size=[list(seq.image_size)], fps=seq.fps)
    bad = root / "S9" / "broken.npz"
    np.savez(bad, joints_3d=np.zeros((3, 17, 2)), skeleton="h36m17", units="mm", coords="camera",
             camera_names=["c"], f=[[1, 1]], c=[[0, 0]], image_size=[[2, 2]], fps=1)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["simulate", "--dataset", "custom", "--data-root", str(tmp_path),
                                       "--out", str(out)])
    assert result.exit_code == 1
    failed = [ln for ln in result.output.splitlines() if ln.startswith("FAILED")]
    assert len(failed) == 1 and f"{bad}: joints_3d (h36m17) has shape (3, 17, 2)" in failed[0]
    reports = verify_tree(out)
    assert len(reports) == 2 and all(r.ok for r in reports)


def test_clean_tmp_that_cannot_delete_says_so(sim_cache, tmp_path):
    import shutil

    root = tmp_path / "A"
    shutil.copytree(sim_cache, root)
    stray = root / ".tmp" / "h36m" / "S9" / "Walking" / "54138969.0123456789abcdef0123456789abcdef.zarr"
    stray.mkdir(parents=True)
    (stray / "zarr.json").write_text("{}")
    with immutable(stray.parent):
        result = CliRunner().invoke(main, ["cache", "verify", str(root), "--clean-tmp"])
        assert result.exit_code == 1
        assert "deleted 0 stray temporaries" in result.output
        assert f"FAIL  could not delete {stray}: " in result.output
        assert stray.exists()
    cleaned = CliRunner().invoke(main, ["cache", "verify", str(root), "--clean-tmp"])
    assert cleaned.exit_code == 0 and "deleted 1 stray temporaries" in cleaned.output and not stray.exists()


def test_leftover_expected_keys_temporary_is_reported_and_cleaned(sim_cache, tmp_path):
    import shutil

    root = tmp_path / "A"
    shutil.copytree(sim_cache, root)
    dead = subprocess.Popen(["true"])
    dead.wait()
    leftover = root / f".expected_keys.{dead.pid}.tmp"     # an interrupted replace of expected_keys.txt
    leftover.write_text("h36m/S9/Walking/54138969\n")
    report = CliRunner().invoke(main, ["cache", "verify", str(root)])
    assert report.exit_code == 0 and "1 stray temporaries" in report.output
    cleaned = CliRunner().invoke(main, ["cache", "verify", str(root), "--clean-tmp"])
    assert cleaned.exit_code == 0 and "deleted 1 stray temporaries" in cleaned.output and not leftover.exists()
