"""The precompute stage graph end to end on the real videos and samples: Dask cluster, failures
recorded per sequence, resume, overwrite, config conflicts, job-array parts, the JSON report."""
from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from auglift.cache import list_shards, open_shard
from auglift.cache.report import verify_report
from auglift.core.camera import project
from auglift.core.skeleton import to_h36m17
from auglift.pipeline.jobs import build_jobs, split_part
from auglift.pipeline.precompute import PrecomputeConfig, load_config, parse_params, parse_part, run_precompute


@pytest.fixture(scope="module")
def cluster():
    from auglift.pipeline.cluster import local_cluster

    with local_cluster(2) as c:  # the cluster the command starts, shared by this module's tests
        yield c


@pytest.fixture(scope="module")
def videos(shared_data, tmp_path_factory):
    """The two real videos plus a corrupted copy of one of them."""
    root = tmp_path_factory.mktemp("videos")
    for p in (shared_data / "videos").glob("*.mp4"):
        shutil.copy(p, root / p.name)
    data = bytearray((shared_data / "videos" / "street_multi_person.mp4").read_bytes())
    for j in range(60000, 120000):
        data[j] = (data[j] * 7 + 13) % 256
    (root / "broken.mp4").write_bytes(bytes(data))
    return root


def checksums(root) -> dict[str, dict[str, str]]:
    out = {}
    for p in list_shards(root):
        with open_shard(p) as s:
            out[s.key] = {k: v["sha256"] for k, v in s.attrs["arrays"].items()}
    return out


def test_videos_on_dask_with_a_corrupt_file(cluster, videos, tmp_path):
    out = tmp_path / "cache"
    cfg = PrecomputeConfig(scheduler=cluster.scheduler_address, batch_size=2)
    report, path = run_precompute("videos", videos, out, cfg, progress=False, log=None)
    s = report["summary"]
    assert s["shards"] == {"written": 2, "skipped": 0, "failed": 1}
    assert s["frames"] == 10 and s["frames_per_second"] > 0
    assert all(s["stage_seconds"][k] > 0 for k in ("decode", "detect", "write", "load"))
    (fail,) = report["failures"]
    assert fail["key"] == "videos/broken/video/0" and fail["file"] == str(videos / "broken.mp4")
    assert isinstance(fail["frame"], int) and "decode failed" in fail["message"]
    assert json.loads(path.read_text()) == report and path.parent == out / "reports"
    # models were built once per worker process, and both workers served the run
    builds = {}
    for seq in report["sequences"]:
        builds[seq["worker"]] = max(builds.get(seq["worker"], 0), seq["model_builds"])
    assert all(v == 1 for v in builds.values())
    keys = (out / "expected_keys.txt").read_text().split()
    assert keys == ["videos/broken/video/0", "videos/posetrack_000001/video/0", "videos/street_multi_person/video/0"]
    lines, ok = verify_report(out, keys)
    assert not ok and any("videos/broken/video/0" in ln and "missing" in ln for ln in lines)
    with open_shard(out / "videos/street_multi_person/video/0.zarr") as shard:
        a = shard.attrs
        assert a["image_size"] == [960, 540] and a["fps"] == pytest.approx(5.0)
        assert a["detector"]["name"] == "mediapipe" and a["depth_backend"]["kind"] == "landmark_z"
        assert a["provenance"] == {"keypoints_2d": "real", "confidence": "real", "depth": "real"}
        assert shard.n_frames == 5
    # same shards as a sequential, in-process run of the same tasks
    inline = tmp_path / "inline"
    run_precompute("videos", videos, inline, dataclasses.replace(cfg, scheduler=None, workers=0),
                   progress=False, log=None)
    assert checksums(inline) == checksums(out)


def test_resume_overwrite_and_config_conflict(cluster, videos, tmp_path):
    out = tmp_path / "cache"
    cfg = PrecomputeConfig(scheduler=cluster.scheduler_address)
    run_precompute("videos", videos, out, cfg, progress=False, log=None)
    first = checksums(out)
    again, _ = run_precompute("videos", videos, out, cfg, progress=False, log=None)
    assert again["summary"]["shards"] == {"written": 0, "skipped": 2, "failed": 1}
    assert {k["key"] for k in again["skipped"]} == set(first)
    redo, _ = run_precompute("videos", videos, out, dataclasses.replace(cfg, overwrite=True), progress=False, log=None)
    assert redo["summary"]["shards"]["written"] == 2 and checksums(out) == first
    # another configuration into the same root: refused per shard, unless --overwrite
    other = dataclasses.replace(cfg, depth="none")
    clash, _ = run_precompute("videos", videos, out, other, progress=False, log=None)
    assert clash["summary"]["shards"]["failed"] == 3
    assert sum("made with another configuration (config_hash" in f["message"] for f in clash["failures"]) == 2
    replaced, _ = run_precompute("videos", videos, out, dataclasses.replace(other, overwrite=True),
                                 progress=False, log=None)
    assert replaced["summary"]["shards"]["written"] == 2
    with open_shard(out / "videos/posetrack_000001/video/0.zarr") as shard:
        assert shard.attrs["depth_backend"]["kind"] == "none" and shard.attrs["provenance"]["depth"] == "none"
        assert np.isnan(shard.read("depth")).all()


def test_damaged_shard_is_rewritten(videos, tmp_path):
    out = tmp_path / "cache"
    cfg = PrecomputeConfig(workers=0)
    run_precompute("videos", videos, out, cfg, progress=False, log=None)
    good = checksums(out)
    shard = out / "videos/street_multi_person/video/0.zarr"
    chunk = next(p for p in (shard / "keypoints_2d").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(b"\0" * chunk.stat().st_size)  # damage on disk
    report, _ = run_precompute("videos", videos, out, cfg, progress=False, log=None)
    (seq,) = [s for s in report["sequences"] if s["key"] == "videos/street_multi_person/video/0"]
    assert seq["status"] == "written" and "failed verification" in seq["note"]
    assert checksums(out) == good


def test_samples_in_two_parts_with_ground_truth(shared_data, tmp_path):
    out = tmp_path / "cache"
    cfg = PrecomputeConfig(workers=0)
    r0, p0 = run_precompute("samples", shared_data / "samples", out, dataclasses.replace(cfg, part=(0, 2)),
                            progress=False, log=None)
    keys = (out / "expected_keys.txt").read_text().split()
    assert len(keys) == 8 and r0["summary"]["shards"]["written"] == 4 and "part0of2" in p0.name
    assert not verify_report(out, keys)[1]  # half the keys are missing
    r1, _ = run_precompute("samples", shared_data / "samples", out, dataclasses.replace(cfg, part=(1, 2)),
                           progress=False, log=None)
    assert r1["summary"]["shards"]["written"] == 4
    lines, ok = verify_report(out, keys)
    assert ok, lines
    # guided by each image's ground-truth 2D, BlazePose runs on a crop around the actor and finds
    # every one of them; on the whole frame (people="frame") it misses at least one, which is
    # stored as "no detection" and counted, not a crash
    assert r0["summary"]["frames_no_person"] + r1["summary"]["frames_no_person"] == 0
    assert {s["people"]["policy"] for s in r0["sequences"] + r1["sequences"]} == {"ground_truth"}
    whole, _ = run_precompute("samples", shared_data / "samples", tmp_path / "whole",
                              dataclasses.replace(cfg, people="frame"), progress=False, log=None)
    assert whole["summary"]["frames_no_person"] >= 1 and whole["config_hash"] != r0["config_hash"]
    gt = np.load(shared_data / "samples" / "h36m_test_h36m_body3d.npz")
    with open_shard(out / "samples/h36m-S1/Directions_1-000001/54138969.zarr") as shard:
        joints = shard.read("joints_3d_cam")
        assert shard.attrs["provenance"]["joints_3d_cam"] == "ground_truth"
        np.testing.assert_allclose(joints[0], gt["S"][0, :, :3] * 1000.0, rtol=1e-6)
        assert shard.read("frame_index").tolist() == [1] and shard.attrs["image_size"] == [1000, 1002]
        kp = shard.read("keypoints_2d")
        assert np.median(np.linalg.norm(kp[0] - gt["part"][0, :, :2], axis=-1)) < 20.0
        # the intrinsics come from the sample camera pickle: GT 3D projects onto the GT 2D
        cam = shard.attrs["intrinsics"]
        proj = project(joints[0], cam["f"], cam["c"], cam["k"], cam["p"])
        assert np.abs(proj - gt["part"][0, :, :2]).max() < 0.01
    with open_shard(out / "samples/3dhp-TS1/test-002001/0.zarr") as shard:
        j = shard.read("joints_3d_cam")[0]
        # 3DHP order mapped to H36M-17: the pelvis (3DHP index 14) comes first, in mm
        hp = np.load(shared_data / "samples" / "3dhp_test_3dhp_test.npz")
        np.testing.assert_allclose(j[0], hp["S"][0, 14, :3] * 1000.0, rtol=1e-6)
        cam = shard.attrs["intrinsics"]
        proj = project(j, cam["f"], cam["c"])
        assert np.abs(proj - to_h36m17(hp["part"][0, :, :2], "3dhp17")).max() < 2.0


def test_parts_are_disjoint_and_cover_everything(shared_data):
    jobs = build_jobs("samples", shared_data / "samples")
    parts = [split_part(jobs, (i, 3)) for i in range(3)]
    keys = [j.key for p in parts for j in p]
    assert sorted(keys) == sorted(j.key for j in jobs) and len(set(keys)) == len(jobs)
    assert [j.key for j in split_part(list(reversed(jobs)), (1, 3))] == [j.key for j in parts[1]]
    assert parse_part("2/4") == (2, 4)
    for bad in ("4/4", "1", "a/b", "-1/3"):
        with pytest.raises(ValueError):
            parse_part(bad)
    assert parse_params(["radius=3", "model=/m/x", "allow_download=true", "x=null"]) == \
        {"radius": 3, "model": "/m/x", "allow_download": True, "x": None}


def test_yaml_config(tmp_path):
    good = tmp_path / "p.yaml"
    good.write_text("detector: mediapipe\ndepth: none\nbatch_size: 4\npart: 1/3\n"
                    "detector_params:\n  min_detection_confidence: 0.3\n")
    cfg = load_config(good)
    assert (cfg.depth, cfg.batch_size, cfg.part) == ("none", 4, (1, 3))
    assert cfg.model_spec()["detector_params"] == {"min_detection_confidence": 0.3}
    bad = tmp_path / "bad.yaml"
    bad.write_text("detectr: mediapipe\n")
    with pytest.raises(ValueError, match="bad.yaml.*detectr"):
        load_config(bad)


def test_cli_exit_code_and_unknown_params(videos, tmp_path):
    from click.testing import CliRunner

    from auglift.cli import main

    runner = CliRunner()
    res = runner.invoke(main, ["precompute", "--dataset", "videos", "--root", str(videos), "--out",
                               str(tmp_path / "c"), "--workers", "0", "--quiet"])
    assert res.exit_code == 1 and "FAILED videos/broken/video/0" in res.output
    assert "2 written" in res.output
    res = runner.invoke(main, ["precompute", "--dataset", "videos", "--root", str(videos), "--out",
                               str(tmp_path / "c"), "--workers", "0", "--depth-param", "radius=3"])
    assert res.exit_code != 0 and "does not take ['radius']" in res.output
    res = runner.invoke(main, ["precompute", "--dataset", "videos", "--root", str(videos), "--out",
                               str(tmp_path / "c"), "--person", "confident"])
    assert res.exit_code != 0 and "single person" in res.output


def test_image_folders_dataset(shared_data, tmp_path):
    samples = shared_data / "samples"
    for folder, names in {"a": ["h36m_S1_Directions_1.54138969_000001.jpg", "h36m_S5_SittingDown.54138969_002061.jpg",
                                "h36m_S7_Greeting.55011271_000396.jpg"],          # all 1000x1002
                          "b": ["h36m_S8_WalkDog_1.55011271_000026.jpg"]}.items():  # 1000x1000
        (tmp_path / "frames" / folder).mkdir(parents=True)
        for i, name in enumerate(names):
            shutil.copy(samples / name, tmp_path / "frames" / folder / f"{i:06d}.jpg")
    out = tmp_path / "cache"
    report, _ = run_precompute("images", tmp_path / "frames", out, PrecomputeConfig(workers=0), progress=False,
                               log=None)
    assert report["summary"]["shards"]["written"] == 2 and report["summary"]["frames"] == 4
    with open_shard(out / "images/a/frames/0.zarr") as shard:
        assert shard.read("frame_index").tolist() == [0, 1, 2] and shard.attrs["image_size"] == [1000, 1002]
        assert shard.attrs["fps"] is None and "joints_3d_cam" not in shard.array_names
    with pytest.raises(ValueError, match="explicit root"):
        from auglift.pipeline.precompute import default_root

        default_root("images", shared_data)


def test_longest_sequences_start_first(cluster, shared_data, tmp_path):
    """Long sequences are submitted with higher priority, so a run does not end on one of them."""
    import av

    from auglift.pipeline.frames.video import iter_video_batches

    frames = next(iter_video_batches(shared_data / "videos" / "posetrack_000001.mp4", batch_size=5)).frames
    root = tmp_path / "videos"
    root.mkdir()
    for name, n in (("a_short", 3), ("b_long", 9), ("c_mid", 5)):   # job order: by name
        with av.open(str(root / f"{name}.mp4"), "w") as out:
            stream = out.add_stream("libx264", rate=25)
            stream.height, stream.width = frames.shape[1:3]
            stream.pix_fmt = "yuv420p"
            for i in range(n):   # back and forth over the real frames
                k = i % 8
                frame = av.VideoFrame.from_ndarray(frames[k if k < 5 else 8 - k], format="rgb24")
                for pkt in stream.encode(frame):
                    out.mux(pkt)
            for pkt in stream.encode():
                out.mux(pkt)
    cfg = PrecomputeConfig(scheduler=cluster.scheduler_address)
    report, _ = run_precompute("videos", root, tmp_path / "cache", cfg, progress=False, log=None)
    started = {s["key"].split("/")[1]: s["started"] for s in report["sequences"]}
    assert {s["key"].split("/")[1]: s["frames"] for s in report["sequences"]} == {"a_short": 3, "b_long": 9, "c_mid": 5}
    # two workers: the two longest start at once, the shortest waits for one of them
    assert started["a_short"] > max(started["b_long"], started["c_mid"])


def test_workers_keep_glibc_malloc_defaults(cluster):
    """Dask's nannies would set MALLOC_TRIM_THRESHOLD_, which pins glibc's mmap threshold and
    makes every frame buffer fresh kernel pages; the cluster precompute starts unsets it."""
    import os

    from distributed import Client

    with Client(cluster) as client:
        assert set(client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_")).values()) == {None}


def test_concealed_decode_errors_are_counted_per_sequence(shared_data, tmp_path):
    """A scrambled H.264 stream that FFmpeg still decodes (with errors concealed) is written,
    and the report counts its concealed frames, per sequence and in the summary."""
    root = tmp_path / "videos"
    root.mkdir()
    shutil.copy(shared_data / "videos" / "street_multi_person.mp4", root / "clean.mp4")
    data = bytearray((shared_data / "videos" / "posetrack_000001.mp4").read_bytes())
    rng = np.random.default_rng(0)
    for off in range(data.find(b"mdat") + 2000, len(data) - 100, 3000):  # inside the coded frames
        data[off:off + 20] = rng.integers(0, 256, 20, dtype=np.uint8).tobytes()
    (root / "scrambled.mp4").write_bytes(bytes(data))
    report, _ = run_precompute("videos", root, tmp_path / "cache", PrecomputeConfig(workers=0), progress=False,
                               log=None)
    seqs = {s["key"]: s for s in report["sequences"]}
    assert seqs["videos/clean/video/0"]["concealed"] == 0
    scrambled = seqs["videos/scrambled/video/0"]
    assert scrambled["status"] == "written" and scrambled["concealed"] == 5 == scrambled["frames"]
    assert "5 frames decoded with errors concealed" in scrambled["note"]
    assert report["summary"]["frames_concealed"] == 5
