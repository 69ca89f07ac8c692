"""`auglift lift`: real video / images / caches -> 3D poses, npz + JSON + rendered MP4, by depth kind."""
from __future__ import annotations

import json
import shutil

import av
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from auglift.cli import main
from auglift.lifters.checkpoint import build_from_checkpoint, load_checkpoint
from auglift.lifters.config import config_from_dict
from auglift.lifters.shards import resolve_shards
from auglift.lifters.lift import LiftOptions, default_checkpoint, lift_shards
from auglift.lifters.predict import DepthKindMismatch, predict
from auglift.lifters.train import train
from auglift.pipeline.simulate import SimulateConfig, simulate_dataset
from auglift.pipeline.simulate.noise import DepthNoiseConfig

VIDEO = "posetrack_000001.mp4"


def simulated(shared_data, out, mode):
    cfg = SimulateConfig(depth=DepthNoiseConfig(mode=mode))
    simulate_dataset("h36m", shared_data, out, config=cfg, subjects=["S9"], actions=["Walking 1"], log=None)
    return out


def tiny_lifter(cache, out, model="videopose3d", channels="xycd"):
    preset = "small"
    cfg = config_from_dict({
        "model": {"name": model, "preset": preset}, "codec": {"channels": channels},
        "data": {"train": [str(cache)], "shuffle_buffer": 1024, "chunk_frames": 256},
        "optim": {"epochs": 1, "batch_size": 64, "max_steps": 5}, "out": str(out), "seed": 0, "num_threads": 1})
    return train(cfg, progress=False, log=lambda *_: None).last


@pytest.fixture(scope="module")
def landmark_z_cache(shared_data, tmp_path_factory):
    return simulated(shared_data, tmp_path_factory.mktemp("sim_lz"), "landmark_z")


@pytest.fixture(scope="module")
def landmark_z_lifter(landmark_z_cache, tmp_path_factory):
    return tiny_lifter(landmark_z_cache, tmp_path_factory.mktemp("vp_lz"))


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_lift_video_writes_npz_json_and_an_mp4_with_the_video_frame_count(shared_data, landmark_z_lifter, tmp_path):
    video = shared_data / "videos" / VIDEO
    result = run_cli("lift", video, "--checkpoint", landmark_z_lifter, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "out" / "videos" / "posetrack_000001" / "video" / "0"
    with av.open(str(video)) as c:
        n_video = sum(1 for _ in c.decode(video=0))
    with av.open(str(folder / "lift.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == n_video
    data = np.load(folder / "lift.npz")
    assert data["joints_3d"].shape == (n_video, 17, 3) and data["frame_index"].tolist() == list(range(n_video))
    found = data["person_found"]
    assert found.any()
    assert np.isfinite(data["joints_3d"][found]).all()
    np.testing.assert_allclose(data["joints_3d"][found][:, 0], 0.0, atol=1e-3)   # root-relative
    record = json.loads((folder / "lift.json").read_text())
    assert record["provenance"]["depth_kind"] == "landmark_z"
    assert record["provenance"]["detector"]["name"] == "mediapipe"
    assert len(record["provenance"]["lifter"]["sha256"]) == 64
    assert record["source"]["paths"] == [str(video.resolve())]
    assert (folder / "contact_sheet.png").stat().st_size > 0
    # resumable: a second run reuses the cached cues and gives the same poses
    again = run_cli("lift", video, "--checkpoint", landmark_z_lifter, "--out", tmp_path / "out", "--quiet",
                    "--no-render")
    assert again.exit_code == 0 and "1 skipped" in again.output
    np.testing.assert_array_equal(np.load(folder / "lift.npz")["joints_3d"], data["joints_3d"])


def test_a_frame_with_nobody_gives_nan_rows_flagged_not_a_crash(shared_data, landmark_z_lifter, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    person = Image.open(shared_data / "samples" / "h36m_S1_Directions_1.54138969_000001.jpg").convert("RGB")
    person.save(folder / "000000.jpg")
    Image.new("RGB", person.size, (128, 128, 128)).save(folder / "000001.jpg")
    result = run_cli("lift", folder, "--checkpoint", landmark_z_lifter, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out" / "images" / "frames" / "frames" / "0"
    data = np.load(out / "lift.npz")
    assert data["person_found"].tolist() == [True, False]
    assert np.isfinite(data["joints_3d"][0]).all() and np.isnan(data["joints_3d"][1]).all()
    assert json.loads((out / "lift.json").read_text())["frames_without_person"] == [1]
    with av.open(str(out / "lift.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 2


def test_lift_on_a_cache_gives_exactly_the_predictions_evaluate_scores(landmark_z_cache, landmark_z_lifter, tmp_path):
    shards = resolve_shards(landmark_z_cache)[:2]
    lift_shards(shards, tmp_path, LiftOptions(landmark_z_lifter, render=False), log=None)
    model, codec = build_from_checkpoint(load_checkpoint(landmark_z_lifter))
    scored = predict(model, codec, shards)   # what evaluate scores (targets on)
    for info, pose in zip(shards, scored.pred):
        np.testing.assert_array_equal(np.load(tmp_path / info.key / "lift.npz")["joints_3d"], pose)


def test_a_lifter_refuses_cues_of_another_depth_kind_naming_both(shared_data, landmark_z_cache, tmp_path):
    metric_cache = simulated(shared_data, tmp_path / "metric", "metric")
    metric_lifter = tiny_lifter(metric_cache, tmp_path / "vp_metric")
    with pytest.raises(DepthKindMismatch, match=r"'metric' depth.*simulated_landmark_z"):
        lift_shards(resolve_shards(landmark_z_cache), tmp_path / "x", LiftOptions(metric_lifter), log=None)
    result = run_cli("lift", landmark_z_cache, "--checkpoint", metric_lifter, "--out", tmp_path / "y")
    assert result.exit_code != 0 and "landmark_z" in result.output and "metric" in result.output
    assert not (tmp_path / "y").exists()
    ok = run_cli("lift", landmark_z_cache, "--checkpoint", metric_lifter, "--out", tmp_path / "y", "--no-render",
                 "--allow-depth-kind-mismatch")
    assert ok.exit_code == 0, ok.output
    # training on two depth families at once is refused too
    mixed = tmp_path / "mixed"
    shutil.copytree(metric_cache, mixed / "a")
    shutil.copytree(landmark_z_cache, mixed / "b")
    with pytest.raises(ValueError, match="mix depth families"):
        tiny_lifter(mixed, tmp_path / "never")


def test_without_a_default_lifter_lift_names_the_command_that_makes_it(landmark_z_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("AUGLIFT_LIFTERS", str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match="make lifters"):
        default_checkpoint("videopose3d", "xycd", "landmark_z")
    result = run_cli("lift", landmark_z_cache, "--out", tmp_path / "out")
    assert result.exit_code != 0 and "make lifters" in result.output


def test_lift_all_people_writes_one_output_per_track_with_its_track_id(shared_data, landmark_z_lifter, tmp_path):
    from test_people import write_swap_video

    write_swap_video(tmp_path / "swap.mp4", shared_data)
    result = run_cli("lift", tmp_path / "swap.mp4", "--checkpoint", landmark_z_lifter, "--out", tmp_path / "out",
                     "--all-people", "--quiet", "--no-render")
    assert result.exit_code == 0, result.output
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "out" / "videos").rglob("lift.json"))]
    keys = [r["key"] for r in records]
    assert len(keys) == 2 and keys[0] == "videos/swap/video/0" and keys[1].startswith("videos/swap/video/0-track")
    assert len({r["track_id"] for r in records}) == 2
    assert all(r["people"]["identity_switches"] == 0 for r in records)
    subject_only = run_cli("lift", tmp_path / "swap.mp4", "--checkpoint", landmark_z_lifter, "--out",
                           tmp_path / "one", "--quiet", "--no-render")
    assert subject_only.exit_code == 0 and len(list((tmp_path / "one" / "videos").rglob("lift.json"))) == 1
