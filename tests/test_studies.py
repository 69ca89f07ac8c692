"""Study plumbing: provenance, Δ%, tables, the results writer and the time transforms."""
from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from auglift.lifters import provenance
from auglift.studies import common, motion, paper
from auglift.studies.common import Provenance, StudyResult, delta_pct, md_table, write_results


# ------------------------------------------------------------------------------------ Δ%
def test_delta_pct_sign_and_value():
    assert delta_pct(100.0, 90.0) == pytest.approx(-10.0)      # lower error: negative, better
    assert delta_pct(80.0, 100.0) == pytest.approx(25.0)
    assert delta_pct(57.3, 57.3) == 0.0


@pytest.mark.parametrize("base,value", [(0.0, 5.0), (math.nan, 3.0), (3.0, math.nan), (None, 1.0), ("x", 1.0)])
def test_delta_pct_missing_is_nan(base, value):
    assert math.isnan(delta_pct(base, value))


def test_md_table_formats_and_checks_width():
    text = md_table(["Model", "ID", "OOD"], [["xy", 50.123, math.nan], ["xycd", 40.0, None], ["n", 17, 3]])
    lines = text.splitlines()
    assert lines[0] == "| Model | ID | OOD |"
    assert lines[1] == "|---|---:|---:|"
    assert lines[2] == "| xy | 50.1 | – |"
    assert lines[3] == "| xycd | 40.0 | – |"
    assert lines[4] == "| n | 17 | 3 |"          # counts stay integers
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        md_table(["a", "b", "c"], [[1, 2]])


# ------------------------------------------------------------------------------- provenance
def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def test_git_revision_reports_commit_and_dirty_flag(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.txt").write_text("one\n")
    _git(repo, "add", "a.txt")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first")
    sha = _git(repo, "rev-parse", "HEAD")
    assert provenance.git_revision(repo) == {"commit": sha, "dirty": False}
    # the folder results are written to does not count: rewriting its pages is the run itself
    (repo / "results").mkdir()
    (repo / "results" / "page.md").write_text("new\n")
    assert provenance.git_revision(repo) == {"commit": sha, "dirty": True}
    assert provenance.git_revision(repo, exclude=[repo / "results"]) == {"commit": sha, "dirty": False,
                                                                       "not_counted": ["results"]}
    (repo / "a.txt").write_text("two\n")
    assert provenance.git_revision(repo, exclude=[repo / "results"])["dirty"] is True


def test_git_revision_outside_a_repository(tmp_path):
    assert provenance.git_revision(tmp_path) == {"commit": None, "dirty": None}


def _prov(**kw) -> Provenance:
    base = dict(study="demo", command="auglift study run demo --size small --seed 3 --data-root ../shared/data",
                invoked="auglift study run demo", size="small", seed=3, data={"h36m": "S9,S11"},
                git={"commit": "0123456789abcdef0123", "dirty": True},
                machine={"processor": "x86_64", "cpu_model": "AMD EPYC", "cpu_count": 2, "torch": "2.13"},
                started_utc="2025-01-01T00:00:00+00:00", seconds=12.0)
    base.update(kw)
    return Provenance(**base)


def test_provenance_header_names_command_seed_data_revision_and_machine():
    header = "\n".join(_prov().header_lines())
    assert "`auglift study run demo --size small --seed 3 --data-root ../shared/data`" in header
    assert "small / 3" in header
    assert "h36m: S9,S11" in header
    assert "`0123456789ab` + uncommitted changes (dirty)" in header
    assert "AMD EPYC" in header and "2 CPUs" in header
    clean = "\n".join(_prov(git={"commit": "fedcba9876543210", "dirty": False}).header_lines())
    assert "`fedcba987654` (clean)" in clean and "dirty" not in clean


def test_provenance_start_records_this_repository():
    prov = Provenance.start("demo", "small", 0, {"root": "x"}, {"a": 1}, "auglift study run demo")
    assert prov.git["commit"] is None or len(prov.git["commit"]) == 40
    assert prov.machine["cpu_count"] >= 1
    assert "processor" in prov.machine


def test_write_results_page_json_and_index(tmp_path):
    res = StudyResult("demo", "Demo study", "What it shows.", data={"xy": {"ID": 50.0, "OOD": math.nan}})
    res.add("Table", md_table(["Model", "ID"], [["xy", 50.0]]))
    res.plots.append("demo_plot.png")
    md, js = write_results(tmp_path, res, _prov())
    text = md.read_text()
    assert text.startswith("# Demo study\n")
    assert text.index("| command |") < text.index("## Table")        # provenance before the numbers
    assert "![demo_plot](demo_plot.png)" in text
    payload = json.loads(js.read_text())
    assert payload["provenance"]["seed"] == 3
    assert payload["data"]["xy"]["OOD"] is None                       # NaN is not JSON
    (tmp_path / "other_page.md").write_text("# not a study\n")
    index = (tmp_path / "README.md").read_text()
    common.write_index(tmp_path)
    index = (tmp_path / "README.md").read_text()
    assert "[Demo study](demo.md)" in index and "0123456+dirty" not in index and "01234567+dirty" in index
    assert "[other_page.md](other_page.md)" in index


def test_incomplete_study_is_flagged(tmp_path):
    res = StudyResult("half", "Half", "s", complete=False)
    md, _ = write_results(tmp_path, res, _prov(study="half"))
    assert "**Incomplete:**" in md.read_text()
    assert "**incomplete**" in (tmp_path / "README.md").read_text()


# ------------------------------------------------------------------------------- paper anchors
def test_paper_cells_never_invent_numbers():
    assert paper.cell("ood_delta_pct") == "-10.1%"
    assert paper.cell("id_delta_pct") == "-4.0%"
    assert paper.cell("table10_ordinal_1cm_mpjpe") == "paper: n/a"
    assert paper.cell(None) == "paper: n/a"
    note = paper.sources_note(["ood_delta_pct", "made_up"])
    assert "arXiv:2508.07112" in note and "made_up" not in note


# ------------------------------------------------------------------------------- transforms
def _seq(n: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"keypoints_2d": rng.normal(size=(n, 17, 2)).astype(np.float32),
            "joints_3d_cam": rng.normal(size=(n, 17, 3)).astype(np.float32),
            "frame_index": np.arange(100, 100 + 5 * n, 5, dtype=np.int64)}


def test_reverse_frames_reverses_poses_and_renumbers():
    a = _seq()
    r = motion.reverse_frames(a)
    np.testing.assert_array_equal(r["joints_3d_cam"], a["joints_3d_cam"][::-1])
    np.testing.assert_array_equal(r["keypoints_2d"][0], a["keypoints_2d"][-1])
    np.testing.assert_array_equal(r["frame_index"], np.arange(7))
    np.testing.assert_array_equal(motion.reverse_frames(r)["joints_3d_cam"], a["joints_3d_cam"])


@pytest.mark.parametrize("speed,rows", [(2.0, [0, 2, 4, 6]), (0.5, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]),
                                        (1.0, [0, 1, 2, 3, 4, 5, 6]), (3.0, [0, 3, 6]), (1.5, [0, 1, 3, 4, 6])])
def test_change_speed_subsamples_or_repeats(speed, rows):
    a = _seq()
    out = motion.change_speed(a, speed)
    np.testing.assert_array_equal(out["joints_3d_cam"], a["joints_3d_cam"][rows])
    np.testing.assert_array_equal(out["frame_index"], np.arange(len(rows)))


def test_speed_keeps_one_frame_and_rejects_bad_factors():
    np.testing.assert_array_equal(motion.speed_indices(1, 4.0), [0])
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="speed must be a positive number"):
            motion.speed_indices(5, bad)
    with pytest.raises(ValueError, match="at least one frame"):
        motion.speed_indices(0, 1.0)


def test_reindex_rejects_ragged_arrays_and_bad_names():
    a = _seq()
    a["confidence"] = np.ones((6, 17), np.float32)
    with pytest.raises(ValueError, match="disagree on the number of frames"):
        motion.reverse_frames(a)
    with pytest.raises(ValueError, match="unknown time transform"):
        motion.transform_for("backwards")
    with pytest.raises(ValueError, match="bad speed transform"):
        motion.transform_for("speed_fast")
    np.testing.assert_array_equal(motion.transform_for("speed_2")(_seq())["frame_index"], np.arange(4))


def test_write_transformed_shards_round_trip(tmp_path):
    from auglift.cache import open_shard, verify_shard, write_shard

    a = _seq(9)
    a["confidence"] = np.full((9, 17), 0.9, np.float32)
    a["depth"] = np.linspace(3, 4, 9 * 17, dtype=np.float32).reshape(9, 17)
    a["bbox"] = np.tile(np.array([0, 0, 10, 10], np.float32), (9, 1))
    attrs = {"dataset": "h36m", "subject": "S9", "action": "Walking 1", "camera": "c0", "image_size": [100, 100],
             "intrinsics": None, "fps": 10.0, "skeleton": "h36m17", "config_hash": "abc",
             "detector": {"name": "simulated", "version": "1", "params": {}},
             "depth_backend": {"name": "simulated", "version": "1", "params": {}, "kind": "simulated_metric"},
             "provenance": {"keypoints_2d": "simulated", "confidence": "simulated", "depth": "simulated"}}
    src = write_shard(tmp_path / "src", "h36m/S9/Walking_1/c0", a, attrs)
    [out] = motion.write_transformed([src], tmp_path / "rev", "reversed")
    assert verify_shard(out).ok
    with open_shard(out) as s:
        assert s.attrs["time_transform"] == "reversed" and s.attrs["subject"] == "S9"
        np.testing.assert_allclose(s.read("depth"), a["depth"][::-1])
        np.testing.assert_array_equal(s.read("frame_index"), np.arange(9))
    mtime = out.stat().st_mtime_ns
    assert motion.write_transformed([src], tmp_path / "rev", "reversed") == [out]    # kept, not rewritten
    assert out.stat().st_mtime_ns == mtime
    [fast] = motion.write_transformed([src], tmp_path / "fast", "speed_2")
    with open_shard(fast) as s:
        assert s.n_frames == 5


# ------------------------------------------------------------------------------- study tables
def test_cross_input_deltas_compare_with_the_same_lifters_xy():
    from auglift.studies import cross_input
    from auglift.studies.cross_input_reading import interpretation
    from auglift.studies.seeds import collect

    results = {"sb xy": {"ID": {"mpjpe": 50.0}, "OOD": {"mpjpe": 100.0}},
               "sb xycd": {"ID": {"mpjpe": 45.0}, "OOD": {"mpjpe": 110.0}},
               "vp xy": {"ID": {"mpjpe": 40.0}, "OOD": {"mpjpe": 80.0}},
               "vp xycd": {"ID": {"mpjpe": 44.0}, "OOD": {"mpjpe": 60.0}}}
    labels = {"sb xy": ("sb", "xy"), "sb xycd": ("sb", "xycd"), "vp xy": ("vp", "xy"), "vp xycd": ("vp", "xycd")}
    deltas = cross_input.deltas_vs(results, labels, ["ID", "OOD"])
    assert deltas["sb xycd"] == pytest.approx({"ID": -10.0, "OOD": 10.0})
    assert deltas["vp xycd"] == pytest.approx({"ID": 10.0, "OOD": -25.0})
    assert deltas["sb xy"] == {"ID": None, "OOD": None}
    text = interpretation(collect({0: deltas}), labels, ["ID", "OOD"], ["OOD"])
    # one seed: no noise verdict, and that is said
    assert "no spread to judge by for sb (-10.0%, one seed)" in text


def test_cross_input_names_left_out_lifters_and_columns_in_order():
    from auglift.studies import caches, cross_input

    assert "poseformer and motionbert" in cross_input.size_note(cross_input.Config.for_size("small"))
    assert cross_input.size_note(cross_input.Config.for_size("full")) == ""
    cols = cross_input.columns_of(cross_input.Config.for_size("small"), real_ok=True)
    assert cols[:2] == [caches.ID, caches.ID_SH] and cols[-1] == caches.OOD_VIEWS   # synthetic views apart, last
    assert {cross_input.CAMERA, cross_input.ACTION, cross_input.SUBJECT, caches.OOD_3DHP} <= set(cols)


def test_latency_page_gives_the_papers_gpu_figures_with_their_models():
    from auglift.studies import latency

    # Section 4.4 of arXiv 2508.07112: HRNet-W48 44 ms, Depth Anything v2 Small 13.3 ms, MotionBERT 16.7 ms
    assert latency.paper_cell("detector") == "44 ms (HRNet-W48, GPU)"
    assert latency.paper_cell("depth") == "13.3 ms (Depth Anything v2 Small, GPU)"
    assert latency.paper_cell("lifter") == "16.7 ms (MotionBERT, GPU)"
    assert "44 + 13.3 + 16.7 = 74.0 ms/frame, the depth model 18%" in latency.paper_share()
    note = paper.sources_note(["latency_depth_ms"])
    assert "Section 4.4" in note and "paper: n/a" in note


@pytest.mark.parametrize("name", ["latency", "cross_input", "box_rescale", "ordinal", "sequence_length", "end_to_end"])
def test_every_study_has_a_small_and_a_larger_full_setting(name):
    import dataclasses

    from auglift.studies import study_module

    mod = study_module(name)
    small, full = mod.Config.for_size("small"), mod.Config.for_size("full")
    assert dataclasses.is_dataclass(small) and small != full
    assert isinstance(mod.TITLE, str) and mod.TITLE


def test_unknown_study_and_size_are_refused(tmp_path):
    from auglift.studies import run_study, study_module

    with pytest.raises(ValueError, match="unknown study 'tabel2'"):
        study_module("tabel2")
    with pytest.raises(ValueError, match="size must be one of"):
        run_study("latency", size="huge", out=tmp_path, work=tmp_path)


# ------------------------------------------------------------------------------- shared runs
def _tiny_cache(root: Path, subjects=("S1", "S8", "S9"), frames: int = 48) -> Path:
    """A few realistic-shaped shards: a pose seen by a pinhole camera, with simulated-style cues."""
    from auglift.cache import write_shard

    rng = np.random.default_rng(1)
    t = np.linspace(0, 2 * np.pi, frames)
    for i, subj in enumerate(subjects):
        J = rng.normal(0, 250, (1, 17, 3)) + np.stack([100 * np.sin(t + i), 50 * np.cos(t), 0 * t], -1)[:, None]
        J = (J - J[:, :1]) + np.array([0.0, 0.0, 4500.0])
        kp = J[..., :2] / J[..., 2:] * 1100 + 500
        a = {"keypoints_2d": kp.astype(np.float32), "confidence": np.full((frames, 17), 0.9, np.float32),
             "depth": (J[..., 2] / 1000).astype(np.float32),
             "bbox": np.tile(np.array([0, 0, 999, 999], np.float32), (frames, 1)),
             "frame_index": np.arange(frames), "joints_3d_cam": J.astype(np.float32)}
        attrs = {"dataset": "h36m", "subject": subj, "action": "Walking 1", "camera": "c0", "image_size": [1000, 1000],
                 "intrinsics": None, "fps": 10.0, "skeleton": "h36m17", "config_hash": "abc",
                 "detector": {"name": "simulated", "version": "1", "params": {}},
                 "depth_backend": {"name": "simulated", "version": "1", "params": {}, "kind": "simulated_metric"},
                 "provenance": {"keypoints_2d": "simulated", "confidence": "simulated", "depth": "simulated"}}
        write_shard(root, f"h36m/{subj}/Walking_1/c0", a, attrs)
    return root


def test_trained_lifters_are_reused_and_evaluated(tmp_path):
    from auglift.studies.context import Lifter, Schedule, StudyContext, train_config

    cache = _tiny_cache(tmp_path / "shards")
    ctx = StudyContext("small", 0, tmp_path, tmp_path / "work", tmp_path / "out", log=lambda s: None)
    lifter = Lifter("simple_baseline", "small")
    cfg = train_config(ctx, lifter, "xycd", [str(cache)], Schedule(epochs=1, batch_size=16, stride=1),
                       val=[str(cache)], train_subjects=("S1",), val_subjects=("S8",))
    assert cfg.data.train_subjects == ["S1"] and cfg.data.val_subjects == ["S8"] and cfg.seed == 0
    first = ctx.train("sb-xycd", cfg)
    assert first.name == "best.pt" and first.exists()       # chosen on the validation subject
    stamp = first.stat().st_mtime_ns
    assert ctx.train("sb-xycd", cfg) == first and first.stat().st_mtime_ns == stamp   # reused, not retrained
    cfg2 = train_config(ctx, lifter, "xycd", [str(cache)], Schedule(epochs=2, batch_size=16, stride=1),
                        val=[str(cache)], train_subjects=("S1",), val_subjects=("S8",))
    second = ctx.train("sb-xycd", cfg2)                      # a changed config trains anew, elsewhere
    assert second != first and second.exists() and first.stat().st_mtime_ns == stamp
    res = ctx.evaluate({"sb xycd": first}, {"test": [str(cache)]}, {"test": ["S9"]})
    r = res["sb xycd"]["test"]
    assert r["frames"] == 48 and np.isfinite(r["mpjpe"]) and 0 <= r["pck"] <= 100


def test_medium_trains_in_sittings_and_a_rerun_continues(tmp_path):
    import torch

    from auglift.studies import medium
    from auglift.studies.context import Lifter, Schedule, StudyContext, train_config

    cache = _tiny_cache(tmp_path / "shards", frames=96)

    def setup(work):
        ctx = StudyContext("medium", 0, tmp_path, tmp_path / work, tmp_path / "out", log=lambda s: None)
        return ctx, train_config(ctx, Lifter("simple_baseline", "small"), "xycd", [str(cache)],
                                 Schedule(epochs=2, batch_size=16, stride=1), val=[str(cache)],
                                 train_subjects=("S1",), val_subjects=("S8",))

    ctx, tc = setup("work")
    _, p = medium.train_sitting(ctx, "m", tc, minutes=1e-9)          # a sitting that ends after one step
    assert (p.steps, p.epochs_done, p.finished) == (1, 0, False)
    _, p = medium.train_sitting(ctx, "m", tc, minutes=1e-9)          # the next sitting continues it
    assert (p.steps, p.epochs_done, p.finished) == (2, 0, False)
    pick, p = medium.train_sitting(ctx, "m", tc, minutes=10)
    assert (p.steps, p.epochs_done, p.finished) == (12, 2, True)     # 96 windows / 16 = 6 steps an epoch
    stamp = pick.stat().st_mtime_ns
    assert medium.train_sitting(ctx, "m", tc, minutes=10)[1].finished and pick.stat().st_mtime_ns == stamp
    # three sittings reach the weights of one uninterrupted run
    ctx2, tc2 = setup("work2")
    pick2, _ = medium.train_sitting(ctx2, "m", tc2, minutes=10)
    a = torch.load(pick.parent / "last.pt", weights_only=False)["state_dict"]
    b = torch.load(pick2.parent / "last.pt", weights_only=False)["state_dict"]
    assert all(torch.allclose(a[k].float(), b[k].float()) for k in a)


def test_lifter_labels_and_slugs():
    from auglift.studies.context import Lifter

    lf = Lifter("videopose3d", "vp3d-9", (("channels", 128),))
    assert lf.label == "videopose3d [vp3d-9; channels=128]"
    assert lf.slug == "videopose3d-vp3d-9-channels128"


def test_cli_lists_studies_and_refuses_unknown_names():
    from click.testing import CliRunner

    from auglift.cli import main
    from auglift.studies import STUDIES

    out = CliRunner().invoke(main, ["study", "list"])
    assert out.exit_code == 0
    assert [line.split()[0] for line in out.output.strip().splitlines()] == list(STUDIES)
    bad = CliRunner().invoke(main, ["study", "run", "tabel2", "--out", "x", "--work", "y"])
    assert bad.exit_code != 0 and "unknown study ['tabel2']" in bad.output


def test_ordinal_reading_states_when_coarse_bins_beat_fine_ones_beyond_noise():
    from auglift.studies import caches, ordinal
    from auglift.studies.seeds import Spread

    keys = {"xy": ("xy", False, None), "f": ("xyo ORACLE 1 cm", False, 10.0), "c": ("xyo ORACLE 25 cm", False, 250.0)}

    def seeded(d):   # three seeds around each value, spread 1
        return {r: {t: Spread((v - 1.0, v, v + 1.0)) for t, v in cols.items()} for r, cols in d.items()}

    coarse_wins = {"f": {caches.ID: 5.0, caches.OOD_VIEWS: -10.0}, "c": {caches.ID: -8.0, caches.OOD_VIEWS: -20.0}}
    fine_wins = {"f": {caches.ID: -8.0, caches.OOD_VIEWS: -20.0}, "c": {caches.ID: 5.0, caches.OOD_VIEWS: -10.0}}
    assert "Ours runs the other way (without augmentation)" in ordinal._reading(seeded(coarse_wins), keys)
    assert "Ours runs the other way" not in ordinal._reading(seeded(fine_wins), keys)
    # the coarse bin ahead by less than twice the spread of the per-seed difference: within noise, not said
    tie = {"f": {caches.ID: Spread((-1.0, 0.0, 1.0)), caches.OOD_VIEWS: Spread((-10.0, -12.0, -8.0))},
           "c": {caches.ID: Spread((-2.0, 0.5, -1.0)), caches.OOD_VIEWS: Spread((-9.0, -14.0, -8.5))}}
    text = ordinal._reading(tie, keys)
    assert "Ours runs the other way" not in text and "within noise ID" in text


def test_box_rescale_reading_explains_where_rescaling_does_not_help():
    from auglift.studies import box_rescale, caches
    from auglift.studies.seeds import Spread

    keys = {"sb xy off": ("sb", "xy", False), "sb xycd off": ("sb", "xycd", False), "sb xy on": ("sb", "xy", True)}
    deltas = {"sb xy off": {caches.OOD_VIEWS: Spread((5.0, 5.2, 5.4)), caches.ID: Spread((-0.2, 0.1, -0.5))},
              "sb xycd off": {caches.OOD_VIEWS: Spread((1.0, -1.0, 0.5)), caches.ID: Spread((1.8, 2.0, 1.6))}}
    text = box_rescale._reading(deltas, keys)
    helps, flat = text.splitlines()[:2]
    assert "+5.2 ± 0.2%" in helps and "rescaling helps." in helps and "We think" not in helps
    assert "makes no difference beyond noise" in flat and "depth channel already gives" in flat


def test_sequence_length_reading_flags_xycd_worse_in_distribution():
    from auglift.studies import caches, sequence_length

    keys = {"a": (1, "xy"), "b": (1, "xycd"), "c": (9, "xy"), "d": (9, "xycd")}
    mp = {"a": {caches.ID: 123.1, caches.OOD_VIEWS: 231.0}, "b": {caches.ID: 137.1, caches.OOD_VIEWS: 230.0},
          "c": {caches.ID: 101.5, caches.OOD_VIEWS: 211.0}, "d": {caches.ID: 100.0, caches.OOD_VIEWS: 181.0}}
    brittle = {k: {"reversed": 0.0} for k in keys}
    text = sequence_length._reading(keys, mp, brittle, ["reversed"])
    assert "xycd is *worse* than xy in distribution at 1 frames" in text
    mp["b"][caches.ID] = 120.0
    assert "*worse*" not in sequence_length._reading(keys, mp, brittle, ["reversed"])
