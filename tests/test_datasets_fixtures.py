"""Dataset adapters on tiny fixtures written in each dataset's own on-disk format.

The builders here write the files the way the releases do (HDF5 with R transposed and char-code
names for H36M, a row-major CDF, MATLAB v5 cells and a v7.3/HDF5 mat with its 512-byte header
for 3DHP, a protocol-2 latin1 pickle for 3DPW, JSON for Fit3D) from a synthetic person whose
geometry is known, and the tests check the adapters recover it. test_datasets_real.py reuses
some builders with real values.
"""
from __future__ import annotations

import json
import pickle

import h5py
import numpy as np
import pytest

from auglift.core.camera import Camera, look_at
from auglift.core.skeleton import H36M32_TO_17, MPI3DHP28_TO_17, bone_lengths, to_h36m17
from auglift.pipeline.sources.base import DatasetError, SequenceRef, get_dataset, left_right_agreement

# A standing person facing +y, right side at +x, z up (mm), in H36M-17 order.
STANDING = np.array([
    [0, 0, 1000], [130, 0, 1000], [130, 10, 550], [130, 0, 100], [-130, 0, 1000], [-130, 10, 550],
    [-130, 0, 100], [0, -10, 1240], [0, 0, 1500], [0, 110, 1610], [0, 10, 1720], [-160, 0, 1480],
    [-170, 20, 1200], [-170, 60, 950], [160, 0, 1480], [170, 20, 1200], [170, 60, 950]], np.float64)


def motion(n: int, seed: int = 0) -> np.ndarray:
    """(n, 17, 3) mm: the standing pose turning about z and walking, with small joint jitter."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 17, 3))
    for t in range(n):
        a = 0.3 * np.sin(t / 5)
        rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
        out[t] = STANDING @ rz.T + [200 * np.sin(t / 7), 30 * t, 0] + rng.normal(0, 5, (17, 3))
    return out


def ring_cameras(n: int = 4, radius: float = 4500.0) -> list[Camera]:
    cams = []
    for i in range(n):
        a = 2 * np.pi * i / n + 0.3
        eye = np.array([radius * np.cos(a), radius * np.sin(a), 1600.0])
        cams.append(Camera(R=look_at(eye, np.array([0, 0, 1000.0])), T=eye, f=np.array([1140.0, 1146.0]),
                           c=np.array([510.0, 505.0]), k=np.array([-0.2, 0.24, -0.003]),
                           p=np.array([-0.001, 0.0008]), width=1000, height=1000, name=str(i)))
    return cams


def to_h36m32(j17: np.ndarray) -> np.ndarray:
    out = np.repeat(j17[..., :1, :], 32, axis=-2)
    out[..., list(H36M32_TO_17), :] = j17
    return out


# ---------------------------------------------------------------------------------- Human3.6M
H36M_CAMS = ("54138969", "55011271", "58860488", "60457274")
# MPII-16 joint i of the SH files is H36M-17 joint MPII_FROM_H36M17[i] (spine: thorax, see README)
MPII_FROM_H36M17 = (3, 2, 1, 4, 5, 6, 0, 8, 8, 10, 16, 15, 14, 11, 12, 13)


def write_h36m_cameras(path, subjects=("S1", "S9")):
    cams = dict(zip(H36M_CAMS, ring_cameras()))
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for s in subjects:
            for i, (name, cam) in enumerate(cams.items()):
                g = f.create_group(f"subject{s[1:]}/camera{i + 1}")
                g["R"] = cam.R.T                        # stored transposed, as in the release
                g["T"] = cam.T.reshape(3, 1)
                g["f"], g["c"] = cam.f.reshape(2, 1), cam.c.reshape(2, 1)
                g["k"], g["p"] = cam.k.reshape(3, 1), cam.p.reshape(2, 1)
                g["Name"] = np.frombuffer(name.encode(), np.uint8).astype(np.float64).reshape(-1, 1)
    return cams


def write_h36m_baseline(root, n=40):
    cams = write_h36m_cameras(root / "cameras.h5")
    world = {("S1", "Photo 1"): motion(n, 1), ("S9", "Walking"): motion(n + 3, 2)}
    for (s, action), j17 in world.items():
        d = root / s / "MyPoses" / "3D_positions"
        d.mkdir(parents=True, exist_ok=True)
        with h5py.File(d / f"{action}.h5", "w") as f:
            f.create_dataset("3D_positions", data=to_h36m32(j17).reshape(len(j17), 96).T.astype(np.float32),
                             compression="gzip")
        sh = root / s / "StackedHourglass"
        sh.mkdir(parents=True, exist_ok=True)
        for name, cam in cams.items():
            if (s, name) == ("S9", "55011271"):
                continue                               # like S11 Directions: one detection file missing
            uv = cam.project(cam.world_to_camera(j17))[:, list(MPII_FROM_H36M17)]
            stem = action.replace(" ", "_").replace("Photo", "TakingPhoto")   # the SH spelling
            with h5py.File(sh / f"{stem}.{name}.h5", "w") as f:
                f["poses"] = uv.astype(np.float32)
    return cams, world


def test_h36m_baseline_layout(tmp_path):
    cams, world = write_h36m_baseline(tmp_path / "h36m")
    adapter = get_dataset("h36m", tmp_path)            # the data root: finds h36m/ beneath it
    assert adapter.root == tmp_path / "h36m" and adapter.root_found()
    refs = adapter.list_sequences()
    assert [r.key for r in refs[:4]] == [f"h36m/S1/Photo 1/{c}" for c in H36M_CAMS]
    assert len(refs) == 8 and {r.subject for r in adapter.list_sequences(split="test")} == {"S9"}
    seq = adapter.load(refs[1])
    cam = cams["55011271"]
    np.testing.assert_allclose(seq.joints_3d_cam, cam.world_to_camera(world[("S1", "Photo 1")]), atol=0.02)
    np.testing.assert_allclose(seq.cam.R, cam.R, atol=1e-12)
    np.testing.assert_allclose(seq.cam.T, cam.T)
    # short sequences, no video: taken as the 5x-decimated copy
    assert seq.fps == 10.0 and list(seq.frame_index[:3]) == [0, 5, 10]
    assert seq.image_size == (1000, 1000) and adapter.load(refs[0]).image_size == (1000, 1002)
    # SH detections found under their other spelling, mapped MPII-16 -> H36M-17, no confidence
    assert seq.keypoints_2d.shape == (40, 17, 2) and seq.confidence is None
    assert "no confidence" in seq.detections_note
    proj = seq.cam.project(seq.joints_3d_cam)
    copied = [0, 1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 16]
    np.testing.assert_allclose(seq.keypoints_2d[:, copied], proj[:, copied], atol=0.01)
    missing = adapter.load(adapter.ref("S9", "Walking", "55011271"))
    assert missing.keypoints_2d is None and "no Stacked-Hourglass" in missing.detections_note
    assert adapter.load(adapter.ref("S9", "Walking", "55011271")).joints_3d_cam.shape == (43, 17, 3)
    assert get_dataset("h36m", tmp_path, frame_step=1).load(refs[0]).fps == 50.0


def test_h36m_official_layout_cdf_and_video(tmp_path):
    import cv2
    from cdflib.cdfwrite import CDF

    root = tmp_path / "h36m"
    cams = write_h36m_cameras(root / "cameras.h5", ("S1",))
    j17 = motion(12, 3)
    d = root / "S1" / "MyPoseFeatures" / "D3_Positions"
    d.mkdir(parents=True)
    cdf = CDF(str(d / "Directions 1.cdf"), cdf_spec={"Majority": "Row_major"})
    cdf.write_var({"Variable": "Pose", "Data_Type": CDF.CDF_DOUBLE, "Num_Elements": 1, "Rec_Vary": True,
                   "Dim_Sizes": [12, 96]}, var_data=to_h36m32(j17).reshape(1, 12, 96))
    cdf.close()
    (root / "S1" / "Videos").mkdir()
    video = root / "S1" / "Videos" / "Directions 1.58860488.mp4"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 50, (32, 32))
    for i in range(12 * 2):                            # a video at twice the pose rate
        w.write(np.full((32, 32, 3), i, np.uint8))
    w.release()
    adapter = get_dataset("h36m", root)
    assert len(adapter.list_sequences()) == 4
    seq = adapter.load(adapter.ref("S1", "Directions 1", "58860488"))
    np.testing.assert_allclose(seq.joints_3d_cam, cams["58860488"].world_to_camera(j17), atol=0.02)
    assert seq.video_path == video and seq.fps == 25.0 and list(seq.frame_index[:3]) == [0, 2, 4]
    assert seq.keypoints_2d is None
    # without a video the 12-frame root is taken as the decimated copy
    assert adapter.load(adapter.ref("S1", "Directions 1", "54138969")).fps == 10.0


def test_h36m_long_sequences_are_50fps(tmp_path):
    root = tmp_path / "h36m"
    write_h36m_cameras(root / "cameras.h5", ("S1",))
    d = root / "S1" / "MyPoses" / "3D_positions"
    d.mkdir(parents=True)
    with h5py.File(d / "Eating.h5", "w") as f:
        f["3D_positions"] = to_h36m32(motion(1000)).reshape(1000, 96).T
    seq = get_dataset("h36m", root).load(get_dataset("h36m", root).ref("S1", "Eating", "54138969"))
    assert seq.fps == 50.0 and seq.frame_index[-1] == 999


def test_h36m_errors_name_the_file(tmp_path):
    write_h36m_baseline(tmp_path)
    adapter = get_dataset("h36m", tmp_path)
    ref = adapter.list_sequences()[0]
    bad = tmp_path / "S1" / "MyPoses" / "3D_positions" / "Photo 1.h5"
    with h5py.File(bad, "w") as f:
        f["3D_positions"] = np.zeros((95, 4))
    with pytest.raises(DatasetError, match=r"Photo 1\.h5.*\(96, N\)"):
        get_dataset("h36m", tmp_path).load(ref)
    sh = next((tmp_path / "S9" / "StackedHourglass").glob("*.54138969.h5"))
    with h5py.File(sh, "w") as f:
        f["poses"] = np.zeros((5, 16, 2))
    with pytest.raises(DatasetError, match="5 detection frames"):
        get_dataset("h36m", tmp_path).load(adapter.ref("S9", "Walking", "54138969"))
    (tmp_path / "cameras.h5").unlink()
    with pytest.raises(DatasetError, match=r"cameras\.h5: missing"):
        get_dataset("h36m", tmp_path).load(adapter.ref("S9", "Walking", "58860488"))
    with pytest.raises(DatasetError, match="no dataset found"):
        get_dataset("h36m", tmp_path / "nowhere").list_sequences()
    with pytest.raises(ValueError, match="unknown split"):
        adapter.list_sequences(split="val")


# ---------------------------------------------------------------------------------- MPI-INF-3DHP
def j17_to_3dhp28(j: np.ndarray) -> np.ndarray:
    """Put 3DHP-17 joints into their 28-joint slots (other slots: the pelvis)."""
    out = np.repeat(j[..., 14:15, :], 28, axis=-2)
    out[..., list(MPI3DHP28_TO_17), :] = j
    return out


def h36m17_to_3dhp17(j: np.ndarray) -> np.ndarray:
    order = (10, 8, 14, 15, 16, 11, 12, 13, 1, 2, 3, 4, 5, 6, 0, 7, 9)   # 3DHP-17 from H36M-17
    return j[..., list(order), :]


def write_3dhp_train(folder, cams: dict[int, Camera], poses_cam: dict[int, np.ndarray], frames):
    """annot.mat (v5, cells per camera) + camera.calibration for cameras `cams` (ids may skip)."""
    import scipy.io

    folder.mkdir(parents=True, exist_ok=True)
    ids = sorted(cams)
    cells = {k: np.empty((len(ids), 1), dtype=object) for k in ("annot2", "annot3", "univ_annot3")}
    for i, cid in enumerate(ids):
        p3 = poses_cam[cid]
        p28 = j17_to_3dhp28(p3)
        cells["annot3"][i, 0] = p28.reshape(len(p3), 84)
        cells["univ_annot3"][i, 0] = (p28 * 0.9).reshape(len(p3), 84)
        cells["annot2"][i, 0] = cams[cid].project(p28, distort=False).reshape(len(p3), 56)
    scipy.io.savemat(folder / "annot.mat", {**cells, "frames": np.asarray(frames).reshape(-1, 1),
                                            "cameras": np.array(ids).reshape(1, -1)})
    lines = ["Skeletool Camera Calibration File V1.0"]
    for cid in range(max(ids) + 1):
        cam = cams.get(cid, cams[ids[0]])
        K = np.eye(4)
        K[0, 0], K[1, 1], K[0, 2], K[1, 2] = *cam.f, *cam.c
        E = np.eye(4)
        E[:3, :3], E[:3, 3] = cam.R, -cam.R @ cam.T     # [R | t], t = -R T, mm
        lines += [f"name          {cid}", "  sensor      10 10", f"  size        {cam.width} {cam.height}",
                  "  animated    0", "  intrinsic   " + " ".join(f"{v:.10g}" for v in K.ravel()),
                  "  extrinsic   " + " ".join(f"{v:.10g}" for v in E.ravel()), "  radial      0"]
    (folder / "camera.calibration").write_text("\n".join(lines) + "\n")


def write_3dhp_test(folder, annot3: np.ndarray, annot2: np.ndarray, valid, activity=None):
    """annot_data.mat as MATLAB v7.3 writes it: HDF5 with a 512-byte MATLAB header, dims reversed."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "annot_data.mat"
    n = len(annot3)
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, arr in (("annot2", annot2[:, None]), ("annot3", annot3[:, None]),
                          ("univ_annot3", annot3[:, None] * 0.9), ("valid_frame", np.asarray(valid, float)[:, None]),
                          ("activity_annotation", np.asarray(activity if activity is not None else np.ones(n))[:, None])):
            f[name] = arr.astype(np.float64)
            f[name].attrs["MATLAB_class"] = np.bytes_("double")
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 HDF5 schema 1.00 .".ljust(116))
    return path


def test_3dhp_train_layout(tmp_path):
    rings = ring_cameras(3)
    cams = {0: rings[0], 2: rings[1], 8: rings[2]}
    for c in cams.values():
        c.k, c.p, c.width, c.height = np.zeros(3), np.zeros(2), 2048, 2048
    world = motion(9, 4)
    poses = {cid: h36m17_to_3dhp17(cam.world_to_camera(world)) for cid, cam in cams.items()}
    folder = tmp_path / "mpi_inf_3dhp" / "S2" / "Seq1"
    write_3dhp_train(folder, cams, poses, np.arange(100, 109))
    (folder / "imageSequence").mkdir()
    (folder / "imageSequence" / "video_2.avi").write_bytes(b"")
    adapter = get_dataset("3dhp", tmp_path, cameras=(0, 2, 8))
    refs = adapter.list_sequences(split="train")
    assert [r.key for r in refs] == ["3dhp/S2/Seq1/0", "3dhp/S2/Seq1/2", "3dhp/S2/Seq1/8"]
    seq = adapter.load(refs[1])
    np.testing.assert_allclose(seq.joints_3d_cam, cams[2].world_to_camera(world), atol=1e-3)
    np.testing.assert_allclose(seq.cam.T, cams[2].T, atol=1e-6)       # centre recovered from [R | t]
    np.testing.assert_allclose(seq.cam.camera_to_world(seq.joints_3d_cam), world, atol=1e-3)
    assert list(seq.frame_index) == list(range(100, 109)) and seq.fps == 25.0
    assert seq.image_size == (2048, 2048) and seq.video_path == folder / "imageSequence" / "video_2.avi"
    assert adapter.load(refs[0]).video_path is None
    univ = get_dataset("3dhp", tmp_path, cameras=(0,), annotation="univ_annot3").load(refs[0])
    np.testing.assert_allclose(univ.joints_3d_cam, 0.9 * adapter.load(refs[0]).joints_3d_cam, rtol=1e-5)
    with pytest.raises(DatasetError, match="no camera 4"):
        get_dataset("3dhp", tmp_path).load(adapter.ref("S2", "Seq1", "4"))
    (folder / "camera.calibration").write_text("Skeletool Camera Calibration File V1.0\nname 0\n  size 2048\n")
    with pytest.raises(DatasetError, match=r"camera\.calibration: camera block"):
        get_dataset("3dhp", tmp_path, cameras=(0,)).load(refs[0])


def test_3dhp_test_layout(tmp_path):
    f, c = np.array([1500.07, 1500.66]), np.array([1017.4, 1043.1])
    cam = Camera(R=np.eye(3), T=np.zeros(3), f=f, c=c)
    joints = h36m17_to_3dhp17(ring_cameras(1)[0].world_to_camera(motion(6, 5)))
    annot2 = cam.project(joints, distort=False)
    write_3dhp_test(tmp_path / "mpi_inf_3dhp_test_set" / "TS2", joints, annot2, [1, 1, 0, 1, 1, 1],
                    activity=[1, 1, 2, 2, 7, 7])
    (tmp_path / "mpi_inf_3dhp_test_set" / "TS2" / "imageSequence").mkdir()
    adapter = get_dataset("3dhp", tmp_path)
    assert adapter.root_found() and [r.key for r in adapter.list_sequences()] == ["3dhp/TS2/test/0"]
    seq = adapter.load(adapter.list_sequences(split="test")[0])
    assert list(seq.frame_index) == [0, 1, 3, 4, 5]                    # invalid frame dropped
    assert seq.image_paths[2].name == "img_000004.jpg"                 # 1-based file names
    np.testing.assert_allclose(seq.cam.f, f, rtol=1e-9)
    np.testing.assert_allclose(seq.cam.c, c, rtol=1e-9)
    assert seq.extras["intrinsics_fit_rms_px"] < 1e-6 and list(seq.extras["activity"]) == [1, 1, 2, 7, 7]
    np.testing.assert_allclose(seq.cam.project(seq.joints_3d_cam),
                               to_h36m17(annot2[[0, 1, 3, 4, 5]], "3dhp17"), atol=1e-6)
    assert seq.image_size == (2048, 2048) and seq.fps == 25.0


# ---------------------------------------------------------------------------------- 3DPW
SMPL_FROM_H36M17 = {0: 0, 2: 1, 5: 2, 8: 3, 1: 4, 4: 5, 7: 6, 6: 7, 12: 8, 15: 9, 16: 11, 18: 12, 20: 13,
                    17: 14, 19: 15, 21: 16}


def smpl24_from_h36m17(j: np.ndarray) -> np.ndarray:
    out = np.repeat(j[..., :1, :], 24, axis=-2)
    for s, h in SMPL_FROM_H36M17.items():
        out[..., s, :] = j[..., h, :]
    return out


def write_3dpw(root, n=8, n_actors=2):
    worlds = [smpl24_from_h36m17(motion(n, 10 + a) + [1000 * a, 0, 0]) / 1000.0 for a in range(n_actors)]
    rng = np.random.default_rng(0)
    poses = np.empty((n, 4, 4))
    for t in range(n):                                  # a hand-held camera drifting along x
        eye = np.array([4.0 * np.sin(0.3 + 0.02 * t), -4.5, 1.5])
        R = look_at(eye, np.array([0.0, 0.0, 1.0]))
        poses[t] = np.eye(4)
        poses[t, :3, :3], poses[t, :3, 3] = R, -R @ eye
    K = np.array([[1962.0, 0, 540.0], [0, 1969.0, 960.0], [0, 0, 1]])
    valid = [np.array([1, 1, 0, 1, 1, 1, 1, 0]), np.ones(n, int)]
    coco18_from_smpl = (15, 12, 17, 19, 21, 16, 18, 20, 2, 5, 8, 1, 4, 7, 15, 15, 15, 15)
    poses2d = []
    for a in range(n_actors):
        cam_pts = np.einsum("tij,tkj->tki", poses[:, :3, :3], worlds[a]) + poses[:, None, :3, 3]
        uv = cam_pts[..., :2] / cam_pts[..., 2:] * [K[0, 0], K[1, 1]] + K[:2, 2]
        p = np.concatenate([uv[:, list(coco18_from_smpl)], rng.uniform(0.3, 1, (n, 18, 1))], -1)
        poses2d.append(np.transpose(p, (0, 2, 1)))
    data = {"sequence": "downtown_test_00", "genders": ["m", "f"], "jointPositions": [w.reshape(n, 72) for w in worlds],
            "cam_poses": poses, "cam_intrinsics": K, "campose_valid": valid, "poses2d": poses2d,
            "img_frame_ids": np.arange(n), "betas": [np.zeros(10)] * n_actors, "trans": [w[:, 0] for w in worlds]}
    (root / "sequenceFiles" / "test").mkdir(parents=True)
    (root / "sequenceFiles" / "train").mkdir(parents=True)
    with open(root / "sequenceFiles" / "test" / "downtown_test_00.pkl", "wb") as f:
        pickle.dump(data, f, protocol=2)
    return data, worlds


def test_3dpw_layout(tmp_path):
    from PIL import Image

    data, worlds = write_3dpw(tmp_path / "3dpw")
    images = tmp_path / "3dpw" / "imageFiles" / "downtown_test_00"
    images.mkdir(parents=True)
    Image.new("RGB", (54, 96)).save(images / "image_00000.jpg")
    adapter = get_dataset("3dpw", tmp_path)
    assert adapter.splits == {"train": [], "validation": [], "test": ["downtown_test_00"]}
    refs = adapter.list_sequences(split="test")
    assert [r.key for r in refs] == ["3dpw/downtown_test_00/actor0/phone", "3dpw/downtown_test_00/actor1/phone"]
    seq = adapter.load(refs[0])
    keep = [0, 1, 3, 4, 5, 6]                                          # campose_valid == 0 dropped
    assert list(seq.frame_index) == keep and seq.extras["dropped_invalid_frames"] == 2
    w2c = data["cam_poses"][keep]
    expect = np.einsum("tij,tkj->tki", w2c[:, :3, :3], worlds[0][keep]) + w2c[:, None, :3, 3]
    np.testing.assert_allclose(seq.joints_3d_cam, to_h36m17(expect * 1000, "smpl24"), atol=1e-2)
    np.testing.assert_allclose(seq.extras["world_to_camera"][:, :3, 3], w2c[:, :3, 3] * 1000)
    assert seq.image_size == (54, 96) and seq.image_paths[2].name == "image_00003.jpg"
    # OpenPose COCO-18 -> H36M-17: the directly detected joints land on the projected GT
    proj = seq.cam.project(seq.joints_3d_cam)
    direct = [1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16]
    np.testing.assert_allclose(seq.keypoints_2d[:, direct], proj[:, direct], atol=1e-3)
    assert seq.confidence.shape == (6, 17) and 0.3 <= seq.confidence.min() <= seq.confidence.max() <= 1
    assert len(get_dataset("3dpw", tmp_path).load(refs[1])) == 8
    (images / "image_00000.jpg").unlink()
    assert get_dataset("3dpw", tmp_path).load(refs[1]).image_size == (1080, 1920)   # from 2 c


def test_3dpw_malformed_pickle(tmp_path):
    write_3dpw(tmp_path)
    path = tmp_path / "sequenceFiles" / "test" / "downtown_test_00.pkl"
    with open(path, "wb") as f:
        pickle.dump({"sequence": "x", "jointPositions": [np.zeros((3, 72))]}, f, protocol=2)
    adapter = get_dataset("3dpw", tmp_path)
    bad = [r for r in adapter.list_sequences() if r.subject == "downtown_test_00"]  # listed, the others too
    assert [r.action for r in bad] == ["actor0"]
    with pytest.raises(DatasetError, match=r"downtown_test_00\.pkl: missing keys \['cam_poses'"):
        adapter.load(bad[0])                                             # it fails alone, naming itself


def test_standardize_to_h36m():
    from auglift.pipeline.sources.pw3d import H36M_TRAIN_BONE_LENGTHS, standardize_to_h36m

    rng = np.random.default_rng(3)
    joints = motion(20) + rng.normal(0, 20, (20, 17, 3))
    out = standardize_to_h36m(joints)
    np.testing.assert_allclose(bone_lengths(out), np.broadcast_to(H36M_TRAIN_BONE_LENGTHS, (20, 16)), atol=1e-6)
    recentred = joints.copy()
    recentred[:, 0] = 0.5 * (joints[:, 1] + joints[:, 4])

    def directions(j):
        from auglift.core.skeleton import H36M17_PARENTS

        b = j[:, 1:] - j[:, list(H36M17_PARENTS[1:])]
        return b / np.linalg.norm(b, axis=-1, keepdims=True)

    np.testing.assert_allclose(directions(out), directions(recentred), atol=1e-9)
    np.testing.assert_allclose(out[:, 0], recentred[:, 0])
    raw = standardize_to_h36m(joints, bone_lengths(joints)[0] * 0 + 100.0, recentre=False)
    np.testing.assert_allclose(directions(raw), directions(joints), atol=1e-9)
    np.testing.assert_allclose(bone_lengths(raw), 100.0, atol=1e-9)
    with pytest.raises(ValueError, match="16 target"):
        standardize_to_h36m(joints, np.ones(15))


# ---------------------------------------------------------------------------------- Fit3D
def imar_project(points_cam: np.ndarray, intr: dict) -> np.ndarray:
    """The projection of imar_vision_datasets_tools (util/dataset_util.py), restated."""
    p = np.asarray(intr["p"])[:, [1, 0]]
    x = points_cam[:, :2] / points_cam[:, 2:3]
    r2 = np.sum(x**2, axis=1)
    radial = 1 + np.transpose(np.asarray(intr["k"]) @ np.array([r2, r2**2, r2**3]))
    tan = x @ p.T
    return np.asarray(intr["f"]) * (x * (tan + radial) + r2[:, None] * p) + np.asarray(intr["c"])


def write_fit3d(root, subject="s03", action="squat", n=7):
    base = root / "train" / subject
    world_m = np.concatenate([motion(n, 6), np.repeat(motion(n, 6)[:, 3:4], 8, axis=1)], axis=1) / 1000.0
    (base / "joints3d_25").mkdir(parents=True)
    (base / "joints3d_25" / f"{action}.json").write_text(json.dumps({"joints3d_25": world_m.tolist()}))
    cams = {}
    for name, cam in zip(("50591643", "58860488", "60457274", "65906101"), ring_cameras()):
        params = {"extrinsics": {"R": cam.R.tolist(), "T": [(cam.T / 1000).tolist()]},
                  "intrinsics_wo_distortion": {"f": [1140.0, 1146.0], "c": [450.0, 452.0]},
                  "intrinsics_w_distortion": {"f": [[1140.0, 1146.0]], "c": [[450.0, 452.0]],
                                              "k": [[-0.2, 0.24, -0.003]], "p": [[-0.001, 0.0008]]}}
        (base / "camera_parameters" / name).mkdir(parents=True)
        (base / "camera_parameters" / name / f"{action}.json").write_text(json.dumps(params))
        cams[name] = params
    return world_m, cams


def test_fit3d_layout(tmp_path):
    world_m, cams = write_fit3d(tmp_path / "fit3d")
    write_fit3d(tmp_path / "fit3d", subject="s11", action="deadlift")
    adapter = get_dataset("fit3d", tmp_path)
    assert len(adapter.list_sequences()) == 8
    refs = adapter.list_sequences(split="train")
    assert [r.key for r in refs] == [f"fit3d/s03/squat/{c}" for c in ("50591643", "58860488", "60457274", "65906101")]
    seq = adapter.load(refs[2])
    params = cams["60457274"]
    R, T = np.asarray(params["extrinsics"]["R"]), np.asarray(params["extrinsics"]["T"])
    cam_m = (world_m - T) @ R.T                        # the tools' world -> camera
    np.testing.assert_allclose(seq.joints_3d_cam, cam_m[:, :17] * 1000, atol=1e-3)
    expect = imar_project(cam_m[:, :17].reshape(-1, 3), {k: np.asarray(v) for k, v in
                                                         params["intrinsics_w_distortion"].items()})
    np.testing.assert_allclose(seq.cam.project(seq.joints_3d_cam).reshape(-1, 2), expect, atol=1e-6)
    assert seq.fps == 50.0 and seq.image_size == (900, 900) and len(seq) == 7
    assert seq.extras["left_right_agreement"] == 1.0
    assert left_right_agreement(seq.joints_3d_cam[:, [0, 4, 5, 6, 1, 2, 3, *range(7, 11), 14, 15, 16, 11, 12, 13]]) == 0.0
    (tmp_path / "fit3d" / "train" / "s03" / "joints3d_25" / "squat.json").write_text('{"joints3d": []}')
    with pytest.raises(DatasetError, match=r"squat\.json: no key 'joints3d_25'"):
        get_dataset("fit3d", tmp_path).load(refs[0])


# ---------------------------------------------------------------------------------- custom
@pytest.mark.parametrize("suffix", [".npz", ".zarr"])
def test_custom_round_trip(tmp_path, suffix):
    from auglift.pipeline.sources.custom import write_custom_sequence

    cams = ring_cameras(2)
    world_m = smpl24_from_h36m17(motion(10, 7)) / 1000.0
    (tmp_path / "custom" / "P01" / "frames_b").mkdir(parents=True)
    for i in range(12):
        (tmp_path / "custom" / "P01" / "frames_b" / f"{i:04d}.png").write_bytes(b"")
    kp = np.stack([c.project(c.world_to_camera(to_h36m17(world_m * 1000, "smpl24"))) for c in cams])
    path = write_custom_sequence(
        tmp_path / "custom" / "P01" / f"jump{suffix}", world_m, skeleton="smpl24", units="m", coords="world",
        camera_names=["a", "b"], R=np.stack([c.R for c in cams]), T=np.stack([c.T / 1000 for c in cams]),
        f=np.stack([c.f for c in cams]), c=np.stack([c.c for c in cams]), k=np.stack([c.k for c in cams]),
        p=np.stack([c.p for c in cams]),
        image_size=[[1000, 1000], [800, 600]], fps=30, frame_index=np.arange(2, 12),
        video=["../videos/jump_a.mp4", ""], frames=["", "frames_b"], keypoints_2d=kp, keypoints_skeleton="h36m17",
        keypoint_confidence=np.full((2, 10, 17), 0.8))
    adapter = get_dataset("custom", tmp_path)
    assert adapter.splits == {"all": ["P01"]}
    refs = adapter.list_sequences()
    assert [r.key for r in refs] == ["custom/P01/jump/a", "custom/P01/jump/b"]
    a, b = adapter.load(refs[0]), adapter.load(refs[1])
    np.testing.assert_allclose(b.joints_3d_cam, cams[1].world_to_camera(to_h36m17(world_m * 1000, "smpl24")), atol=1e-3)
    np.testing.assert_allclose(b.cam.T, cams[1].T, atol=1e-9)
    assert b.image_size == (800, 600) and b.fps == 30.0 and list(b.frame_index) == list(range(2, 12))
    assert a.video_path == path.parent / "../videos/jump_a.mp4" and a.image_paths is None
    assert [p.name for p in b.image_paths][:2] == ["0002.png", "0003.png"] and b.video_path is None
    np.testing.assert_allclose(a.keypoints_2d, a.cam.project(a.joints_3d_cam), atol=1e-3)
    np.testing.assert_allclose(a.confidence, 0.8)


def test_custom_camera_coords_and_errors(tmp_path):
    from auglift.pipeline.sources.custom import write_custom_sequence

    joints = ring_cameras(1)[0].world_to_camera(motion(4))
    write_custom_sequence(tmp_path / "S" / "walk.npz", joints, skeleton="h36m17", units="mm", coords="camera",
                          camera_names=["cam"], f=[[1000, 1000]], c=[[500, 500]], image_size=[[1000, 1000]], fps=25)
    seq = get_dataset("custom", tmp_path).load(get_dataset("custom", tmp_path).list_sequences()[0])
    np.testing.assert_allclose(seq.joints_3d_cam, joints, atol=1e-3)
    with pytest.raises(DatasetError, match="skeleton 'vicon' unknown"):
        write_custom_sequence(tmp_path / "S" / "x.npz", joints, skeleton="vicon", units="mm", coords="camera",
                              camera_names=["c"], f=[[1, 1]], c=[[0, 0]], image_size=[[2, 2]], fps=1)
    with pytest.raises(DatasetError, match="world-coordinate joints need camera extrinsics"):
        write_custom_sequence(tmp_path / "S" / "x.npz", joints, skeleton="h36m17", units="mm", coords="world",
                              camera_names=["c"], f=[[1, 1]], c=[[0, 0]], image_size=[[2, 2]], fps=1)
    np.savez(tmp_path / "S" / "bad.npz", joints_3d=np.zeros((3, 17, 2)), skeleton="h36m17", units="mm",
             coords="camera", camera_names=["c"], f=[[1, 1]], c=[[0, 0]], image_size=[[2, 2]], fps=1)
    adapter = get_dataset("custom", tmp_path)
    refs = adapter.list_sequences()            # one bad file does not hide the good ones ...
    assert [r.key for r in refs] == ["custom/S/bad/unreadable", "custom/S/walk/cam"]
    with pytest.raises(DatasetError, match=r"bad\.npz: joints_3d \(h36m17\) has shape \(3, 17, 2\)"):
        adapter.load(refs[0])                  # ... it fails alone, naming itself
    assert len(adapter.load(refs[1])) == 4


def test_refs_are_small_and_picklable(tmp_path):
    write_h36m_baseline(tmp_path)
    ref = get_dataset("h36m", tmp_path).list_sequences()[0]
    back = pickle.loads(pickle.dumps(ref))
    assert isinstance(back, SequenceRef) and back == ref and len(pickle.dumps(ref)) < 400
    assert get_dataset(back.dataset, back.root).load(back).key == ref.key
