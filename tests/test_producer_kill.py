"""SIGKILL in the middle of each shard producer (`auglift precompute`, `auglift simulate`,
`auglift cache build-gt`: one runner, pipeline/runner.py), then resume: same shards as an
uninterrupted run, kept shards not rewritten, and never a partial shard in sight."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from auglift.cache import list_shards, open_shard, stray_temps, verify_tree
from auglift.pipeline.gt_shards import build_gt_shards
from auglift.pipeline.precompute import PrecomputeConfig, default_root, run_precompute
from auglift.pipeline.simulate import simulate_dataset

AUGLIFT = [sys.executable, "-c", "from auglift.cli import main; main()"]


def _cmd(dataset: str, data: Path, out: Path) -> list[str]:
    return [*AUGLIFT, "precompute", "--dataset", dataset, "--data-root", str(data), "--out", str(out),
            "--quiet", "--batch-size", "1", "--workers", "1"]


def _checksums(root: Path) -> dict[str, dict[str, str]]:
    out = {}
    for p in list_shards(root):
        with open_shard(p) as s:
            out[s.key] = {k: v["sha256"] for k, v in s.attrs["arrays"].items()}
    return out


def kill_after_first_shard(commands: list[list[str]], out: Path) -> list[Path]:
    """Run `commands` one after the other in their own session, SIGKILL every process of it as
    soon as a shard appears under `out`, and return the shards committed by then. Whatever
    becomes visible meanwhile must already be complete."""
    repo = Path(__file__).resolve().parents[1]
    script = " && ".join(subprocess.list2cmdline(c) for c in commands)
    # its own session, so that the kill reaches the Dask scheduler, nanny and worker processes
    proc = subprocess.Popen(["/bin/sh", "-c", script], cwd=repo, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: set[Path] = set()
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            shards = set(list_shards(out)) if out.is_dir() else set()
            for p in shards - seen:  # whatever becomes visible is already complete
                with open_shard(p) as s:
                    assert s.attrs["complete"] is True
            seen |= shards
            if shards:
                break
            time.sleep(0.01)
        assert seen, "no shard was committed within 120 s"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(0.5)
    return list_shards(out)


def _mtimes(shards: list[Path]) -> dict[Path, int]:
    return {f: f.stat().st_mtime_ns for p in shards for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()}


def test_kill_mid_run_then_resume_gives_identical_shards(shared_data, tmp_path):
    killed = tmp_path / "killed"
    committed = kill_after_first_shard([_cmd(d, shared_data, killed) for d in ("videos", "samples")], killed)
    assert 1 <= len(committed) < 12, f"the kill came too late to test anything ({len(committed)} shards)"
    reports = verify_tree(killed)
    assert all(r.ok for r in reports), [r.problems for r in reports if not r.ok]

    # resume, and an uninterrupted reference run: in this process and inline (the same task code,
    # without a cluster), which also shows that Dask workers and a plain loop write the same bytes
    reference = tmp_path / "reference"
    for root in (killed, reference):
        for dataset in ("videos", "samples"):
            report, _ = run_precompute(dataset, default_root(dataset, shared_data), root,
                                       PrecomputeConfig(workers=0, batch_size=1), progress=False, log=None)
            assert report["summary"]["shards"]["failed"] == 0
    resumed, expected = _checksums(killed), _checksums(reference)
    assert len(expected) == 10 and resumed == expected
    assert all(r.ok for r in verify_tree(killed))
    keys = (killed / "expected_keys.txt").read_text().split()
    assert sorted(keys) == sorted(expected)
    # the killed writer may have left a temporary; it is outside the cache and reported
    assert all(".tmp" in str(p) for p in stray_temps(killed))


def _resumed_like_uninterrupted(killed: Path, reference: Path, total: int, produce) -> dict:
    """The checks every producer's kill test shares: the killed root verifies, `produce(root)`
    resumes it (keeping what was committed, untouched) and gives the bytes of an uninterrupted
    run into `reference`. Returns the resume's summary."""
    committed = list_shards(killed)
    assert 1 <= len(committed) < total, f"the kill came too late to test anything ({len(committed)} shards)"
    assert all(r.ok for r in verify_tree(killed))
    before = _mtimes(committed)
    summary = produce(killed)
    assert summary["shards"]["kept"] == len(committed) and summary["shards"]["failed"] == 0
    assert summary["shards"]["written"] == total - len(committed)
    assert _mtimes(committed) == before            # kept, not rewritten
    produce(reference)
    resumed, expected = _checksums(killed), _checksums(reference)
    assert len(expected) == total and resumed == expected
    assert all(r.ok for r in verify_tree(killed))
    assert sorted((killed / "expected_keys.txt").read_text().split()) == sorted(expected)
    assert all(".tmp" in str(p) for p in stray_temps(killed))
    return summary


def test_kill_simulate_in_a_process_pool_then_resume(shared_data, tmp_path):
    killed, select = tmp_path / "killed", dict(subjects=["S9"], actions=["Walking*"])
    kill_after_first_shard([[*AUGLIFT, "simulate", "--dataset", "h36m", "--data-root", str(shared_data),
                             "--subjects", "S9", "--actions", "Walking*", "--workers", "2", "--out", str(killed)]],
                           killed)
    _resumed_like_uninterrupted(killed, tmp_path / "reference", 8,
                                lambda root: simulate_dataset("h36m", shared_data, root, log=None, **select))


def test_kill_build_gt_then_resume(shared_data, tmp_path):
    killed, actions = tmp_path / "killed", ["Walking*", "Directions*", "Eating*"]
    kill_after_first_shard([[*AUGLIFT, "cache", "build-gt", "--data-root", str(shared_data), "--subjects", "S9",
                             "--actions", ",".join(actions), "--out", str(killed)]], killed)
    _resumed_like_uninterrupted(killed, tmp_path / "reference", 24,
                                lambda root: build_gt_shards("h36m", shared_data, root, subjects=["S9"],
                                                             actions=actions, log=None))
