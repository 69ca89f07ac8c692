"""Training on real Human3.6M ground-truth-2D shards: loss goes down, seeds, checkpoints, resume."""
from __future__ import annotations

import pickle
import subprocess

import numpy as np
import pytest
import torch

from auglift.cache import open_shard
from auglift.lifters.checkpoint import load_checkpoint, save_checkpoint
from auglift.lifters.config import (
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)
from auglift.lifters.shards import resolve_shards
from auglift.lifters.metrics import mpjpe_loss
from auglift.lifters.train import train

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def tiny_config(cache, out, **optim) -> TrainConfig:
    return config_from_dict({
        "model": {"name": "simple_baseline", "preset": "small"},
        "codec": {"channels": "xy"},
        "data": {"train": [str(cache)], "train_subjects": ["S1"], "shuffle_buffer": 2048, "chunk_frames": 256},
        "optim": {"epochs": 2, "batch_size": 128, "lr": 1e-2, **optim},
        "out": str(out), "seed": 0, "num_threads": 1,
    })


def root_relative_gt(cache, subject):
    return np.concatenate([(j - j[:, :1]) for j in (open_shard(i.path).read("joints_3d_cam")
                                                   for i in resolve_shards(cache, subjects=[subject]))])


def test_tiny_training_reduces_loss(gt_cache, tmp_path):
    cfg = tiny_config(gt_cache, tmp_path / "run", epochs=6, batch_size=64)
    cfg.data.val, cfg.data.val_subjects = [str(gt_cache)], ["S9"]
    result = train(cfg, progress=False, log=lambda s: None)
    losses = [h["train_loss_mm"] for h in result.history]
    vals = [h["val_mpjpe_mm"] for h in result.history]
    # the first epoch's mean already includes its own learning, so the drop after it is modest
    assert len(losses) == 6 and losses[-1] < 0.5 * losses[0], losses
    assert vals[-1] < 0.8 * vals[0], vals
    # it learnt from the 2D input: better than always answering the training set's mean pose
    mean_pose = root_relative_gt(gt_cache, "S1").mean(axis=0)
    test_gt = root_relative_gt(gt_cache, "S9")
    assert vals[-1] < 0.9 * np.linalg.norm(test_gt - mean_pose, axis=-1).mean()
    ckpt = load_checkpoint(result.best)
    assert ckpt["best"]["value"] == min(vals)
    assert ckpt["train_shards"]["subjects"] == ["S1"] and ckpt["train_shards"]["count"] == 8
    assert ckpt["train_shards"]["depth_kinds"] == ["metric"]
    assert len(ckpt["train_shards"]["config_hashes"]) == 1
    assert ckpt["codec"]["mean_box"] > 0 and ckpt["codec"]["config"]["channels"] == "xy"
    assert (result.out / "config.yaml").exists() and (result.out / "history.json").exists()


def test_same_seed_same_weights(gt_cache, tmp_path):
    a = train(tiny_config(gt_cache, tmp_path / "a", max_steps=6), progress=False, log=lambda s: None)
    b = train(tiny_config(gt_cache, tmp_path / "b", max_steps=6), progress=False, log=lambda s: None)
    cfg = tiny_config(gt_cache, tmp_path / "c", max_steps=6)
    cfg.seed = 1
    c = train(cfg, progress=False, log=lambda s: None)
    wa, wb, wc = (load_checkpoint(r.last)["state_dict"] for r in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_resume_equals_uninterrupted(gt_cache, tmp_path):
    straight = train(tiny_config(gt_cache, tmp_path / "straight", epochs=2), progress=False, log=lambda s: None)
    first = train(tiny_config(gt_cache, tmp_path / "split", epochs=1), progress=False, log=lambda s: None)
    assert load_checkpoint(first.last)["epochs_done"] == 1
    resumed = train(tiny_config(gt_cache, tmp_path / "split", epochs=2), resume=first.last, progress=False,
                    log=lambda s: None)
    s, r = load_checkpoint(straight.last), load_checkpoint(resumed.last)
    assert r["epochs_done"] == 2 and r["step"] == s["step"]
    for k in s["state_dict"]:
        assert torch.equal(s["state_dict"][k], r["state_dict"][k]), k
    assert [h["train_loss_mm"] for h in s["history"]] == pytest.approx([h["train_loss_mm"] for h in r["history"]])
    assert r["scheduler"]["last_epoch"] == 2


def test_resume_after_max_steps_continues_where_it_stopped(gt_cache, tmp_path):
    straight = train(tiny_config(gt_cache, tmp_path / "straight", epochs=1), progress=False, log=lambda s: None)
    cut = train(tiny_config(gt_cache, tmp_path / "split", epochs=1, max_steps=3), progress=False, log=lambda s: None)
    c = load_checkpoint(cut.last)
    assert (c["epochs_done"], c["step"], c["epoch_steps"]) == (0, 3, 3)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stray = tmp_path / "split" / f".last.pt.{dead.pid}.tmp"    # left by a writer that died
    stray.write_bytes(b"partial")
    logged = []
    resumed = train(tiny_config(gt_cache, tmp_path / "split", epochs=1), resume=cut.last, progress=False,
                    log=logged.append)
    assert not stray.exists() and any(str(stray) in line for line in logged)
    s, r = load_checkpoint(straight.last), load_checkpoint(resumed.last)
    assert r["step"] == s["step"] > 3 and r["epochs_done"] == 1
    for k in s["state_dict"]:                   # not replayed: the same weights as one straight epoch
        assert torch.equal(s["state_dict"][k], r["state_dict"][k]), k
    assert [h["train_loss_mm"] for h in r["history"]] == pytest.approx([h["train_loss_mm"] for h in s["history"]])


def test_checkpoint_is_plain_data(gt_cache, tmp_path):
    result = train(tiny_config(gt_cache, tmp_path / "run", max_steps=2), progress=False, log=lambda s: None)
    ckpt = torch.load(result.last, weights_only=True)  # no arbitrary unpickling needed
    assert config_from_dict(ckpt["config"]).model.preset == "small"
    assert ckpt["model"]["in_channels"] == 2 and ckpt["model"]["receptive_field"] == 1

    class Sneaky:
        def __reduce__(self):
            return (print, ("executed!",))

    bad = tmp_path / "bad.pt"
    save_checkpoint({"payload": Sneaky()}, bad)
    with pytest.raises(ValueError, match="bad.pt"):
        load_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"hello": 1}, other)
    with pytest.raises(ValueError, match="not an auglift lifter checkpoint"):
        load_checkpoint(other)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(bad, weights_only=True)


def test_config_yaml_round_trip_and_errors(tmp_path):
    cfg = load_config(REPO / "lifters" / "configs" / "simple_baseline_h36m_gt2d.yaml")
    assert cfg.model.name == "simple_baseline" and cfg.codec.channels == "xy"
    path = save_config(cfg, tmp_path / "c.yaml")
    assert config_to_dict(load_config(path)) == config_to_dict(cfg)
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  epoch: 3\n")
    with pytest.raises(ValueError, match=r"bad.yaml.*'optim'.*epoch"):
        load_config(bad)
    bad.write_text("codec:\n  channels: xyz\n")
    with pytest.raises(ValueError, match="codec.channels"):
        load_config(bad)
    cfg = apply_overrides(TrainConfig(), channels="xycd", train_subjects="S1,S5", epochs=3, flip=False)
    assert cfg.codec.channels == "xycd" and cfg.data.train_subjects == ["S1", "S5"]
    assert cfg.optim.epochs == 3 and cfg.data.flip is False


def test_masked_loss_ignores_padded_frames():
    pred = torch.zeros(2, 3, 17, 3)
    target = torch.zeros(2, 3, 17, 3)
    target[:, 2] = 1.0  # only the padded frame is wrong
    valid = torch.tensor([[True, True, False], [True, True, False]])
    assert mpjpe_loss(pred, target, valid).item() == 0.0
    assert mpjpe_loss(pred, target).item() == pytest.approx(np.sqrt(3) / 3)
