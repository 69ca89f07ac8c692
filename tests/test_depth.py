"""Depth backends: Depth Anything V2 (real architecture, random weights, saved and reloaded from a
local directory), the BlazePose landmark-z prior, and no depth."""
from __future__ import annotations

import json

import numpy as np
import pytest

from auglift.pipeline.depth import DEPTH_BACKENDS, build_depth
from auglift.pipeline.depth.depth_anything import resolve_kind
from auglift.pipeline.detect import Detections, build_detector, empty_detections
from auglift.pipeline.frames.images import read_image


def _save_depth_anything(path, depth_type: str):
    """A tiny Depth Anything V2 (DINOv2 backbone) with random weights, saved like a hub checkpoint."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    torch.manual_seed(0)
    # The head reads four backbone stages as token sequences: name them as out_features and keep
    # reshape_hidden_states off, or the neck fails with "too many values to unpack".
    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                            patch_size=14, image_size=98, out_features=["stage1", "stage2", "stage3", "stage4"],
                            reshape_hidden_states=False)
    cfg = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32, neck_hidden_sizes=[8, 16, 32, 32],
                              fusion_hidden_size=16, head_hidden_size=8, depth_estimation_type=depth_type,
                              max_depth=20)
    DepthAnythingForDepthEstimation(cfg).eval().save_pretrained(path)
    DPTImageProcessor(size={"height": 98, "width": 98}, keep_aspect_ratio=True, ensure_multiple_of=14,
                      do_pad=False, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]
                      ).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def frame_and_pose(shared_data):
    img = read_image(shared_data / "samples" / "h36m_S7_Greeting.55011271_000396.jpg")
    det = build_detector("mediapipe")
    try:
        d = det(img[None])
    finally:
        det.close()
    return img, d


def test_depth_anything_relative_from_local_dir(tmp_path, frame_and_pose):
    img, det = frame_and_pose
    model_dir = _save_depth_anything(tmp_path / "Depth-Anything-V2-Tiny-random", "relative")
    backend = build_depth("depth-anything", model=str(model_dir))
    assert backend.kind == "relative_inverse"
    maps = backend.maps(img[None])
    assert tuple(maps.shape) == (1, img.shape[0], img.shape[1])  # resized to the frame
    assert np.isfinite(maps.numpy()).all()
    out = backend(img[None], det)
    assert out.depth.shape == (1, 17) and out.valid.all() and np.isfinite(out.depth).all()
    # the value is the min of the resized map over the radius-3 disc around each keypoint
    from auglift.core.codec import sample_keypoint_depth

    expect = sample_keypoint_depth(maps.numpy(), det.keypoints.astype(np.float64), radius=3)
    np.testing.assert_allclose(out.depth, expect, rtol=1e-6)
    described = backend.describe()
    assert described["kind"] == "relative_inverse" and described["params"]["max_depth"] is None


def test_depth_anything_metric_and_empty_frames(tmp_path, frame_and_pose):
    img, det = frame_and_pose
    model_dir = _save_depth_anything(tmp_path / "da-metric", "metric")
    backend = build_depth("depth-anything", model=str(model_dir))
    assert backend.kind == "metric" and backend.describe()["params"]["max_depth"] == 20.0
    both = Detections(np.concatenate([det.keypoints, empty_detections(1).keypoints]),
                      np.concatenate([det.confidence, np.zeros((1, 17), np.float32)]),
                      np.concatenate([det.bbox, np.full((1, 4), np.nan, np.float32)]))
    out = backend(np.stack([img, img]), both)
    # metric head: sigmoid * max_depth, so metres in (0, 20]; a frame with no person gives NaN
    assert ((out.depth[0] > 0) & (out.depth[0] <= 20.0)).all()
    assert np.isnan(out.depth[1]).all() and not out.valid[1].any()


def test_depth_anything_kind_rules(tmp_path):
    assert resolve_kind("x/Depth-Anything-V2-Small-hf", {"depth_estimation_type": "relative"}) == "relative_inverse"
    assert resolve_kind("x/Depth-Anything-V2-Metric-Indoor-Small-hf", {}) == "metric"
    assert resolve_kind("x/anything", {"depth_estimation_type": "metric"}) == "metric"
    with pytest.raises(ValueError, match="says Metric"):
        resolve_kind("x/Depth-Anything-V2-Metric-Outdoor-Base-hf", {"depth_estimation_type": "relative"})
    with pytest.raises(ValueError, match="asked for"):
        resolve_kind("x/da", {"depth_estimation_type": "relative"}, requested="metric")
    # a saved metric checkpoint asked to be relative is refused, not silently relabelled
    model_dir = _save_depth_anything(tmp_path / "da", "metric")
    assert json.loads((model_dir / "config.json").read_text())["depth_estimation_type"] == "metric"
    with pytest.raises(ValueError, match="asked for"):
        build_depth("depth-anything", model=str(model_dir), kind="relative_inverse")


def test_depth_anything_never_downloads_by_itself(tmp_path):
    with pytest.raises(FileNotFoundError, match="allow-download") as e:
        build_depth("depth-anything", model="depth-anything/Depth-Anything-V2-Small-hf")
    assert "Depth-Anything-V2-Small-hf" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        build_depth("depth-anything", model=str(tmp_path / "empty"))


def test_landmark_z_uses_blazepose_world_z(frame_and_pose):
    img, det = frame_and_pose
    out = build_depth("landmark-z")(img[None], det)
    np.testing.assert_array_equal(out.depth, det.extras["landmark_z_world"])
    assert out.valid.all()
    image_space = build_depth("landmark-z", space="image")
    assert image_space.describe()["params"]["unit"].startswith("px")
    np.testing.assert_array_equal(image_space(img[None], det).depth, det.extras["landmark_z_image"])
    with pytest.raises(ValueError, match="landmark_z_world"):
        build_depth("landmark-z")(img[None], empty_detections(1))  # a detector without landmark z
    assert build_depth("landmark-z")(img[None], empty_detections(1, ("landmark_z_world",))).valid.sum() == 0


def test_no_depth_and_registry(frame_and_pose):
    img, det = frame_and_pose
    none = build_depth("none")
    out = none(img[None], det)
    assert np.isnan(out.depth).all() and not out.valid.any()
    assert none.describe()["kind"] == "none" and none.provenance == "none"
    assert set(DEPTH_BACKENDS) == {"landmark-z", "depth-anything", "none"}
    with pytest.raises(ValueError, match="landmark-z"):
        build_depth("midas")
