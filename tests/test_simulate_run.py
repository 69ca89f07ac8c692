"""The simulator on real Human3.6M mocap: shards, labels, determinism, resume, CLI."""
import dataclasses
import json

import numpy as np
import pytest

from auglift.core.skeleton import H36M17_JOINTS
from auglift.pipeline.simulate import SimulateConfig, simulate_dataset
from auglift.pipeline.simulate.run import SUMMARY_NAME

# S11 "Directions": 4 cameras, one of which (54138969) has no Stacked-Hourglass file
SUBSET = dict(subjects=["S11"], actions=["Directions"])


def with_views(cfg: SimulateConfig, n: int) -> SimulateConfig:
    return dataclasses.replace(cfg, views=dataclasses.replace(cfg.views, num_views=n))


def checksums(root):
    from auglift.cache import list_shards, open_shard

    out = {}
    for p in list_shards(root):
        with open_shard(p) as s:
            out[s.key] = {k: v["sha256"] for k, v in s.attrs["arrays"].items()}
    return out


@pytest.fixture(scope="module")
def h36m_run(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    summary = simulate_dataset("h36m", shared_data, out, config=with_views(SimulateConfig(), 1),
                               log=None, **SUBSET)
    return out, summary


def test_shards_are_standard_verified_and_labelled_simulated(h36m_run, shared_data):
    from auglift.cache import list_shards, open_shard, verify_tree
    from auglift.pipeline.sources.base import get_dataset

    out, summary = h36m_run
    reports = verify_tree(out)
    assert len(reports) == 5 and all(r.ok for r in reports), [r.problems for r in reports]
    keys = sorted(r.key for r in reports)
    assert keys[-1] == "h36m/S11/Directions/virtual-0"
    adapter = get_dataset("h36m", shared_data)
    ref = next(r for r in adapter.list_sequences(subjects=["S11"])
               if r.action == "Directions" and r.camera == "55011271")
    seq = adapter.load(ref)
    with open_shard(next(p for p in list_shards(out) if "55011271" in str(p))) as s:
        a = s.attrs
        assert a["simulated"] is True and a["detector"]["name"] == "simulated"
        assert a["depth_backend"]["name"] == "simulated-capsules"
        assert a["depth_backend"]["kind"] == "simulated_metric"
        assert a["provenance"]["keypoints_2d"] == "simulated"
        assert a["provenance"]["confidence"] == a["provenance"]["depth"] == "simulated"
        assert a["provenance"]["ordinal"] == a["provenance"]["ordinal_100mm"] == "oracle"
        assert a["intrinsics"] == seq.cam.intrinsics() and a["image_size"] == [1000, 1000]
        arr = s.read_all()
    np.testing.assert_array_equal(arr["frame_index"], seq.frame_index)
    np.testing.assert_allclose(arr["joints_3d_cam"], seq.joints_3d_cam, atol=1e-3)
    uv = seq.cam.project(seq.joints_3d_cam)
    err = np.linalg.norm(arr["keypoints_2d"] - uv, axis=-1)
    assert 3.0 < np.median(err) < 15.0  # detector-like, not exact, not wild
    # depth: near each joint's own z (within a body's thickness) for the clearly visible joints
    seen = arr["confidence"] > 0.85
    dz = seq.joints_3d_cam[..., 2] / 1000 - arr["depth"]
    assert 0.02 < np.nanmedian(dz[seen]) < 0.15
    for b in (10, 100, 250):
        from auglift.core.codec import ordinal_depth

        np.testing.assert_array_equal(arr[f"ordinal_{b}mm"], ordinal_depth(seq.joints_3d_cam, b))


def test_summary_reports_the_shards_mean_confidence_per_joint(h36m_run):
    from auglift.cache import list_shards, open_shard

    out, summary = h36m_run
    saved = json.loads((out / SUMMARY_NAME).read_text())
    assert saved["shards"] == summary["shards"] == {"total": 5, "written": 5, "kept": 0, "failed": 0, "virtual": 1}
    conf = saved["mean_confidence"]
    assert list(conf) == list(H36M17_JOINTS)
    assert all(0.2 < v < 1.0 for v in conf.values())
    shards = []
    for p in list_shards(out):
        with open_shard(p) as s:
            shards.append(s.read("confidence"))
    np.testing.assert_allclose(list(conf.values()), np.concatenate(shards).mean(0), atol=1e-4)
    assert saved["frames"] == 5 * 365 and saved["simulated"] is True


def test_virtual_view_shows_the_same_motion_from_elsewhere(h36m_run):
    from auglift.cache import list_shards, open_shard

    out, _ = h36m_run
    shards = {p.parent.name + "/" + p.stem: p for p in list_shards(out)}
    with open_shard(shards["Directions/virtual-0"]) as v, open_shard(shards["Directions/55011271"]) as r:
        worlds = []
        for s in (v, r):
            R = np.asarray(s.attrs["extrinsics"]["R"])
            T = np.asarray(s.attrs["extrinsics"]["T"])
            worlds.append(s.read("joints_3d_cam").astype(np.float64) @ R + T)
        assert v.attrs["camera"] == "virtual-0" and v.attrs["virtual_camera"] is True
        assert v.attrs["intrinsics"]["k"] == [0.0, 0.0, 0.0]
        assert not np.allclose(v.attrs["extrinsics"]["R"], r.attrs["extrinsics"]["R"], atol=0.05)
        kp = v.read("keypoints_2d")
    np.testing.assert_allclose(worlds[0], worlds[1], atol=0.05)  # float32 round trips only
    assert np.isfinite(kp).all()


def test_same_seed_gives_identical_checksums_whatever_the_workers(h36m_run, shared_data, tmp_path):
    out, _ = h36m_run
    again = simulate_dataset("h36m", shared_data, tmp_path / "a", config=with_views(SimulateConfig(), 1),
                             workers=2, log=None, **SUBSET)
    assert again["shards"]["written"] == 5
    assert checksums(tmp_path / "a") == checksums(out)
    other = simulate_dataset("h36m", shared_data, tmp_path / "b",
                             config=with_views(SimulateConfig(seed=1), 1), log=None, **SUBSET)
    assert other["shards"]["written"] == 5
    first, second = checksums(out), checksums(tmp_path / "b")
    for key in first:
        assert first[key]["keypoints_2d"] != second[key]["keypoints_2d"]
        assert first[key]["joints_3d_cam"] == second[key]["joints_3d_cam"] or "virtual" in key


def test_resume_keeps_good_shards_and_redoes_broken_or_stale_ones(shared_data, tmp_path):
    from auglift.cache import list_shards

    cfg = SimulateConfig()
    first = simulate_dataset("h36m", shared_data, tmp_path, config=cfg, log=None, **SUBSET)
    assert first["shards"]["written"] == 4
    before = checksums(tmp_path)
    victim = list_shards(tmp_path)[0]
    chunk = next(p for p in (victim / "confidence").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(chunk.read_bytes()[:-7])  # truncated on disk: fails verification
    again = simulate_dataset("h36m", shared_data, tmp_path, config=cfg, log=None, **SUBSET)
    assert again["shards"] == {"total": 4, "written": 1, "kept": 3, "failed": 0, "virtual": 0}
    assert checksums(tmp_path) == before
    assert again["mean_confidence"] == pytest.approx(first["mean_confidence"], abs=1e-4)
    # another seed is another configuration: refused shard by shard, replaced only with overwrite
    other = dataclasses.replace(cfg, seed=3)
    refused = simulate_dataset("h36m", shared_data, tmp_path, config=other, log=None, **SUBSET)
    assert refused["shards"]["failed"] == 4 and checksums(tmp_path) == before
    assert all("another configuration" in e and "--overwrite" in e for e in refused["failures"])
    stale = simulate_dataset("h36m", shared_data, tmp_path, config=other, overwrite=True, log=None, **SUBSET)
    assert stale["shards"]["written"] == 4


def test_real_detections_mode_keeps_the_stacked_hourglass_keypoints(shared_data, tmp_path):
    from auglift.cache import list_shards, open_shard
    from auglift.pipeline.sources.base import get_dataset

    cfg = SimulateConfig(keypoints="real")
    summary = simulate_dataset("h36m", shared_data, tmp_path, config=cfg, log=None, **SUBSET)
    assert summary["real_keypoints_missing"] == ["h36m/S11/Directions/54138969"]
    adapter = get_dataset("h36m", shared_data)
    refs = {r.camera: r for r in adapter.list_sequences(subjects=["S11"]) if r.action == "Directions"}
    for path in list_shards(tmp_path):
        with open_shard(path) as s:
            seq = adapter.load(refs[s.attrs["camera"]])
            kp = s.read("keypoints_2d")
            if seq.keypoints_2d is None:
                assert s.attrs["provenance"]["keypoints_2d"] == "simulated"
            else:
                assert s.attrs["provenance"]["keypoints_2d"] == "real"
                np.testing.assert_array_equal(kp, seq.keypoints_2d.astype(np.float32))
            assert s.attrs["provenance"]["depth"] == "simulated"
    resumed = simulate_dataset("h36m", shared_data, tmp_path, config=cfg, log=None, **SUBSET)
    assert resumed["shards"]["kept"] == 4
    assert resumed["real_keypoints_missing"] == summary["real_keypoints_missing"]


def test_relative_depth_mode_is_affine_inverse_metric_depth_and_labelled(shared_data):
    from auglift.pipeline.simulate import config_from_dict, shard_rng, simulate_view
    from auglift.pipeline.simulate.sequence import shard_attrs
    from auglift.pipeline.sources.base import get_dataset

    adapter = get_dataset("h36m", shared_data)
    seq = adapter.load(adapter.list_sequences(subjects=["S11"])[4])
    metric_cfg = SimulateConfig()
    rel_cfg = config_from_dict({"depth": {"mode": "relative"}})
    metric = simulate_view(seq.joints_3d_cam, seq.cam, seq.image_size, metric_cfg, shard_rng(0, seq.key))
    rel = simulate_view(seq.joints_3d_cam, seq.cam, seq.image_size, rel_cfg, shard_rng(0, seq.key))
    np.testing.assert_array_equal(rel["keypoints_2d"], metric["keypoints_2d"])
    for f in range(0, len(seq), 25):
        ok = np.isfinite(metric["depth"][f])
        inv = 1.0 / metric["depth"][f][ok].astype(np.float64)
        slope, icept = np.polyfit(inv, rel["depth"][f][ok], 1)
        np.testing.assert_allclose(slope * inv + icept, rel["depth"][f][ok], rtol=1e-5)
        assert 0.5 <= slope <= 2.0 and 0.0 <= icept <= 0.5
    attrs = {m: shard_attrs(c, dataset="h36m", subject="S11", action=seq.action, camera=seq.camera,
                            cam=seq.cam, image_size=seq.image_size, fps=seq.fps, config_hash="x",
                            real_keypoints=False, virtual=False)["depth_backend"]["kind"]
             for m, c in (("metric", metric_cfg), ("relative", rel_cfg))}
    assert attrs == {"metric": "simulated_metric", "relative": "simulated_relative_inverse"}


def test_cli_simulate_writes_shards_and_prints_the_summary(shared_data, tmp_path):
    from click.testing import CliRunner

    from auglift.cli import main

    cfg = tmp_path / "sim.yaml"
    cfg.write_text("noise:\n  sigma: 0.02\n")
    res = CliRunner().invoke(main, ["simulate", "--dataset", "h36m", "--data-root", str(shared_data),
                                    "--out", str(tmp_path / "out"), "--subjects", "S11",
                                    "--actions", "Directions", "--config", str(cfg), "--seed", "5",
                                    "--backend", "hdf5"])
    assert res.exit_code == 0, res.output
    assert "4 shards (4 written" in res.output and "r_wrist" in res.output
    saved = json.loads((tmp_path / "out" / SUMMARY_NAME).read_text())
    assert saved["config"]["noise"]["sigma"] == 0.02 and saved["seed"] == 5
    assert len(list((tmp_path / "out").rglob("*.h5"))) == 4
    bad = tmp_path / "bad.yaml"
    bad.write_text("nosie: {}\n")
    res = CliRunner().invoke(main, ["simulate", "--data-root", str(shared_data), "--out", str(tmp_path / "x"),
                                    "--config", str(bad)])
    assert res.exit_code != 0 and "nosie" in res.output
