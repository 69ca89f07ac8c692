"""Data-parallel training under torchrun (2 gloo processes) against one process, on real H36M shards."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import yaml

from auglift.lifters.checkpoint import build_from_checkpoint, load_checkpoint
from auglift.lifters.config import config_from_dict, config_to_dict
from auglift.lifters.distributed import GlobalBatchNorm, Runtime, resolve_device, sync_batchnorm
from auglift.lifters.train import train

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def ddp_config(cache, out, **optim):
    # The paper's SimpleBaseline shape (BatchNorm, residual blocks), tiny, without dropout: dropout
    # masks are drawn per rank, so only a dropout-free model can match bit for bit.
    return config_from_dict({
        "model": {"name": "simple_baseline", "preset": "small", "overrides": {"dropout": 0.0}},
        "codec": {"channels": "xy"},
        "data": {"train": [str(cache)], "train_subjects": ["S1"], "shuffle_buffer": 2048, "chunk_frames": 256,
                 "stride": 2},
        "optim": {"epochs": 1, "batch_size": 128, "lr": 1e-3, **optim},
        "out": str(out), "seed": 0, "num_threads": 1, "device": "cpu",
    })


def torchrun(cfg, nproc: int, *extra: str) -> subprocess.CompletedProcess:
    path = os.path.join(cfg.out + ".yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config_to_dict(cfg), f)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "auglift.cli", "train", "--config", path, "--quiet", *extra]
    run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def bn_fed_biases(model: torch.nn.Module) -> set[str]:
    """Biases of layers whose output goes straight into a BatchNorm, and that BatchNorm's running
    mean: BatchNorm subtracts the bias again, so its exact gradient is 0 and what it gets is
    rounding noise (which the running mean then tracks)."""
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    return {key for (n, m), (bn, nxt) in zip(leaves, leaves[1:])
            if getattr(m, "bias", None) is not None and isinstance(nxt, torch.nn.modules.batchnorm._BatchNorm)
            for key in (f"{n}.bias", f"{bn}.running_mean")}


def weight_gap(a: dict, b: dict, skip: set[str] = frozenset()) -> float:
    """Largest ||a - b|| / max(||a||, 1) over the floating tensors of two state dicts."""
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).norm() / a[k].norm().clamp_min(1.0))
               for k in a if a[k].is_floating_point() and k not in skip)


# What "the same weights within float tolerance" means for Adam: Adam divides every gradient by
# its own magnitude, so a component whose exact gradient is ~0 turns summation-order rounding into
# full-size steps: the biases feeding a BatchNorm random-walk (they and the running means that
# track them are left out; BatchNorm cancels them). At lr 1e-2 the rest diverges chaotically too
# (one process with 2 intra-op threads instead of 1 differs from itself by 3.8e-3 after one epoch,
# 2 ranks from 1 by 3.9e-3); at lr 1e-3, used here, both gaps are ~2e-7 after two epochs
# (measured with `weight_gap`); with BatchNorm statistics per rank (no sync) the gap is 2.3e-2.
FLOAT_ORDER_GAP = 1e-4


def test_two_gloo_processes_match_one_and_resume_in_one(gt_cache, tmp_path):
    two = ddp_config(gt_cache, tmp_path / "two")
    run = torchrun(two, 2)
    assert "2 processes (batch split)" in run.stdout
    one = train(ddp_config(gt_cache, tmp_path / "one"), progress=False, log=lambda s: None)
    a, b = load_checkpoint(tmp_path / "two" / "last.pt"), load_checkpoint(one.last)
    assert a["step"] == b["step"] > 5 and a["epochs_done"] == b["epochs_done"] == 1
    # Same global batches, global-batch BatchNorm statistics, globally normalised loss: only the
    # order of float additions differs (all-reduce of two half-batch gradients).
    noise = bn_fed_biases(build_from_checkpoint(b)[0])
    assert len(noise) == 6
    assert weight_gap(a["state_dict"], b["state_dict"], noise) < FLOAT_ORDER_GAP
    assert a["history"][0]["train_loss_mm"] == pytest.approx(b["history"][0]["train_loss_mm"], rel=1e-3)
    assert set(os.listdir(tmp_path / "two")) == set(os.listdir(one.out))   # rank 0 wrote each file once

    # resume the 2-process checkpoint in 1 process, against 1 process all along
    resumed = train(ddp_config(gt_cache, tmp_path / "two", epochs=2), resume=tmp_path / "two" / "last.pt",
                    progress=False, log=lambda s: None)
    straight = train(ddp_config(gt_cache, tmp_path / "straight", epochs=2), progress=False, log=lambda s: None)
    r, s = load_checkpoint(resumed.last), load_checkpoint(straight.last)
    assert r["epochs_done"] == s["epochs_done"] == 2 and r["step"] == s["step"]
    assert weight_gap(r["state_dict"], s["state_dict"], noise) < FLOAT_ORDER_GAP


def test_shard_split_ranks_stop_together(gt_cache, tmp_path):
    cfg = ddp_config(gt_cache, tmp_path / "shards")
    run = torchrun(cfg, 2, "--ddp-split", "shards", "--precision", "bf16")
    assert "2 processes (shards split)" in run.stdout and "bf16" in run.stdout
    ckpt = load_checkpoint(tmp_path / "shards" / "last.pt")
    assert ckpt["epochs_done"] == 1 and ckpt["step"] >= 1
    assert ckpt["config"]["precision"] == "bf16" and ckpt["config"]["data"]["ddp_split"] == "shards"


def test_global_batchnorm_is_batchnorm_outside_a_process_group():
    torch.manual_seed(0)
    bn = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6))
    synced = sync_batchnorm(__import__("copy").deepcopy(bn), torch.device("cpu"))
    assert isinstance(synced[1], GlobalBatchNorm)
    assert synced.state_dict().keys() == bn.state_dict().keys()
    x = torch.randn(32, 4)
    assert torch.allclose(bn(x), synced(x))
    assert torch.allclose(bn[1].running_var, synced[1].running_var)


def test_device_and_precision_choices(gt_cache, tmp_path):
    assert resolve_device("auto") == torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="precision"):
        Runtime.start("cpu", "fp8")
    with pytest.raises(ValueError, match="precision"):
        config_from_dict({"precision": "half"})
    # fp16 on the CPU exercises the loss-scaled path end to end (its scaler state is saved)
    cfg = ddp_config(gt_cache, tmp_path / "fp16", max_steps=3)
    cfg.precision = "fp16"
    result = train(cfg, progress=False, log=lambda s: None)
    ckpt = load_checkpoint(result.last)
    assert "scaler" in ckpt and ckpt["step"] == 3
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())
