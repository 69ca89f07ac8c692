"""Precompute through a dataset adapter: a tiny Human3.6M root in the release layout built from
real data (the S1 "Directions 1" mocap and cameras, and a video made of the real S1 Directions
frame of camera 54138969), so that frames, ground truth, camera and frame step line up."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from auglift.cache import open_shard
from auglift.pipeline.precompute import PrecomputeConfig, run_precompute

N_POSES = 3     # the first 3 poses of the 10 fps copy = release frames 0, 5, 10


@pytest.fixture(scope="module")
def h36m_root(shared_data, tmp_path_factory):
    import av
    import h5py

    from auglift.pipeline.frames.images import read_image

    root = tmp_path_factory.mktemp("h36m")
    (root / "S1" / "MyPoses" / "3D_positions").mkdir(parents=True)
    os.symlink(shared_data / "h36m" / "cameras.h5", root / "cameras.h5")
    with h5py.File(shared_data / "h36m" / "S1" / "MyPoses" / "3D_positions" / "Directions 1.h5", "r") as f:
        poses = f["3D_positions"][:, :N_POSES]
    with h5py.File(root / "S1" / "MyPoses" / "3D_positions" / "Directions 1.h5", "w") as f:
        f["3D_positions"] = poses
    # 15 frames at 50 fps: the adapter infers a pose every 5th frame from the counts
    (root / "S1" / "Videos").mkdir()
    img = read_image(shared_data / "samples" / "h36m_S1_Directions_1.54138969_000001.jpg")
    with av.open(str(root / "S1" / "Videos" / "Directions 1.54138969.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=50, options={"crf": "16"})
        stream.height, stream.width = img.shape[:2]
        stream.pix_fmt = "yuv420p"
        for _ in range(5 * N_POSES):
            for pkt in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    return root


def test_h36m_adapter_sequence_with_video(h36m_root, tmp_path):
    from auglift.pipeline.sources.base import get_dataset

    out = tmp_path / "cache"
    report, _ = run_precompute("h36m", h36m_root, out, PrecomputeConfig(workers=0), progress=False, log=None)
    s = report["summary"]
    # the three other cameras have no video: reported, not fatal
    assert s["shards"] == {"written": 1, "skipped": 0, "failed": 3}
    assert all("no video or images" in f["message"] for f in report["failures"])
    keys = (out / "expected_keys.txt").read_text().split()
    assert len(keys) == 4 and "h36m/S1/Directions_1/54138969" in keys
    seq = get_dataset("h36m", h36m_root).load(get_dataset("h36m", h36m_root).list_sequences()[0])
    with open_shard(out / "h36m/S1/Directions_1/54138969.zarr") as shard:
        a = shard.attrs
        assert shard.read("frame_index").tolist() == [0, 5, 10]
        assert a["fps"] == pytest.approx(10.0) and a["image_size"] == [1000, 1002]
        assert a["intrinsics"]["f"] == pytest.approx(seq.cam.intrinsics()["f"])
        joints = shard.read("joints_3d_cam")
        np.testing.assert_allclose(joints, seq.joints_3d_cam, rtol=1e-6)
        # detections on the real frame agree with the mocap projected through the real camera
        # (the video repeats release frame 1; the person hardly moves in these 0.2 s)
        proj = seq.cam.project(joints.astype(np.float64))
        err = np.linalg.norm(shard.read("keypoints_2d") - proj, axis=-1)
        assert np.median(err) < 25.0, np.median(err, axis=1)


def test_adapter_shards_resume(h36m_root, tmp_path):
    out = tmp_path / "cache"
    cfg = PrecomputeConfig(workers=0, depth="none")
    run_precompute("h36m", h36m_root, out, cfg, progress=False, log=None)
    again, _ = run_precompute("h36m", h36m_root, out, cfg, progress=False, log=None)
    assert again["summary"]["shards"]["skipped"] == 1
    shutil.rmtree(out / "h36m")
    third, _ = run_precompute("h36m", h36m_root, out, cfg, progress=False, log=None)
    assert third["summary"]["shards"]["written"] == 1
