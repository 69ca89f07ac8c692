"""Shared test fixtures: where the real data lives."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("AUGLIFT_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = data_root()
    if not (root / "README.md").exists():
        pytest.skip(f"real data not found at {root} (set AUGLIFT_DATA)")
    return root


@pytest.fixture(scope="session")
def gt_cache(shared_data, tmp_path_factory):
    """GT-2D shards of S1 and S9, Directions only (16 real shards, ~5k frames)."""
    from auglift.pipeline.gt_shards import build_gt_shards

    out = tmp_path_factory.mktemp("h36m_gt")
    build_gt_shards("h36m", shared_data, out, subjects=["S1", "S9"], actions=["Directions*"], log=None)
    return out


@pytest.fixture(scope="session")
def sim_cache(shared_data, tmp_path_factory):
    """SIMULATED shards of Human3.6M S9 "Walking" (4 cameras, ~1300 frames, depth simulated_metric)."""
    from auglift.pipeline.simulate import simulate_dataset

    out = tmp_path_factory.mktemp("sim_walking")
    summary = simulate_dataset("h36m", shared_data, out, subjects=["S9"], actions=["Walking"], log=None)
    assert summary["shards"]["written"] == 4
    return out


@pytest.fixture(scope="session")
def sim_checkpoint(sim_cache, tmp_path_factory):
    """A SimpleBaseline xycd checkpoint trained for 2 steps on `sim_cache` through the CLI."""
    from click.testing import CliRunner

    from auglift.cli import main

    out = tmp_path_factory.mktemp("sim_run")
    result = CliRunner().invoke(main, ["train", "--channels", "xycd", "--train", str(sim_cache), "--epochs", "1",
                                       "--batch-size", "64", "--max-steps", "2", "--threads", "1",
                                       "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out / "last.pt"
