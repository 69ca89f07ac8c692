"""2D detector backends on real frames: BlazePose accuracy vs H36M ground truth, empty frames,
person selection, and the optional RTMPose backend."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from auglift.pipeline.detect import DETECTORS, build_detector, keypoint_box, select_person
from auglift.pipeline.frames.images import read_image
from auglift.pipeline.frames.video import iter_video_batches


@pytest.fixture(scope="module")
def blazepose():
    det = build_detector("mediapipe")
    yield det
    det.close()


def _h36m_samples(root: Path):
    gt = np.load(root / "samples" / "h36m_test_h36m_body3d.npz")
    for name, part in zip(gt["imgname"], gt["part"]):
        yield root / "samples" / ("h36m_" + Path(str(name)).name), part


def test_blazepose_matches_h36m_ground_truth_within_20px(blazepose, shared_data):
    medians = []
    for path, part in _h36m_samples(shared_data):
        img = read_image(path)
        det = blazepose(img[None])
        assert det.keypoints.shape == (1, 17, 2) and det.confidence.shape == (1, 17) and det.bbox.shape == (1, 4)
        assert det.found.all()
        err = np.linalg.norm(det.keypoints[0] - part[:, :2], axis=-1)
        medians.append(float(np.median(err)))
        assert np.median(err) < 20.0, f"{path.name}: median joint error {np.median(err):.1f} px"
        assert ((det.confidence >= 0) & (det.confidence <= 1)).all()
        x0, y0, x1, y1 = det.bbox[0]
        assert 0 <= x0 < x1 <= img.shape[1] - 1 and 0 <= y0 < y1 <= img.shape[0] - 1
        # the ground-truth pelvis lies inside the detected person's box
        assert x0 <= part[0, 0] <= x1 and y0 <= part[0, 1] <= y1
        # world-landmark z is metric and hip-centred: the pelvis (mid-hips) sits at ~0 m and
        # the body's depth extent is under a metre
        z = det.extras["landmark_z_world"][0]
        assert abs(z[0]) < 0.05 and np.nanmax(np.abs(z)) < 1.0
    assert len(medians) == 4


def test_blazepose_frame_without_person(blazepose, shared_data):
    img = read_image(shared_data / "samples" / "h36m_S1_Directions_1.54138969_000001.jpg")
    floor = np.ascontiguousarray(img[700:, :300])  # an empty stretch of the studio floor
    person = img
    # a batch of frames of one size: floor patch, then a person crop of the same size
    crop = np.ascontiguousarray(person[300:602, 350:650])
    det = blazepose(np.stack([floor, crop]))
    assert det.found.tolist() == [False, True]
    assert np.isnan(det.keypoints[0]).all() and (det.confidence[0] == 0).all() and np.isnan(det.bbox[0]).all()
    assert np.isnan(det.extras["landmark_z_world"][0]).all()
    assert np.isfinite(det.keypoints[1]).all()


def test_blazepose_one_pose_per_frame_in_a_crowd(blazepose, shared_data):
    batch = next(iter_video_batches(shared_data / "videos" / "street_multi_person.mp4", batch_size=5))
    det = blazepose(batch.frames)
    assert det.keypoints.shape == (5, 17, 2)
    assert det.found.sum() >= 4  # several pedestrians; BlazePose keeps one of them
    kp = det.keypoints[det.found]
    assert (kp[..., 0] > -50).all() and (kp[..., 0] < 1010).all()


def test_blazepose_tracking_mode_restarts_per_sequence(shared_data):
    batch = next(iter_video_batches(shared_data / "videos" / "posetrack_000001.mp4", batch_size=5))
    det = build_detector("mediapipe", static_image_mode=False)
    try:
        first = det(batch.frames)
        det.reset()  # what precompute does between sequences
        again = det(batch.frames)
    finally:
        det.close()
    # without the reset the second pass would start from the first pass's last pose
    np.testing.assert_array_equal(first.keypoints, again.keypoints)
    assert first.found.all()


def test_blazepose_refuses_weights_it_would_download():
    with pytest.raises(ValueError, match="download"):
        build_detector("mediapipe", model_complexity=2)


def test_unknown_detector():
    with pytest.raises(ValueError, match="mediapipe"):
        build_detector("openpose")
    assert set(DETECTORS) >= {"mediapipe", "rtmpose"}


def test_select_person_modes():
    boxes = np.array([[0, 0, 50, 100], [10, 10, 210, 310], [5, 5, 105, 105]], float)
    scores = np.array([[0.9] * 17, [0.3] * 17, [0.95] * 17])
    assert select_person(boxes, mode="largest") == 1
    assert select_person(boxes, scores, mode="confident") == 2
    assert select_person(boxes[[0, 0]], mode="largest") == 0  # ties: the detector's order
    with pytest.raises(ValueError, match="scores"):
        select_person(boxes, mode="confident")
    with pytest.raises(ValueError, match="unknown person"):
        select_person(boxes, mode="middle")
    with pytest.raises(ValueError, match="at least one"):
        select_person(np.zeros((0, 4)))


def test_rtmpose_names_the_missing_checkpoint(tmp_path):
    cfg = tmp_path / "rtmpose-l.py"
    cfg.write_text("# placeholder config path\n")
    with pytest.raises(FileNotFoundError, match="pose_checkpoint") as e:
        build_detector("rtmpose", pose_config=str(cfg), det_config=str(cfg),
                       pose_checkpoint=str(tmp_path / "missing.pth"), det_checkpoint=str(tmp_path / "d.pth"))
    assert "missing.pth" in str(e.value) and "model zoo" in str(e.value)


def _mm_config(package, *parts):
    """A config file shipped inside an installed OpenMMLab package (.mim/configs/...)."""
    import importlib

    root = Path(importlib.import_module(package).__file__).parent / ".mim" / "configs"
    path = root.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"{package} does not ship {path}")
    return str(path)


def test_rtmpose_random_weights_on_a_real_frame(shared_data):
    # Optional backend: runs where mmpose/mmdet/mmcv are installed (`make setup-rtmpose test-rtmpose`).
    pytest.importorskip("mmpose")
    pytest.importorskip("mmdet")
    pose_cfg = _mm_config("mmpose", "body_2d_keypoint", "rtmpose", "body8", "rtmpose-l_8xb256-420e_body8-384x288.py")
    det_cfg = _mm_config("mmdet", "rtmdet", "rtmdet_tiny_8xb32-300e_coco.py")
    gt = np.load(shared_data / "samples" / "h36m_test_h36m_body3d.npz")
    img = read_image(shared_data / "samples" / "h36m_S8_WalkDog_1.55011271_000026.jpg")
    half = gt["scale"][3] * 100.0  # the annotation's person box: centre, scale x 200 px
    person = np.r_[gt["center"][3] - half, gt["center"][3] + half]
    small = np.array([10.0, 10.0, 110.0, 160.0])
    det = build_detector("rtmpose", pose_config=pose_cfg, det_config=det_cfg, random_weights=True)
    assert det.describe()["params"]["random_weights"] is True
    for mode in ("largest", "confident"):
        det.params["person"] = mode  # one model build for both selection modes
        # the RTMDet stage: per frame, an (P, 4) array of boxes (random weights may find none)
        boxes = det.person_boxes(np.stack([img, img]))
        assert len(boxes) == 2 and all(b.ndim == 2 and b.shape[1] == 4 for b in boxes)
        # the RTMPose stage on given boxes: SimCC keypoints decode inside each (padded) box
        kps, scores = det.pose_in_boxes(img, np.stack([person, small]))
        assert kps.shape == (2, 17, 2) and scores.shape == (2, 17)
        # the crop RTMPose sees: the box widened to its 288:384 input aspect, then padded x1.25
        w, h = person[2:] - person[:2]
        w, h = (w, w / 0.75) if w > 0.75 * h else (0.75 * h, h)
        centre, reach = (person[:2] + person[2:]) / 2, 1.25 * np.array([w, h]) / 2 + 1.0
        assert (np.abs(kps[0] - centre) <= reach).all()
        out = det(img[None])
        assert out.keypoints.shape == (1, 17, 2) and ((out.confidence >= 0) & (out.confidence <= 1)).all()
        assert out.found[0] == (len(boxes[0]) > 0)


def test_rtmpose_keeps_each_actor_on_a_two_person_image(shared_data):
    # Optional backend (`make setup-rtmpose test-rtmpose`). Random weights: a pose lands somewhere
    # in the box RTMPose is given, so this checks the matching path, not the accuracy (no error limit).
    pytest.importorskip("mmpose")
    pytest.importorskip("mmdet")
    from test_people import two_person_image

    from auglift.pipeline.detect.people import guide_box
    from auglift.pipeline.detect.subjects import PeopleConfig, detect_guided

    pose_cfg = _mm_config("mmpose", "body_2d_keypoint", "rtmpose", "body8", "rtmpose-l_8xb256-420e_body8-384x288.py")
    det_cfg = _mm_config("mmdet", "rtmdet", "rtmdet_tiny_8xb32-300e_coco.py")
    det = build_detector("rtmpose", pose_config=pose_cfg, det_config=det_cfg, random_weights=True)
    image, guides = two_person_image(shared_data)
    config = PeopleConfig(max_error=1e9)
    n_boxes = len(det.person_boxes(image[None])[0])
    kept = []
    for k, guide in enumerate(guides):
        out, sel = detect_guided(det, image[None], guide[None], config)
        assert sel["person_selection"].tolist() == [1] and sel["people_count"].tolist() == [n_boxes]
        assert np.isfinite(sel["match_error"]).all() and out.found.all()
        # the pose comes from the actor's own (widened) box: nearer its ground truth than the other's;
        # the stored box is the pose's extent, not the ground-truth box it ran on
        np.testing.assert_allclose(out.bbox[0], keypoint_box(out.keypoints[0], image.shape[1::-1]))
        # (SimCC decodes inside the crop, so every joint is nearer this actor's box than the other's)
        centres = [(guide_box(g)[:2] + guide_box(g)[2:]) / 2 for g in guides]
        dist = [np.linalg.norm(out.keypoints[0] - c, axis=-1) for c in centres]
        assert (dist[k] < dist[1 - k]).all(), k
        kept.append(out.keypoints[0])
    assert np.linalg.norm(kept[0] - kept[1], axis=-1).min() > 100
    # every RTMDet box gets a pose (duplicates of one body merged)
    (people,) = det.detect_people(image[None])
    assert people.keypoints.shape[1:] == (17, 2) and len(people) <= n_boxes
    assert ((people.confidence >= 0) & (people.confidence <= 1)).all()
