"""Several people in a frame: matching each actor to its ground truth, tracking people in own videos,
one shard per actor / per track. Scenes are real H36M sample frames placed side by side."""
from __future__ import annotations

import json
import pickle

import av
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from test_datasets_fixtures import smpl24_from_h36m17

from auglift.cache import list_shards, open_shard
from auglift.cli import main
from auglift.pipeline.detect import build_detector
from auglift.pipeline.detect.people import (
    box_iou,
    choose_track,
    distinct_people,
    guide_box,
    identity_switches,
    match_to_guide,
    people_summary,
    track_people,
    track_rows,
)
from auglift.pipeline.detect.subjects import PeopleConfig, detect_guided
from auglift.pipeline.frames.images import read_image
from auglift.pipeline.precompute import PrecomputeConfig, run_precompute

# S1 Directions (left) and S7 Greeting (right): pairs BlazePose's person detector finds at these sizes
LEFT, RIGHT = 0, 2


def h36m_samples(root):
    gt = np.load(root / "samples" / "h36m_test_h36m_body3d.npz")
    names = ["h36m_" + str(n).split("/")[-1] for n in gt["imgname"]]
    return [read_image(root / "samples" / n) for n in names], gt["part"][..., :2], gt["S"][..., :3]


def two_person_image(root, left_scale=1.0, right_scale=0.75, slot=1000):
    """Two real H36M frames side by side in a (1002, 2 slot) canvas, each scaled and centred in its
    slot -> (image, [ground-truth 2D (17, 2) of the left person, of the right one], [scales])."""
    images, parts, _ = h36m_samples(root)
    canvas = np.zeros((1002, 2 * slot, 3), np.uint8)
    guides = []
    for k, (i, s) in enumerate(((LEFT, left_scale), (RIGHT, right_scale))):
        img = images[i]
        n = int(round(img.shape[0] * s)), int(round(img.shape[1] * s))
        small = np.asarray(Image.fromarray(img).resize((n[1], n[0])))[: 1002]
        x0, y0 = k * slot + (slot - small.shape[1]) // 2, (1002 - small.shape[0]) // 2
        canvas[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
        guides.append((parts[i] * s + [x0, y0]).astype(np.float32))
    return canvas, guides


def median_px(kp, gt):
    return float(np.median(np.linalg.norm(np.asarray(kp, float) - gt, axis=-1)))


# ---------------------------------------------------------------------------- pure functions
def test_box_iou_and_guide_box():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    b = np.array([[5, 0, 15, 10], [np.nan] * 4], float)
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0], [0, 0]])
    kp = np.array([[10, 20], [30, 60], [np.nan, np.nan]], float)
    np.testing.assert_allclose(guide_box(kp), [10, 20, 30, 60])
    np.testing.assert_allclose(guide_box(kp, margin=0.25), [0, 10, 40, 70])   # 0.25 x the 40 px side
    assert np.isnan(guide_box(np.full((3, 2), np.nan))).all()


def test_match_to_guide_threshold():
    guide = np.stack([np.zeros(17), np.linspace(0, 160, 17)], -1)          # a 160 px tall actor
    near = guide + [10, 0]                                                   # 10 px off: error 1/16
    other = guide + [100, 0]                                                 # the person beside them
    assert match_to_guide(np.stack([other, near]), guide) == (1, pytest.approx(10 / 160))
    i, err = match_to_guide(other[None], guide)
    assert i == -1 and err == pytest.approx(100 / 160)                       # beyond 0.25: no match
    assert match_to_guide(other[None], guide, max_error=1.0)[0] == 0
    assert match_to_guide(np.zeros((0, 17, 2)), guide)[0] == -1


def test_tracking_through_a_size_swap_and_a_gap():
    # two people side by side swap sizes; the right one is missed for two frames
    boxes = []
    for t in range(10):
        s = t / 9
        left = [100, 100 + 200 * s, 300, 700]                               # shrinking
        right = [600, 300 - 200 * s, 800, 700]                              # growing
        frame = [left, right] if t % 2 == 0 else [right, left]              # the detector's order varies
        boxes.append(np.array([left] if t in (4, 5) else frame, float))     # right one missed at 4, 5
    ids = track_people(boxes)
    lefts = [int(ids[t][np.argmin(b[:, 0])]) for t, b in enumerate(boxes)]
    assert lefts == [lefts[0]] * 10                                          # one identity throughout
    assert len({int(k) for i in ids for k in i}) == 2                        # the gap was bridged
    # largest per frame switches bodies; the longest track does not
    largest = np.stack([b[np.argmax((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))] for b in boxes])
    assert identity_switches(largest) >= 1
    subject = choose_track(ids, boxes, "longest")
    assert subject == lefts[0]
    rows = track_rows(ids, subject)
    kept = np.stack([boxes[t][r] for t, r in enumerate(rows)])
    assert identity_switches(kept) == 0
    assert choose_track(ids, boxes, str(1 - subject)) == 1 - subject
    with pytest.raises(ValueError, match="does not exist"):
        choose_track(ids, boxes, 7)
    summary = people_summary([len(b) for b in boxes], kept)
    assert summary == {"people_per_frame": {"min": 1, "mean": 1.8, "max": 2}, "frames_without_subject": 0,
                       "identity_switches": 0}


def test_tracking_links_a_fast_mover_by_keypoints():
    # a thin person (40 x 300 px) stepping 60 px a frame: consecutive boxes never overlap
    body = np.stack([np.linspace(0, 40, 17), np.linspace(0, 300, 17)], -1)
    kps = [np.stack([body + [100 + 60 * t, 100], body + [900, 100]]) for t in range(6)]
    boxes = [np.stack([guide_box(k) for k in frame]) for frame in kps]
    assert box_iou(boxes[0][0], boxes[1][0])[0, 0] == 0
    assert [i.tolist() for i in track_people(boxes, kps)] == [[0, 1]] * 6
    assert len({int(i[0]) for i in track_people(boxes)}) == 6              # boxes alone lose them


def test_one_body_found_twice_is_kept_once():
    body = np.stack([np.linspace(100, 140, 17), np.linspace(100, 400, 17)], -1)
    twice = np.stack([body, body + 5, body + [300, 0]])                       # a near copy, then another person
    conf = np.array([[0.6] * 17, [0.9] * 17, [0.5] * 17])
    boxes = np.stack([guide_box(k) for k in twice])
    assert distinct_people(twice, conf, boxes).tolist() == [1, 2]            # the more confident copy stays
    half = body[:6] + 0                                                       # a partial pose inside the body's box
    partial = np.concatenate([half, np.full((11, 2), np.nan)]) + [0, 150]
    assert distinct_people(np.stack([body, partial]), conf[[1, 0]], np.stack([guide_box(body), guide_box(partial)])
                           ).tolist() == [0]


def test_people_config_is_checked():
    with pytest.raises(ValueError, match="people mode"):
        PeopleConfig(mode="everyone").check()
    with pytest.raises(ValueError, match="subject"):
        PeopleConfig(subject="tallest").check()
    with pytest.raises(ValueError, match="subject"):
        PrecomputeConfig(subject="tallest").content("videos")


# ------------------------------------------------------------------- real frames, BlazePose
@pytest.fixture(scope="module")
def blazepose():
    det = build_detector("mediapipe")
    yield det
    det.close()


def test_blazepose_finds_both_people(blazepose, shared_data):
    image, guides = two_person_image(shared_data)
    (people,) = blazepose.detect_people(image[None])
    assert len(people) == 2
    errors = np.array([[median_px(kp, g) for g in guides] for kp in people.keypoints])
    assert sorted(errors.argmin(axis=1).tolist()) == [0, 1] and errors.min(axis=1).max() < 20


def test_each_actor_gets_its_own_pose_on_a_two_person_image(blazepose, shared_data):
    image, guides = two_person_image(shared_data)
    for k, guide in enumerate(guides):
        det, sel = detect_guided(blazepose, image[None], guide[None], PeopleConfig())
        assert sel["person_selection"].tolist() == [1] and sel["match_error"][0] < 0.1
        assert sel["people_count"].tolist() == [2]
        assert median_px(det.keypoints[0], guide) < 20, k
        assert median_px(det.keypoints[0], guides[1 - k]) > 200, k
    # an actor that is not in the frame gets "no detection", not the other person's pose
    absent = guides[0] + [0, 2000]
    det, sel = detect_guided(blazepose, image[None], absent[None], PeopleConfig())
    assert not det.found[0] and (det.confidence[0] == 0).all() and sel["person_selection"].tolist() == [0]


def write_two_actor_3dpw(root, shared_data, n=2, name="courtyard_test_00"):
    """A 3DPW sequence (pickle + images, the release's layout) of the two-person image: each actor's
    3D is their H36M ground truth placed to project onto where they stand in the image."""
    image, guides = two_person_image(shared_data)
    _, _, S = h36m_samples(shared_data)
    K = np.array([[1000.0, 0, 1000.0], [0, 1000.0, 501.0], [0, 0, 1]])
    worlds = []
    for guide, i, scale in zip(guides, (LEFT, RIGHT), (1.0, 0.75)):
        z = S[i][:, 2:3] / scale                       # the smaller person stands farther away
        xyz = np.concatenate([(guide - K[:2, 2]) * z / 1000.0, z], -1)
        worlds.append(smpl24_from_h36m17(np.repeat(xyz[None], n, 0)).reshape(n, 72))
    data = {"sequence": name, "genders": ["m", "m"], "jointPositions": worlds,
            "cam_poses": np.repeat(np.eye(4)[None], n, 0), "cam_intrinsics": K,
            "campose_valid": [np.ones(n, int), np.ones(n, int)], "img_frame_ids": np.arange(n)}
    (root / "sequenceFiles" / "test").mkdir(parents=True)
    with open(root / "sequenceFiles" / "test" / f"{name}.pkl", "wb") as f:
        pickle.dump(data, f, protocol=2)
    (root / "imageFiles" / name).mkdir(parents=True)
    for t in range(n):
        Image.fromarray(image).save(root / "imageFiles" / name / f"image_{t:05d}.jpg", quality=95)


def shard_cues(path):
    from auglift.core.camera import project

    with open_shard(path) as shard:
        cam = shard.attrs["intrinsics"]
        gt2d = project(shard.read("joints_3d_cam"), cam["f"], cam["c"])
        return shard.read("keypoints_2d"), gt2d, shard.attrs, shard.read("person_selection")


def test_3dpw_two_actors_each_get_their_own_cues(shared_data, tmp_path):
    write_two_actor_3dpw(tmp_path / "3dpw", shared_data)
    report, _ = run_precompute("3dpw", tmp_path, tmp_path / "cache", PrecomputeConfig(workers=0), progress=False,
                               log=None)
    assert report["summary"]["shards"]["written"] == 2 and report["summary"]["frames_no_person"] == 0
    kp0, gt0, attrs, sel = shard_cues(tmp_path / "cache/3dpw/courtyard_test_00/actor0/phone.zarr")
    kp1, gt1, _, _ = shard_cues(tmp_path / "cache/3dpw/courtyard_test_00/actor1/phone.zarr")
    assert np.linalg.norm(kp0 - kp1, axis=-1).min() > 100        # the two shards hold different people
    for kp, own, other in ((kp0, gt0, gt1), (kp1, gt1, gt0)):
        for t in range(len(kp)):
            assert median_px(kp[t], own[t]) < 20 and median_px(kp[t], other[t]) > 200
    assert sel.tolist() == [1, 1] and attrs["people"]["policy"] == "ground_truth"
    assert attrs["people"]["summary"]["frames_without_subject"] == 0
    seq = report["sequences"][0]["people"]
    assert seq["policy"] == "ground_truth" and seq["people_per_frame"]["max"] == 2
    assert seq["identity_switches"] == 0
    # the per-frame choice (the old behaviour) gives both actors the same person's cues
    run_precompute("3dpw", tmp_path, tmp_path / "frame", PrecomputeConfig(workers=0, people="frame"),
                   progress=False, log=None)
    f0, _, _, _ = shard_cues(tmp_path / "frame/3dpw/courtyard_test_00/actor0/phone.zarr")
    f1, _, _, _ = shard_cues(tmp_path / "frame/3dpw/courtyard_test_00/actor1/phone.zarr")
    np.testing.assert_array_equal(f0, f1)


# ------------------------------------------------------------------- a tracked own video
def write_swap_video(path, shared_data, n=8):
    """Two people side by side swapping sizes (1.0 <-> 0.6); returns per-frame GT 2D of each."""
    guides = []
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10, options={"crf": "16"})
        stream.height, stream.width, stream.pix_fmt = 1002, 2000, "yuv420p"
        for t in range(n):
            s = t / (n - 1)
            image, g = two_person_image(shared_data, 1.0 - 0.4 * s, 0.6 + 0.4 * s)
            guides.append(g)
            for pkt in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    return np.array(guides)    # (n, 2, 17, 2)


def test_swap_video_keeps_the_subject_and_writes_every_track(shared_data, tmp_path):
    (tmp_path / "videos").mkdir()
    guides = write_swap_video(tmp_path / "videos" / "swap.mp4", shared_data)
    runner = CliRunner()
    args = ["precompute", "--dataset", "videos", "--root", str(tmp_path / "videos"), "--out", str(tmp_path / "cache"),
            "--workers", "0", "--quiet", "--people", "all"]
    res = runner.invoke(main, args + ["--subject", "tallest"])
    assert res.exit_code != 0 and "subject 'tallest'" in res.output and not (tmp_path / "cache").exists()
    res = runner.invoke(main, args + ["--subject", "longest"])
    assert res.exit_code == 0, res.output
    (path,) = (tmp_path / "cache" / "reports").glob("precompute-*.json")
    report = json.loads(path.read_text())
    assert report["config"]["people"] == "all" and report["summary"]["identity_switches"] == 0
    seq = report["sequences"][0]
    assert seq["status"] == "written" and seq["people"]["policy"] == "tracked", report["failures"]
    assert seq["people"]["identity_switches"] == 0
    tracks = seq["people"]["tracks"]
    assert len(tracks) == 2 and tracks[next(iter(tracks))] == "videos/swap/video/0"
    shards = sorted(str(p.relative_to(tmp_path / "cache")) for p in list_shards(tmp_path / "cache"))
    assert len(shards) == 2 and all(s.startswith("videos/swap/video/0") for s in shards)
    actors = []
    for key in tracks.values():
        with open_shard(tmp_path / "cache" / f"{key}.zarr") as shard:
            kp, tid = shard.read("keypoints_2d"), shard.read("track_id")
            assert str(shard.attrs["people"]["track_id"]) in tracks
        found = np.isfinite(kp).all(axis=(1, 2))
        assert found.sum() >= 6 and set(tid[found].tolist()) == {shard.attrs["people"]["track_id"]}
        nearest = [int(np.argmin([median_px(kp[t], guides[t, a]) for a in (0, 1)])) for t in np.flatnonzero(found)]
        assert len(set(nearest)) == 1                                # one body throughout: no switch
        assert max(median_px(kp[t], guides[t, nearest[0]]) for t in np.flatnonzero(found)) < 20
        actors.append(nearest[0])
    assert sorted(actors) == [0, 1]
