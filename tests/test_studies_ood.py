"""Issue 15: held-out OOD splits, the spread over seeds and its "within noise" rule, --size medium."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from auglift.pipeline.simulate.run import SUMMARY_NAME
from auglift.studies import heldout, seeds
from auglift.studies.seeds import Spread, collect, fmt_delta_spread, fmt_spread, spread


# ------------------------------------------------------------------------------- seeds
def test_spread_is_mean_and_sample_std_and_skips_missing_seeds():
    s = spread([1.0, 2.0, None, 6.0, math.nan])
    assert s.values == (1.0, 2.0, 6.0) and s.mean == pytest.approx(3.0)
    assert s.std == pytest.approx(math.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 2))
    assert fmt_spread(s) == "3.0 ± 2.6"
    one = spread([4.25])
    assert math.isnan(one.std) and one.within_noise() is None and fmt_spread(one) == "4.2"
    assert fmt_spread(spread([])) == "–"


@pytest.mark.parametrize("values, within", [
    ((-5.0, -6.0, -7.0), False),   # mean -6, std 1: 6 >= 2
    ((-1.0, -3.0, 1.0), True),     # mean -1, std 2: 1 < 4
    ((-2.0, -2.0, -2.0), False),   # no spread at all: any non-zero difference is beyond it
    ((0.0, 0.0, 0.0), False),
])
def test_within_noise_is_mean_under_twice_the_std(values, within):
    s = Spread(values)
    assert s.within_noise() is within
    assert ("(within noise)" in fmt_delta_spread(s)) is within
    assert seeds.verdict(s) == ("within noise" if within else "beyond noise")


def test_collect_turns_per_seed_nested_numbers_into_spreads():
    per = {0: {"a": {"x": 1.0, "y": None}, "b": {"x": 3.0}},
           1: {"a": {"x": 2.0, "y": 5.0}, "b": {}},
           2: {"a": {"x": 3.0, "y": 7.0}, "b": {"x": 5.0}}}
    out = collect(per)
    assert out["a"]["x"].values == (1.0, 2.0, 3.0)
    assert out["a"]["y"].values == (5.0, 7.0)           # seed 0 had none
    assert out["b"]["x"].values == (3.0, 5.0)           # seed 1 lacked the key
    assert seeds.to_json(out)["a"]["x"] == {"mean": 2.0, "std": 1.0, "n": 3, "values": [1.0, 2.0, 3.0],
                                            "within_noise": False}


@pytest.mark.parametrize("text, ok", [("0,1,2", (0, 1, 2)), ("3", (3,)), ("0,,1", (0, 1)),
                                      ("0,x", None), ("1,1", None), ("", None)])
def test_parse_seeds(text, ok):
    if ok is None:
        with pytest.raises(ValueError, match="--seeds"):
            seeds.parse_seeds(text)
    else:
        assert seeds.parse_seeds(text) == ok


def test_context_for_seed_keeps_the_simulated_data_of_the_first_seed(tmp_path):
    from auglift.studies import make_context

    ctx = make_context("small", 0, tmp_path, tmp_path, tmp_path, seeds=(0, 1, 2))
    assert ctx.all_seeds == (0, 1, 2) and ctx.cache_seed == 0
    two = ctx.for_seed(2)
    assert two.seed == 2 and two.cache_seed == 0 and two.seeds == (0, 1, 2)
    assert make_context("small", 5, tmp_path, tmp_path, tmp_path).all_seeds == (5,)


def test_simulated_caches_of_different_seeds_live_apart(tmp_path, shared_data):
    """Studies of seeds 0 and 1 in one --work make two caches (neither replaces the other);
    --seeds 1,2 makes its caches with seed 1 and finds them again."""
    from auglift.studies import caches, make_context

    ds = dataclasses.replace(caches.data_size("small"), actions=("Directions",), workers=1)
    made = {}
    for run_seeds in ((0,), (1,), (1, 2)):
        ctx = make_context("small", run_seeds[0], shared_data, tmp_path, tmp_path, log=lambda s: None, seeds=run_seeds)
        made[run_seeds] = caches.h36m_sh2d(ctx, ds)
    assert made[(0,)] == tmp_path / "cache" / "h36m_sh2d" and made[(1,)] == made[(1, 2)] != made[(0,)]
    stamps = {json.loads((p / "study_stamp.json").read_text())["config_hash"] for p in (made[(0,)], made[(1,)])}
    assert len(stamps) == 2 and all((p / SUMMARY_NAME).is_file() for p in (made[(0,)], made[(1,)]))


def test_reading_calls_ties_within_noise_and_gives_a_cause():
    from auglift.studies import caches
    from auglift.studies.cross_input_reading import interpretation

    labels = {"sb xy": ("sb", "xy"), "sb xycd": ("sb", "xycd"), "vp xy": ("vp", "xy"), "vp xycd": ("vp", "xycd")}
    dsp = {"sb xy": {}, "vp xy": {},
           "sb xycd": {caches.ID: Spread((-6.0, -5.0, -7.0)), heldout.CAMERA: Spread((-1.0, 2.0, -2.5))},
           "vp xycd": {caches.ID: Spread((3.0, 4.0, 3.5)), heldout.CAMERA: Spread((-9.0, -10.0, -8.0))}}
    text = interpretation(dsp, labels, [caches.ID, heldout.CAMERA], [heldout.CAMERA])
    assert "xycd beats xy beyond noise for sb (-6.0 ± 1.0%)" in text
    assert "xycd is *worse* than xy beyond noise for vp (+3.5 ± 0.5%)" in text
    assert "differ by less than twice the spread over seeds (within noise) for sb (-0.5 ± 2.3%)" in text
    # the headline pools the camera-free columns: 1 win (vp), 1 tie (sb)
    assert "Over 2 lifter × column cells, xycd beats xy beyond noise in 1, is worse beyond noise in 0" in text
    assert "within noise (or has no spread) in 1" in text and "we think the cause" in text


# ------------------------------------------------------------------------------- held-out splits
@pytest.fixture(scope="module")
def split_cache(shared_data, tmp_path_factory):
    """SIMULATED shards of real H36M S9 "Walking" and "SittingDown" through the 4 real cameras."""
    from auglift.pipeline.simulate import simulate_dataset

    out = tmp_path_factory.mktemp("sim_split")
    summary = simulate_dataset("h36m", shared_data, out, subjects=["S9"], actions=["Walking", "SittingDown"], log=None)
    assert summary["shards"]["written"] == 8
    return out


@pytest.mark.parametrize("action, group", [("Sitting 1", "Sitting"), ("SittingDown", "SittingDown"),
                                           ("SittingDown_2", "SittingDown"), ("Walking", "Walking")])
def test_action_group(action, group):
    assert heldout.action_group(action) == group


def test_held_out_splits_keep_camera_and_actions_apart(split_cache):
    from auglift.lifters.shards import ShardInfo

    def info(paths):
        return [ShardInfo.read(p) for p in paths]

    train = info(heldout.restricted_train(split_cache, ["S9"]))
    cam = info(heldout.camera_test(split_cache, ["S9"]))
    act = info(heldout.action_test(split_cache, ["S9"]))
    # training: three real cameras, no frame of the held-out camera, no sitting
    assert {i.camera for i in train} == {"54138969", "55011271", "58860488"}
    assert {i.action for i in train} == {"Walking"}
    # camera test: only the held-out camera, only what training had of actions
    assert [(i.camera, i.action) for i in cam] == [(heldout.HELD_OUT_CAMERA, "Walking")]
    # action test: the held-out action through the training cameras only
    assert {i.action for i in act} == {"SittingDown"} and {i.camera for i in act} == {i.camera for i in train}
    keys = [{i.key for i in s} for s in (train, cam, act)]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    with pytest.raises(ValueError, match="no shard.*S1"):
        heldout.restricted_train(split_cache, ["S1"])


def test_reversed_test_motion_is_the_exact_reverse(split_cache, tmp_path):
    from auglift.cache import open_shard
    from auglift.lifters.shards import resolve_shards
    from auglift.studies import motion

    src = [i.path for i in resolve_shards(str(split_cache))][:2]
    out = motion.write_transformed(src, tmp_path / "rev", "reversed")
    for a, b in zip(src, out):
        with open_shard(a) as s, open_shard(b) as r:
            for name in ("keypoints_2d", "confidence", "depth", "joints_3d_cam"):
                np.testing.assert_array_equal(r.read(name), s.read(name)[::-1])
            np.testing.assert_array_equal(r.read("frame_index"), np.arange(s.n_frames))


# ------------------------------------------------------------------------------- runner / CLI
def test_seeds_and_medium_are_refused_where_they_do_not_apply(tmp_path):
    from click.testing import CliRunner

    from auglift.cli import main
    from auglift.studies import run_study

    with pytest.raises(ValueError, match="--size medium exists for cross_input only"):
        run_study("box_rescale", size="medium", out=tmp_path, work=tmp_path)
    with pytest.raises(ValueError, match="reports one seed only"):
        run_study("latency", seeds=(0, 1), out=tmp_path, work=tmp_path)
    r = CliRunner().invoke(main, ["study", "run", "cross_input", "--seeds", "0,zero", "--out", str(tmp_path)])
    assert r.exit_code != 0 and "--seeds '0,zero': expected comma-separated integers" in r.output


def test_reproduce_command_names_the_seeds():
    from auglift.studies.common import reproduce_command

    cmd = reproduce_command("ordinal", "small", 0, "../shared/data", seeds=(0, 1, 2))
    assert "--seeds 0,1,2" in cmd and "--seed " not in cmd
    assert "--seed 4 " in reproduce_command("ordinal", "small", 4, "../shared/data", seeds=(4,))


def test_medium_progress_reads_epochs_and_whether_validation_stopped_improving(tmp_path):
    from auglift.studies.medium import progress_of

    hist = [{"epoch": e, "step": 10 * e, "seconds": 6.0, "val_mpjpe_mm": v}
            for e, v in zip(range(1, 7), (90.0, 80.0, 70.0, 71.0, 72.0, 70.5))]
    (tmp_path / "history.json").write_text(json.dumps(hist))
    p = progress_of(tmp_path, 60, False)
    assert (p.epochs_done, p.steps, p.best_epoch, p.best_val_mm) == (6, 60, 3, 70.0)
    assert p.stopped_improving is True and p.seconds == pytest.approx(36.0)
    (tmp_path / "history.json").write_text(json.dumps(hist[:3]))
    assert progress_of(tmp_path, 60, False).stopped_improving is None      # 3 validations: too few to tell
    hist[-1]["val_mpjpe_mm"] = 60.0
    (tmp_path / "history.json").write_text(json.dumps(hist))
    assert progress_of(tmp_path, 60, False).stopped_improving is False
    from auglift.studies.medium import _state
    state = _state({"sb xy": progress_of(tmp_path, 60, False)}, False, 5.0)   # 6 epochs of 6 s: 54 x 6 s left
    assert "sb xy (6/60 epochs; about 5 min more at its rate so far)" in state



def test_medium_table_gives_our_and_the_papers_delta_against_xy():
    from auglift.studies import caches
    from auglift.studies.context import Lifter
    from auglift.studies.medium import Progress, _table

    sb = Lifter("simple_baseline", "paper")
    labels = {f"{sb.label} {ch}": (sb, ch) for ch in ("xy", "xyc", "xycd")}
    prog = {lab: Progress(60, 14160, 60, True, 55, 80.0, 60, False, 3600.0) for lab in labels}
    results = {f"{sb.label} {ch}": {caches.ID: {"mpjpe": mm}} for ch, mm in (("xy", 80.0), ("xycd", 76.0))}
    rows = {line.split(" | ")[1]: line.split(" | ") for line in _table(labels, prog, results).splitlines()
            if line.startswith(f"| {sb.label} ")}
    assert rows["xycd"][2:6] == ["76.0", "54.6", "-5.0%", "-5.0%"]      # (76 - 80) / 80; (54.6 - 57.5) / 57.5
    assert rows["xyc"][2:6] == ["–", "58.5", "–", "+1.7%"]              # not evaluated: no Δ%
    assert rows["xy"][4:6] == ["", ""]
    prog[f"{sb.label} xycd"] = dataclasses.replace(prog[f"{sb.label} xycd"], epochs_done=10, finished=False)
    rows = {line.split(" | ")[1]: line.split(" | ") for line in _table(labels, prog, results).splitlines()
            if line.startswith(f"| {sb.label} ")}
    assert rows["xycd"][4] == "unfinished"                            # no Δ% between unequal trainings

# ------------------------------------------------------------------------------- a whole tiny run
def test_cross_input_over_two_seeds_writes_every_ood_column_with_its_spread(shared_data, tmp_path):
    """Real H36M mocap (simulated cues), one tiny lifter pair, 2 seeds: the page has the held-out and
    re-timed columns, mean ± std cells, a generated reading and the --seeds / --set command."""
    import torch

    from auglift.studies import caches, cross_input, run_study
    from auglift.studies.context import Lifter, Schedule

    cfg = cross_input.Config((Lifter("videopose3d", "small"),), Schedule(epochs=1, batch_size=64, stride=8,
                                                                        val_every=1, max_steps=3),
                             caches.DataSize(actions=("Directions 1", "Sitting 1"), workers=1), ("xy", "xycd"),
                             transforms=("reversed",))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        md = run_study("cross_input", "small", 0, shared_data, tmp_path / "out", tmp_path / "work", log=lambda s: None,
                       config=cfg, seeds=(0, 1), overrides=["test_subjects=S11"])
    finally:
        torch.set_num_threads(threads)
    text = md.read_text()
    data = json.loads((tmp_path / "out" / "cross_input.json").read_text())["data"]
    assert "`auglift study run cross_input --size small --seeds 0,1 --data-root" in text
    assert "--set test_subjects=S11`" in text and "| size / seeds | small / 0, 1 |" in text
    for column in (heldout.CAMERA, heldout.ACTION, heldout.SUBJECT, "reversed", caches.ID):
        assert column in data["columns"] and column in text
    label = "videopose3d [small] xycd"
    d = data["delta_pct"][label][heldout.CAMERA]
    assert d["n"] == 2 and len(d["values"]) == 2 and d["within_noise"] == (abs(d["mean"]) < 2 * d["std"])
    assert f"{d['mean']:+.1f} ± {d['std']:.1f}%" in text
    # seed 1 trained its own lifters, on the same simulated caches
    ck = {s: data["per_seed"][s]["checkpoints"][label] for s in ("0", "1")}
    assert ck["0"] != ck["1"]
    assert "**Headline (the columns that do not use the simulator's cameras:" in text
    assert "restricted to S11" in text


def test_an_evaluation_is_kept_beside_its_checkpoint_and_redone_when_the_test_changes(sim_cache, sim_checkpoint,
                                                                                      tmp_path):
    import shutil

    from auglift.studies.context import evaluate_checkpoint

    ckpt = tmp_path / "run" / "last.pt"
    ckpt.parent.mkdir()
    shutil.copy(sim_checkpoint, ckpt)
    test = tmp_path / "test"
    shutil.copytree(sim_cache, test)
    first = evaluate_checkpoint(str(ckpt), "sb", {"T": [str(test)]}, {}, False, "cpu")
    [memo] = ckpt.parent.glob("eval-*.json")
    assert json.loads(memo.read_text())["mpjpe"] == first["T"]["mpjpe"] and first["T"]["frames"] > 0
    stamp = memo.stat().st_mtime_ns
    assert evaluate_checkpoint(str(ckpt), "sb", {"T": [str(test)]}, {}, False, "cpu") == first
    assert memo.stat().st_mtime_ns == stamp                                  # read back, not recomputed
    # one test shard fewer: another test set, evaluated anew
    shutil.rmtree(sorted(p for p in test.rglob("*.zarr"))[0])
    second = evaluate_checkpoint(str(ckpt), "sb", {"T": [str(test)]}, {}, False, "cpu")
    assert second["T"]["frames"] < first["T"]["frames"] and len(list(ckpt.parent.glob("eval-*.json"))) == 2


def test_set_overrides_fields_and_refuses_unknown_ones():
    from auglift.studies import cross_input
    from auglift.studies.common import apply_overrides

    base = cross_input.Config.for_size("small")
    cfg = apply_overrides(base, ["schedule.epochs=3", "channels=xy,xycd", "held_out=false", "lifters=videopose3d",
                                 "test_subjects=S11"])
    assert (cfg.schedule.epochs, cfg.channels, cfg.held_out, cfg.test_subjects) == (3, ("xy", "xycd"), False, ("S11",))
    assert [lf.model for lf in cfg.lifters] == ["videopose3d"] and cfg.schedule.stride == base.schedule.stride
    for bad, msg in (("schedule.epoch=3", "Schedule has no field 'epoch'"), ("epochs", "expected FIELD=VALUE"),
                     ("schedule.epochs=three", "cannot be read"), ("lifters=posenet", "this size's lifters are")):
        with pytest.raises(ValueError, match=msg):
            apply_overrides(base, [bad])


def test_reading_flags_an_under_trained_wider_input_when_xycd_loses_in_distribution():
    from auglift.studies import caches
    from auglift.studies.cross_input_reading import interpretation

    labels = {"vp xy": ("vp", "xy"), "vp xycd": ("vp", "xycd")}
    dsp = {"vp xy": {}, "vp xycd": {caches.ID: Spread((28.0, 25.0, 31.0)), heldout.CAMERA: Spread((19.0, 14.0, 25.0))}}
    text = interpretation(dsp, labels, [caches.ID, heldout.CAMERA], [heldout.CAMERA])
    assert "xycd is worse than xy in distribution too (+28.0 ± 3.0%, beyond noise)" in text
    dsp["vp xycd"][caches.ID] = Spread((-6.0, -5.0, -7.0))
    assert "under-trained" not in interpretation(dsp, labels, [caches.ID, heldout.CAMERA], [heldout.CAMERA])
