"""Dataset adapters on the real data in shared/data (Human3.6M 10 fps copy, 3DHP / H36M samples)."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_datasets_fixtures import write_3dhp_test, write_3dhp_train

from auglift.core.camera import Camera
from auglift.core.skeleton import bone_lengths, to_h36m17
from auglift.pipeline.jobs import adapter_jobs
from auglift.pipeline.safe_pickle import load_pickle
from auglift.pipeline.sources.base import get_dataset

H36M_SH_JOINTS = [0, 1, 2, 3, 4, 5, 6, 8, 11, 12, 13, 14, 15, 16]   # same point in SH and GT


@pytest.fixture(scope="module")
def h36m(shared_data):
    return get_dataset("h36m", shared_data)


def test_h36m_every_sequence_and_camera_loads(h36m, shared_data):
    refs = h36m.list_sequences()
    files = sorted(shared_data.glob("h36m/S*/MyPoses/3D_positions/*.h5"))
    assert len(files) == 205 and len(refs) == 4 * 205
    no_sh = []
    for ref in refs:
        seq = h36m.load(ref)
        with h5py.File(h36m.root / ref.source) as f:
            n = f["3D_positions"].shape[1]
        assert seq.joints_3d_cam.shape == (n, 17, 3) and np.isfinite(seq.joints_3d_cam).all()
        assert seq.joints_3d_cam[:, :, 2].min() > 1000            # in front of the camera, mm
        assert seq.fps == 10.0 and seq.frame_index[-1] == 5 * (n - 1)
        if seq.keypoints_2d is None:
            no_sh.append(ref.key)
    assert no_sh == ["h36m/S11/Directions/54138969"]          # the one detection file the release lacks


def test_h36m_test_subjects_reproject_onto_sh_detections(h36m):
    errors, per_sequence = [], []
    for ref in h36m.list_sequences(split="test"):
        seq = h36m.load(ref)
        if seq.keypoints_2d is None:
            continue
        e = np.linalg.norm(seq.cam.project(seq.joints_3d_cam) - seq.keypoints_2d, axis=-1)
        errors.append(e)
        per_sequence.append(np.median(e[:, H36M_SH_JOINTS]))
    all_joints = np.concatenate(errors)
    median_all = float(np.median(all_joints))
    median_same = float(np.median(all_joints[:, H36M_SH_JOINTS]))
    print(f"\nS9/S11, {len(errors)} sequence-cameras, {len(all_joints)} frames: median reprojection error "
          f"{median_all:.2f} px over all 17 joints, {median_same:.2f} px over the 14 joints SH and GT share")
    assert median_all < 15 and median_same < 10
    assert np.median(per_sequence) < 10


def test_h36m_matches_the_sample_annotations(h36m, shared_data):
    z = np.load(shared_data / "samples" / "h36m_test_h36m_body3d.npz")
    for name, part, S in zip(z["imgname"], z["part"], z["S"]):
        subject, action, camera, frame = re.fullmatch(r".*/(S\d+)_(\w+)\.(\d+)_(\d+)\.jpg", str(name)).groups()
        seq = h36m.load(h36m.ref(subject, action.replace("_", " "), camera))
        row = np.flatnonzero(seq.frame_index == int(frame) - 1)   # image names are 1-based
        assert len(row) == 1, name
        np.testing.assert_allclose(seq.cam.project(seq.joints_3d_cam[row[0]]), part[:, :2], atol=0.01)
        np.testing.assert_allclose(seq.joints_3d_cam[row[0]] / 1000, S[:, :3], atol=1e-4)


def test_h36m_bone_length_constant(h36m):
    from auglift.pipeline.sources.pw3d import H36M_TRAIN_BONE_LENGTHS, standardize_to_h36m

    per_subject = []
    for subject in h36m.splits["train"]:
        refs = [r for r in h36m.list_sequences(subjects=[subject]) if r.camera == "54138969"]
        per_subject.append(np.concatenate([bone_lengths(h36m.world_joints(r)) for r in refs]).mean(0))
    np.testing.assert_allclose(np.mean(per_subject, 0), H36M_TRAIN_BONE_LENGTHS, atol=0.06)
    # an H36M pose standardised to its own subject's bone lengths is unchanged
    seq = h36m.load(h36m.ref("S9", "Walking", "54138969"))
    own = bone_lengths(seq.joints_3d_cam[0].astype(np.float64))
    np.testing.assert_allclose(standardize_to_h36m(seq.joints_3d_cam, own), seq.joints_3d_cam, atol=0.05)


def test_3dhp_samples_project_with_the_pickled_intrinsics(shared_data):
    cams = {**load_pickle(shared_data / "samples" / "3dhp_cameras_test.pkl"),
            **load_pickle(shared_data / "samples" / "3dhp_cameras_train.pkl")}
    for npz in ("3dhp_test_3dhp_test.npz", "3dhp_test_3dhp_train.npz"):
        z = np.load(shared_data / "samples" / npz)
        for name, part, S in zip(z["imgname"], z["part"], z["S"]):
            cam = cams[str(name).rsplit("_", 1)[0]]
            err = np.abs(Camera(np.eye(3), np.zeros(3), cam["f"], cam["c"]).project(S[:, :3], distort=False)
                         - part[:, :2])
            assert err.max() < 2.0, (name, err.max())


def test_3dhp_train_adapter_on_real_sample(shared_data, tmp_path):
    """S4/Seq2 camera 0 with the real calibration and the real pose at frame 1033 (0-based 1032)."""
    pk = load_pickle(shared_data / "samples" / "3dhp_cameras_train.pkl")["S4_Seq2_Cam0"]
    z = np.load(shared_data / "samples" / "3dhp_test_3dhp_train.npz")
    R, t = pk["R"], pk["T"].ravel() * 1000                       # [R | t], t in mm
    cam = Camera(R=R, T=-R.T @ t, f=pk["f"].ravel(), c=pk["c"].ravel(), width=2048, height=2048)
    real = z["S"][0, :, :3] * 1000
    poses = np.stack([real + [20 * i, 0, 0] for i in range(-2, 3)])   # frames 1030..1034, real at 1032
    write_3dhp_train(tmp_path / "S4" / "Seq2", {0: cam}, {0: poses}, np.arange(1030, 1035))
    adapter = get_dataset("3dhp", tmp_path, cameras=(0,))
    seq = adapter.load(adapter.list_sequences(subjects=["S4"])[0])
    row = int(np.flatnonzero(seq.frame_index == 1032)[0])
    np.testing.assert_allclose(seq.joints_3d_cam[row], to_h36m17(real, "3dhp17"), atol=1e-3)
    err = np.abs(seq.cam.project(seq.joints_3d_cam[row]) - to_h36m17(z["part"][0, :, :2], "3dhp17"))
    assert err.max() < 2.0
    np.testing.assert_allclose(seq.cam.world_to_camera(seq.cam.camera_to_world(seq.joints_3d_cam)),
                               seq.joints_3d_cam, atol=1e-3)


def test_3dhp_test_adapter_on_real_sample(shared_data, tmp_path):
    """TS1 frame 2001 (img_002001.jpg): the fitted intrinsics match the published ones."""
    pk = load_pickle(shared_data / "samples" / "3dhp_cameras_test.pkl")["TS1"]
    z = np.load(shared_data / "samples" / "3dhp_test_3dhp_test.npz")
    real3, real2 = z["S"][0, :, :3] * 1000, z["part"][0, :, :2]
    pinhole = Camera(np.eye(3), np.zeros(3), pk["f"].ravel(), pk["c"].ravel())
    rng = np.random.default_rng(0)
    others = [real3 + rng.normal(0, 300, 3) for _ in range(7)]
    annot3 = np.stack(others[:3] + [real3] + others[3:])
    annot2 = pinhole.project(annot3, distort=False)
    annot2[3] = real2                                             # the real annotation of that frame
    write_3dhp_test(tmp_path / "TS1", annot3, annot2, np.ones(8))
    seq = get_dataset("3dhp", tmp_path).load(get_dataset("3dhp", tmp_path).list_sequences()[0])
    np.testing.assert_allclose(seq.cam.f, pk["f"].ravel(), rtol=2e-3)
    np.testing.assert_allclose(seq.cam.c, pk["c"].ravel(), atol=3.0)
    err = np.abs(seq.cam.project(seq.joints_3d_cam[3]) - to_h36m17(real2, "3dhp17"))
    assert err.max() < 2.0 and seq.extras["intrinsics_fit_rms_px"] < 1.0


def test_datasets_command_lists_every_adapter(shared_data):
    from click.testing import CliRunner

    from auglift.cli import main

    result = CliRunner().invoke(main, ["datasets", "--data-root", str(shared_data)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(re.match(rf"h36m\s+found\s+{re.escape(str(shared_data / 'h36m'))}$", ln) for ln in lines)
    for name in ("3dhp", "3dpw", "fit3d", "custom"):
        assert any(re.match(rf"{name}\s+missing\s", ln) for ln in lines), name
    assert "train: S1 S5 S6 S7 S8" in result.output and "test: s10 s11" in result.output


def test_raw_frame_adapters_read_each_file_header_once(shared_data, tmp_path, monkeypatch):
    """Listing, sizing and loading every sample reads each annotation file once (not once per
    sample); sizing and loading a video read its header once; a replaced file is read again. A
    sample job's errors name its image (a file that exists), not `<annotations>.npz:<row>`."""
    from auglift.pipeline.sources import raw_frames

    raw_frames._read_version.cache_clear()
    opened, probed = [], []
    real_load, real_probe = np.load, raw_frames.probe_video
    monkeypatch.setattr(raw_frames.np, "load", lambda path, **kw: opened.append(str(path)) or real_load(path, **kw))
    monkeypatch.setattr(raw_frames, "probe_video", lambda path: probed.append(path) or real_probe(path))
    root = shutil.copytree(shared_data / "samples", tmp_path / "samples")
    samples = get_dataset("samples", root)
    refs = samples.list_sequences()
    seqs = [samples.load(ref) for ref in refs]
    assert len(refs) > len(set(opened)) == len(opened) == 3
    assert all(s.joints_3d_cam.shape == (1, 17, 3) for s in seqs)
    assert all((root / ref.source).is_file() for ref in refs)     # a sample's source is its image,
    assert sorted(Path(j.main_file) for j in adapter_jobs("samples", root)) == sorted(root / r.source for r in refs)
    npz = root / ("h36m_test_h36m_body3d.npz" if refs[0].source.startswith("h36m_") else "3dhp_test_3dhp_test.npz")
    os.utime(npz, ns=(npz.stat().st_atime_ns, npz.stat().st_mtime_ns + 10**9))   # replaced: a new version
    again = samples.load(refs[0])
    assert opened[-1] == str(npz) and len(opened) == 4
    np.testing.assert_array_equal(again.joints_3d_cam, seqs[0].joints_3d_cam)
    videos = get_dataset("videos", shared_data)
    vrefs = videos.list_sequences()
    frames = [videos.n_frames(r) for r in vrefs]
    fps = [videos.load(r).fps for r in vrefs]
    assert len(probed) == len(vrefs) == 2 and all(n > 0 for n in frames) and all(f > 0 for f in fps)
