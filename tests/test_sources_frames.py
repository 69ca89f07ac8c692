"""Frame sources on the shared real videos and images, intact and damaged (temp copies)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from auglift.pipeline.frames import FrameSourceError, FrameSpec, iter_frames
from auglift.pipeline.frames.images import iter_image_batches, list_images, read_image
from auglift.pipeline.frames.video import iter_video_batches, list_videos, probe_video


@pytest.fixture(scope="module")
def street(shared_data):
    return shared_data / "videos" / "street_multi_person.mp4"


def _all(path, **kw):
    return list(iter_video_batches(path, **kw))


def test_probe_and_batches_stream_every_frame(street):
    info = probe_video(street)
    assert (info.width, info.height, info.n_frames) == (960, 540, 5)
    assert info.fps == pytest.approx(5.0)
    batches = _all(street, batch_size=2)
    assert [len(b) for b in batches] == [2, 2, 1]
    frames = np.concatenate([b.frames for b in batches])
    assert frames.shape == (5, 540, 960, 3) and frames.dtype == np.uint8
    assert np.concatenate([b.frame_index for b in batches]).tolist() == [0, 1, 2, 3, 4]
    # batching does not change the pixels, and consecutive frames of a real video differ
    one = _all(street, batch_size=5)[0].frames
    assert np.array_equal(one, frames)
    assert not np.array_equal(frames[0], frames[4])


def test_decoded_colours_match_ffmpeg_and_buffer_reuse(shared_data):
    """The I420 fast path gives FFmpeg's own RGB conversion up to rounding, on both real videos
    (with row padding in FFmpeg's planes); a reused buffer holds each batch's frames in turn."""
    import av

    for path in sorted((shared_data / "videos").glob("*.mp4")):
        with av.open(str(path)) as container:
            ref = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        ours = np.concatenate([b.frames for b in _all(path, batch_size=2)])
        diff = np.abs(ours.astype(np.int16) - ref)
        assert ours.shape == ref.shape and diff.max() <= 8 and diff.mean() < 1.5 and (diff > 2).mean() < 0.01, path.name
        reused, seen = [], []
        for b in iter_video_batches(path, batch_size=2, reuse_buffer=True):
            reused.append(b.frames)
            seen.append(b.frames.copy())
        assert all(r is reused[0] for r in reused[:-1])   # one array for every full batch
        assert np.array_equal(np.concatenate(seen), ours)


def test_frame_selection_and_short_videos(street):
    full = _all(street, batch_size=5)[0].frames
    sel = _all(street, batch_size=4, frames=[1, 3, 4])
    assert sel[0].frame_index.tolist() == [1, 3, 4]
    assert np.array_equal(sel[0].frames, full[[1, 3, 4]])
    with pytest.raises(FrameSourceError, match="frame 7") as e:
        _all(street, frames=[2, 7])
    assert e.value.frame == 7 and e.value.path == str(street)
    short = _all(street, frames=[2, 7, 9], allow_short=True)
    assert np.concatenate([b.frame_index for b in short]).tolist() == [2]
    with pytest.raises(ValueError, match="strictly increasing"):
        _all(street, frames=[3, 1])


def test_truncated_video_without_index_cannot_open(street, tmp_path):
    bad = tmp_path / "cut.mp4"
    data = street.read_bytes()
    bad.write_bytes(data[: len(data) * 6 // 10])  # this file keeps its index (moov) at the end
    with pytest.raises(FrameSourceError) as e:
        _all(bad)
    assert e.value.path == str(bad) and "cannot open" in str(e.value) and str(bad) in str(e.value)


def test_truncated_faststart_video_reports_the_missing_frame(shared_data, tmp_path):
    import av

    src = shared_data / "videos" / "posetrack_000001.mp4"
    fast = tmp_path / "fast.mp4"
    with av.open(str(src)) as inp, av.open(str(fast), "w", options={"movflags": "faststart"}) as out:
        stream = inp.streams.video[0]
        o = out.add_stream_from_template(stream)
        for pkt in inp.demux(stream):
            if pkt.dts is not None:
                pkt.stream = o
                out.mux(pkt)
    assert sum(len(b) for b in _all(fast)) == 5
    cut = tmp_path / "fast_cut.mp4"
    cut.write_bytes(fast.read_bytes()[: fast.stat().st_size // 2])
    with pytest.raises(FrameSourceError, match="truncated") as e:
        _all(cut)
    assert e.value.path == str(cut) and 0 < e.value.frame < 5


def test_corrupted_video_names_file_and_frame(street, tmp_path):
    data = bytearray(street.read_bytes())
    for j in range(60000, 120000):  # scramble the middle of the media data
        data[j] = (data[j] * 7 + 13) % 256
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(bytes(data))
    with pytest.raises(FrameSourceError) as e:
        _all(bad)
    assert e.value.path == str(bad) and isinstance(e.value.frame, int)
    assert f"frame {e.value.frame}" in str(e.value) and "decode failed" in str(e.value)


def test_missing_video_and_listing(shared_data, tmp_path):
    with pytest.raises(FrameSourceError, match="no such video"):
        probe_video(tmp_path / "nope.mp4")
    assert [p.name for p in list_videos(shared_data / "videos")] == ["posetrack_000001.mp4",
                                                                     "street_multi_person.mp4"]


def test_image_batches_and_frame_indices(shared_data):
    paths = sorted((shared_data / "samples").glob("3dhp_*.jpg"))
    batches = list(iter_image_batches(paths, batch_size=3, frame_index=[10, 20, 30, 40]))
    assert [len(b) for b in batches] == [3, 1]
    assert batches[0].frames.shape == (3, 2048, 2048, 3)
    assert batches[1].frame_index.tolist() == [40] and batches[1].files == (str(paths[3]),)
    assert np.array_equal(batches[0].frames[1], read_image(paths[1]))
    # through the generic spec, as precompute uses it
    spec = FrameSpec("images", tuple(map(str, paths[:2])))
    assert [b.frame_index.tolist() for b in iter_frames(spec, batch_size=8)] == [[0, 1]]


def test_images_of_different_sizes_are_refused(shared_data):
    samples = shared_data / "samples"
    paths = [samples / "h36m_S1_Directions_1.54138969_000001.jpg", samples / "3dhp_TS1_002001.jpg"]
    with pytest.raises(FrameSourceError, match="2048x2048") as e:
        list(iter_image_batches(paths))
    assert e.value.path == str(paths[1]) and e.value.frame == 1


def test_truncated_image_is_an_error(shared_data, tmp_path):
    src = shared_data / "samples" / "h36m_S7_Greeting.55011271_000396.jpg"
    good, bad = tmp_path / "a.jpg", tmp_path / "b.jpg"
    shutil.copy(src, good)
    bad.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.jpg"]
    with pytest.raises(FrameSourceError) as e:
        list(iter_image_batches(list_images(tmp_path), batch_size=1))
    assert e.value.path == str(bad) and e.value.frame == 1 and "cannot decode" in str(e.value)
