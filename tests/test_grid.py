"""The study grid as Dask tasks: a tiny cross-input study (real H36M mocap, simulated cues) on a
2-worker local cluster against the same study run sequentially."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from auglift.studies import caches, cross_input, run_study
from auglift.studies.context import Lifter, Schedule
from auglift.studies.grid import LOCK_NAME, plan, run_grid


def tiny_config() -> cross_input.Config:
    # Two lifters (xy, xycd) of a few seconds per epoch, so that a worker can be killed mid-training.
    return cross_input.Config((Lifter("simple_baseline", "small", (("dropout", 0.0),)),),
                              Schedule(epochs=6, batch_size=64, stride=1, val_every=1),
                              caches.DataSize(actions=("Directions 1",), workers=1), ("xy", "xycd"),
                              held_out=False, transforms=())


def page(out: Path, work: Path) -> tuple[dict, str]:
    """(the JSON data, the markdown below the provenance header), with the work directory named W
    (and the run directories' config hashes, which hash the cache paths, named H)."""
    def norm(text: str) -> str:
        return re.sub(r"-[0-9a-f]{8}/", "-H/", text.replace(str(work), "W"))

    js = json.loads(norm((out / "cross_input.json").read_text()))
    md = norm((out / "cross_input.md").read_text())
    return js["data"], md[md.index("\n## "):]


@pytest.fixture(scope="module")
def sequential(shared_data, tmp_path_factory):
    """The study run one training after another in this process (1 torch thread, as the workers)."""
    root = tmp_path_factory.mktemp("sequential")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_study("cross_input", "small", 0, shared_data, root / "out", root / "work", log=lambda s: None,
                  config=tiny_config())
    finally:
        torch.set_num_threads(threads)
    return root


def kill_a_training_worker(client, work: Path, stop: threading.Event) -> dict:
    """Once some training has written its first epoch, SIGKILL the worker running it. Also says
    whether two workers were ever seen running a training each at the same moment ("parallel")."""
    pids = client.run(os.getpid)
    parallel = False
    while not stop.is_set():
        processing = client.processing()
        busy = [addr for addr, keys in processing.items() if any(str(k).startswith("train-") for k in keys)]
        parallel = parallel or len(busy) >= 2
        for run in sorted((work / "train").glob("*/last.pt")):
            if (run.parent / "study_done.json").exists():
                continue
            for addr, keys in processing.items():
                if any(str(k).startswith(f"train-{run.parent.name}-") for k in keys):
                    os.kill(pids[addr], signal.SIGKILL)
                    return {"run": run.parent.name, "pid": pids[addr], "parallel": parallel}
        time.sleep(0.05)
    return {}


def test_grid_on_two_workers_matches_sequential_and_survives_a_killed_worker(sequential, shared_data, tmp_path):
    from distributed import Client

    from auglift.pipeline.cluster import local_cluster

    seq_data, seq_md = page(sequential / "out", sequential / "work")
    work, out = tmp_path / "work", tmp_path / "out"
    shutil.copytree(sequential / "work" / "cache", work / "cache")   # the simulated caches, reused by stamp
    kw = dict(configs={"cross_input": tiny_config()}, log=lambda s: None)
    with local_cluster(2) as cluster, Client(cluster) as client:
        result, stop = {}, threading.Event()
        runner = threading.Thread(target=lambda: result.update(
            run_grid(["cross_input"], "small", 0, shared_data, out, work, client=client, **kw)))
        runner.start()
        killed = kill_a_training_worker(client, work, stop)
        runner.join(timeout=600)
        stop.set()
        assert killed, "no training was seen running"
        assert result["status"] == {"cross_input": "ok"}, result
        recs = {r["name"]: r for r in result["trainings"]}
        assert len(recs) == 2 and not any(r["skipped"] for r in recs.values())
        # Both trainings ran at once, each on its own worker. (Their records cannot show it: the
        # killed one's record starts when it was redone, which may be after the other finished.)
        assert killed["parallel"], "the two trainings were never seen running at the same time"
        # the killed worker's training was redone, continuing from its last finished epoch
        redone = [r for r in recs.values() if Path(r["out"]).name == killed["run"]]
        assert redone and redone[0]["resumed"] and not redone[0]["worker"].endswith(f":{killed['pid']}")
        assert not (work / LOCK_NAME).exists()

        data, md = page(out, work)
        assert data == seq_data
        assert md == seq_md

        # a rerun finds every training finished and writes the same page again
        again = run_grid(["cross_input"], "small", 0, shared_data, out, work, client=client, **kw)
        assert again["status"] == {"cross_input": "ok"}
        assert all(r["skipped"] for r in again["trainings"]) and len(again["trainings"]) == 2
        assert page(out, work) == (seq_data, seq_md)


def test_parts_train_their_share_and_the_last_writes_the_pages(sequential, shared_data, tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    shutil.copytree(sequential / "work" / "cache", work / "cache")
    fields = dict(size="small", seed=0, data_root=str(shared_data), work=str(work), out=str(out), device=None)
    trainings = plan(["cross_input"], fields, {"cross_input": tiny_config()}, log=lambda s: None)
    assert [t.name for t in trainings] == ["simple_baseline-small-dropout0.0-xy", "simple_baseline-small-dropout0.0-xycd"]
    assert all(t.config.device == "cpu" for t in trainings)            # --size small trains on the CPU
    kw = dict(configs={"cross_input": tiny_config()}, log=lambda s: None)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        first = run_grid(["cross_input"], "small", 0, shared_data, out, work, part=(1, 2), **kw)
        assert first["status"]["cross_input"] == "waiting for 1 trainings" and not out.exists()
        assert [r["name"] for r in first["trainings"]] == [trainings[1].name]
        last = run_grid(["cross_input"], "small", 0, shared_data, out, work, part=(0, 2), **kw)
    finally:
        torch.set_num_threads(threads)
    assert last["status"] == {"cross_input": "ok"}
    assert page(out, work) == page(sequential / "out", sequential / "work")


def test_full_size_honours_the_device(shared_data, tmp_path):
    from auglift.studies import make_context

    assert make_context("full", 0, shared_data, tmp_path, tmp_path).device == "auto"
    assert make_context("full", 0, shared_data, tmp_path, tmp_path, device="cpu").device == "cpu"
    assert make_context("small", 0, shared_data, tmp_path, tmp_path).device == "cpu"
    ctx = make_context("full", 0, shared_data, tmp_path, tmp_path, device="cuda:1")
    cfg, _, _ = ctx.run_dir("x", tiny_config_train())
    assert cfg.device == "cuda:1"


def tiny_config_train():
    from auglift.lifters.config import TrainConfig

    cfg = TrainConfig()
    cfg.data.train = ["somewhere"]
    return cfg


def test_cli_study_grid_options(tmp_path):
    from click.testing import CliRunner

    from auglift.cli import main

    bad = CliRunner().invoke(main, ["study", "run", "cross_input", "--part", "3/2", "--work", str(tmp_path)])
    assert bad.exit_code != 0 and "need 0 <= i < N" in bad.output
    helptext = CliRunner().invoke(main, ["study", "run", "--help"]).output
    for option in ("--workers", "--gpus", "--scheduler", "--part", "--prepare", "--dashboard", "--device"):
        assert option in helptext
    train_help = CliRunner().invoke(main, ["train", "--help"]).output
    assert "--precision" in train_help and "--ddp-split" in train_help


def test_seeds_in_a_grid_train_every_seed_and_assemble_the_seeds_page(sequential, shared_data, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(sequential / "work" / "cache", work / "cache")
    fields = dict(size="small", seed=0, data_root=str(shared_data), work=str(work), out=str(tmp_path / "o"),
                  device=None, seeds=(0, 1))
    trainings = plan(["cross_input"], fields, {"cross_input": tiny_config()}, log=lambda s: None)
    assert sorted((t.config.seed, t.config.codec.channels) for t in trainings) == [
        (0, "xy"), (0, "xycd"), (1, "xy"), (1, "xycd")]                  # both seeds planned, not the first only
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        grid = run_grid(["cross_input"], "small", 0, shared_data, tmp_path / "grid", work, part=(0, 1), seeds=(0, 1),
                        configs={"cross_input": tiny_config()}, log=lambda s: None)
        # the same page from one process that may not train: every training the page needs was done
        run_study("cross_input", "small", 0, shared_data, tmp_path / "one", work, log=lambda s: None,
                  config=tiny_config(), seeds=(0, 1), may_train=False)
    finally:
        torch.set_num_threads(threads)
    assert grid["status"] == {"cross_input": "ok"} and len(grid["trainings"]) == 4
    data, md = page(tmp_path / "grid", work)
    assert (data, md) == page(tmp_path / "one", work)
    assert "mean ± std over seeds 0, 1" in md
