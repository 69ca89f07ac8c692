"""Evaluation on real H36M GT-2D shards: predictions, tables, depth-kind guard, figures, CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_train import tiny_config

from auglift.cache import key_for, open_shard, write_shard
from auglift.core.codec import CueCodec
from auglift.lifters.checkpoint import build_from_checkpoint, load_checkpoint, model_record, save_checkpoint
from auglift.lifters.shards import resolve_shards
from auglift.lifters.evaluate import DepthKindMismatch, action_group, evaluate, predict, score
from auglift.lifters.models import build_model
from auglift.lifters.train import shard_summary, train


@pytest.fixture(scope="module")
def checkpoints(gt_cache, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("runs")
    paths = {}
    for channels in ("xy", "xycd"):
        cfg = tiny_config(gt_cache, out / channels, epochs=1)
        cfg.codec.channels = channels
        paths[channels] = train(cfg, progress=False, log=lambda s: None).last
    return paths


def subject_glob(cache, subject):
    return str(cache / "h36m" / subject / "**" / "*.zarr")


def test_report_has_paper_table_layout(checkpoints, gt_cache, tmp_path):  # noqa: F811
    out = tmp_path / "res" / "table"
    report = evaluate([checkpoints["xy"], checkpoints["xycd"]], [[subject_glob(gt_cache, "S1")],
                      [subject_glob(gt_cache, "S9")]], names=["ID", "OOD"], out=out, progress=False)
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["results"] == json.loads(json.dumps(report["results"]))
    labels = list(saved["results"])
    assert labels == ["simple_baseline [small] xy", "simple_baseline [small] xycd"]
    for lab in labels:
        for name, subject in (("ID", "S1"), ("OOD", "S9")):
            r = saved["results"][lab][name]
            assert r["shards"] == 8 and r["frames"] == saved["test_sets"][name]["frames"]
            assert set(r) >= {"mpjpe", "p_mpjpe", "n_mpjpe", "pck", "auc", "per_joint", "per_group", "group_mean"}
            assert set(r["per_group"]) == {"Directions"}
            assert len(r["per_joint"]["mpjpe"]) == 17 and r["per_joint"]["mpjpe"][0] == 0.0  # root re-zeroed
            assert 0 < r["p_mpjpe"] < r["mpjpe"]
    md = out.with_suffix(".md").read_text()
    assert "| Model (channels) | ID | OOD |" in md
    a, b = (saved["results"][lab]["OOD"]["mpjpe"] for lab in labels)
    assert f"| Δ% ({labels[1]} vs {labels[0]}) |" in md
    assert f"{100 * (b - a) / a:+.1f}%" in md
    assert "## MPJPE per action (mm), OOD" in md and "| r_wrist |" in md


def test_predictions_match_a_direct_forward_pass(checkpoints, gt_cache):  # noqa: F811
    ckpt = load_checkpoint(checkpoints["xycd"])
    model, codec = build_from_checkpoint(ckpt)
    infos = resolve_shards(gt_cache, subjects=["S9"])[:2]
    preds = predict(model, codec, infos, batch_size=300)
    for info, pred, gt in zip(infos, preds.pred, preds.gt):
        with open_shard(info.path) as s:
            kp, conf, depth, joints = (s.read(n) for n in ("keypoints_2d", "confidence", "depth", "joints_3d_cam"))
        x = codec.encode(kp, np.array(info.image_size), confidence=conf, depth=depth)
        with torch.no_grad():
            direct = model(torch.from_numpy(x)[:, None])[:, 0].numpy() * 1000.0
        direct -= direct[:, :1]
        np.testing.assert_allclose(pred, direct, atol=1e-2)
        np.testing.assert_allclose(gt, joints - joints[:, :1], atol=1e-2)
    # test-time flipping averages two different predictions of every frame
    flipped = predict(model, codec, infos, batch_size=300, flip_test=True)
    assert not np.allclose(flipped.pred[0], preds.pred[0])
    np.testing.assert_allclose(flipped.gt[0], preds.gt[0], atol=1e-3)


def test_seq2seq_model_predicts_every_frame_once(gt_cache, tmp_path):  # noqa: F811
    infos = resolve_shards(gt_cache, subjects=["S9"])[:1]
    torch.manual_seed(0)
    model = build_model("motionbert", in_channels=2, preset="small").eval()
    codec = CueCodec.from_state_dict({"config": {"channels": "xy", "box_rescale": False}, "mean_box": None})
    preds = predict(model, codec, infos, batch_size=7)
    n = infos[0].n_frames
    assert preds.pred[0].shape == (n, 17, 3) and np.isfinite(preds.pred[0]).all()
    with open_shard(infos[0].path) as s:
        x = codec.encode(s.read("keypoints_2d", 0, 9), np.array(infos[0].image_size))
    with torch.no_grad():
        first = model(torch.from_numpy(x)[None])[0].numpy() * 1000.0
    np.testing.assert_allclose(preds.pred[0][:9], first - first[:, :1], atol=1e-2)


def relabelled_copy(src_root, dst_root, kind):
    """The same real arrays, labelled with another depth kind (as a relative-depth model's cache)."""
    for info in resolve_shards(src_root, subjects=["S9"])[:2]:
        with open_shard(info.path) as s:
            arrays = s.read_all()
            attrs = s.copy_attrs()
        attrs["depth_backend"] = {"name": "some-relative-model", "version": None, "params": {}, "kind": kind}
        attrs["provenance"]["depth"] = "real"
        write_shard(dst_root, key_for(info.dataset, info.subject, info.action, info.camera), arrays, attrs)
    return dst_root


def test_depth_kind_mismatch_is_refused(checkpoints, gt_cache, tmp_path):  # noqa: F811
    rel = relabelled_copy(gt_cache, tmp_path / "rel", "relative_inverse")
    with pytest.raises(DepthKindMismatch, match=r"relative_inverse.*--allow-depth-kind-mismatch"):
        evaluate([checkpoints["xycd"]], [[rel]], out=tmp_path / "never", progress=False)
    assert not (tmp_path / "never.json").exists()
    ok = evaluate([checkpoints["xycd"]], [[rel]], allow_depth_kind_mismatch=True, progress=False)
    assert ok["test_sets"]["test"]["depth_kinds"] == ["relative_inverse"]
    # a model without a depth channel does not care what depth the cache holds
    evaluate([checkpoints["xy"]], [[rel]], progress=False)


def test_joint_subset_and_action_groups(checkpoints, gt_cache):  # noqa: F811
    model, codec = build_from_checkpoint(load_checkpoint(checkpoints["xy"]))
    preds = predict(model, codec, resolve_shards(gt_cache, subjects=["S9"])[:2])
    res = score(preds, joints=[0, 1, 2, 3, 13])
    assert res["joint_names"] == ["pelvis", "r_hip", "r_knee", "r_ankle", "l_wrist"]
    assert len(res["per_joint"]["mpjpe"]) == 5
    preds.gt[0][:, 3] = np.nan  # a test skeleton without this joint
    assert score(preds)["dropped_joints_without_gt"] == [3]
    assert action_group("Walking 1") == "Walking" and action_group("Walking_2") == "Walking"
    assert action_group("WalkDog") == "WalkDog" and action_group("Directions") == "Directions"


def test_cli_train_evaluate_show(gt_cache, tmp_path):  # noqa: F811
    from auglift.cli import main

    runner = CliRunner()
    run = tmp_path / "run"
    r = runner.invoke(main, ["train", "--model", "simple_baseline", "--preset", "small", "--channels", "xyc",
                             "--train", str(gt_cache), "--train-subjects", "S1", "--out", str(run), "--epochs", "1",
                             "--batch-size", "256", "--quiet"])
    assert r.exit_code == 0, r.output
    assert (run / "last.pt").exists() and (run / "best.pt").exists()
    res = tmp_path / "res"
    r = runner.invoke(main, ["evaluate", "--checkpoint", str(run / "best.pt"), "--test", str(gt_cache),
                             "--subjects", "S9", "--name", "OOD", "--out", str(res), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "OOD MPJPE" in r.output and json.loads(res.with_suffix(".json").read_text())["subjects"] == ["S9"]
    shard = resolve_shards(gt_cache, subjects=["S9"])[0].path
    fig = tmp_path / "fig.png"
    r = runner.invoke(main, ["show", "--checkpoint", str(run / "best.pt"), "--shard", shard, "--frames", "0,5",
                             "--out", str(fig)])
    assert r.exit_code == 0, r.output
    assert fig.stat().st_size > 10_000
    r = runner.invoke(main, ["show", "--checkpoint", str(run / "best.pt"), "--shard", shard, "--frames", "99999",
                             "--out", str(fig)])
    assert r.exit_code != 0 and "outside" in r.output
    r = runner.invoke(main, ["train", "--train", str(tmp_path / "missing"), "--out", str(run)])
    assert r.exit_code != 0 and "missing" in r.output


def test_handmade_checkpoint_needs_train_record(tmp_path):
    """A checkpoint written through save_checkpoint round-trips through build_from_checkpoint."""
    torch.manual_seed(0)
    model = build_model("videopose3d", in_channels=4, preset="small")
    codec = CueCodec.from_state_dict({"config": {"channels": "xycd"}, "mean_box": 1.2})
    path = save_checkpoint({"model": model_record(model, "videopose3d", "small"), "codec": codec.state_dict(),
                            "state_dict": model.state_dict(), "train_shards": shard_summary([])}, tmp_path / "m.pt")
    again, codec2 = build_from_checkpoint(load_checkpoint(path))
    x = torch.randn(2, model.receptive_field, 17, 4)
    model.eval()
    assert torch.equal(again(x), model(x)) and codec2.mean_box == 1.2
