import numpy as np
import pytest
import torch

from auglift.core import codec as cues


def _map_with(values: dict, shape=(40, 50), background=5.0):
    m = np.full(shape, background, np.float32)
    for (y, x), v in values.items():
        m[y, x] = v
    return m


def test_disc_offsets_radius_3_has_29_pixels_within_distance():
    off = cues.disc_offsets(3)
    assert len(off) == 29
    assert (np.sum(off**2, axis=1) <= 9).all()
    assert {(3, 0), (0, -3), (2, 2)} <= set(map(tuple, off)) and (2, 3) not in set(map(tuple, off))


def test_min_inside_radius_is_found_and_outside_ignored():
    # centre (20, 10): a minimum at distance 3 (inside), a lower one at distance sqrt(13) (outside)
    m = _map_with({(20, 13): 1.5, (22, 13): 0.2})
    d = cues.sample_keypoint_depth(m[None], np.array([[[10.0, 20.0]]]), radius=3)
    assert d[0, 0] == pytest.approx(1.5)
    d1 = cues.sample_keypoint_depth(m[None], np.array([[[10.0, 20.0]]]), radius=4)
    assert d1[0, 0] == pytest.approx(0.2)
    d0 = cues.sample_keypoint_depth(m[None], np.array([[[10.0, 20.0]]]), radius=0)
    assert d0[0, 0] == pytest.approx(5.0)


def test_keypoints_round_to_the_nearest_pixel():
    m = _map_with({(5, 5): 1.0})
    kp = np.array([[[8.4, 5.0], [8.6, 5.0]]])  # rounds to x=8 (distance 3) and x=9 (distance 4)
    np.testing.assert_allclose(cues.sample_keypoint_depth(m[None], kp, 3)[0], [1.0, 5.0])


def test_border_keypoints_clamp_the_disc_and_outside_ones_give_nan():
    m = _map_with({(0, 0): 0.7, (39, 49): 0.3})
    kp = np.array([[[0.0, 0.0], [49.0, 39.0], [-0.6, 3.0], [50.2, 3.0], [3.0, 40.0], [np.nan, 2.0]]])
    d, valid = cues.sample_keypoint_depth(m[None], kp, 3, return_valid=True)
    np.testing.assert_allclose(d[0, :2], [0.7, 0.3])
    assert np.isnan(d[0, 2:]).all()
    np.testing.assert_array_equal(valid[0], [True, True, False, False, False, False])


def test_nan_pixels_in_the_map_are_ignored():
    m = _map_with({(10, 10): np.nan, (10, 11): 2.0})
    assert cues.sample_keypoint_depth(m[None], np.array([[[10.0, 10.0]]]))[0, 0] == pytest.approx(2.0)
    all_nan = np.full((1, 12, 12), np.nan, np.float32)
    assert np.isnan(cues.sample_keypoint_depth(all_nan, np.array([[[5.0, 5.0]]]))).all()


def test_batch_matches_a_plain_loop_and_torch_matches_numpy():
    rng = np.random.default_rng(0)
    maps = rng.uniform(1, 10, size=(6, 60, 80)).astype(np.float32)
    kp = rng.uniform(-5, 85, size=(6, 17, 2))
    kp[2, 3] = np.nan
    fast = cues.sample_keypoint_depth(maps, kp, 3)
    slow = np.full((6, 17), np.nan, np.float32)
    for b in range(6):
        for j in range(17):
            x, y = kp[b, j]
            if not np.isfinite([x, y]).all():
                continue
            cx, cy = int(np.rint(x)), int(np.rint(y))
            if not (0 <= cx < 80 and 0 <= cy < 60):
                continue
            vals = [maps[b, min(max(cy + dy, 0), 59), min(max(cx + dx, 0), 79)]
                    for dy in range(-3, 4) for dx in range(-3, 4) if dx * dx + dy * dy <= 9]
            slow[b, j] = min(vals)
    np.testing.assert_array_equal(fast, slow)
    t = cues.sample_keypoint_depth(torch.from_numpy(maps), torch.from_numpy(kp), 3)
    np.testing.assert_array_equal(t.numpy(), fast)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="batch sizes differ"):
        cues.sample_keypoint_depth(np.zeros((2, 5, 5)), np.zeros((3, 17, 2)))
    with pytest.raises(ValueError, match=r"expected depth \(B,H,W\)"):
        cues.sample_keypoint_depth(np.zeros((5, 5)), np.zeros((3, 17, 2)))


def test_box_rescale_about_centroid():
    kp = np.array([[[0.0, 0.0], [4.0, 0.0], [4.0, 2.0], [0.0, 2.0]]])  # extents 4 and 2: box 3
    assert cues.box_size(kp)[0] == pytest.approx(3.0)
    out = cues.rescale_box(kp, 6.0)
    np.testing.assert_allclose(out.mean(axis=1), kp.mean(axis=1))
    np.testing.assert_allclose(out[0, 2], [6.0, 3.0])  # centroid (2,1) + 2 * (2,1)
    assert cues.box_size(out)[0] == pytest.approx(6.0)
    kp_nan = kp.copy()
    kp_nan[0, 1] = np.nan  # a missing joint does not change the box of the others
    assert cues.box_size(kp_nan)[0] == pytest.approx((4 + 2) / 2)
    single = np.array([[[3.0, 3.0], [np.nan, np.nan]]])
    np.testing.assert_array_equal(cues.rescale_box(single, 5.0)[0, 0], [3.0, 3.0])


def test_confidence_and_relative_depth_encodings():
    np.testing.assert_allclose(cues.encode_confidence([0.0, 0.25, 1.0, np.nan]), [-1, -0.5, 1, -1])
    d = np.array([[3.0, 2.5, 3.4, 6.0, np.nan]])  # root first
    np.testing.assert_allclose(cues.relative_depth(d, "root"), [[0.0, 0.0, 0.4, 2.0, 0.0]])
    np.testing.assert_allclose(cues.relative_depth(d, "root_signed"), [[0.0, -0.5, 0.4, 2.0, 0.0]])
    np.testing.assert_allclose(cues.relative_depth(d, "nearest_joint"), [[0.5, 0.0, 0.9, 2.0, 0.0]])
    assert (cues.relative_depth(np.array([[np.nan, 1.0, 2.0]]), "root") == 0).all()
    with pytest.raises(ValueError, match="unknown depth mode"):
        cues.relative_depth(d, "pelvis")


def test_oracle_ordinal_bins():
    j = np.zeros((1, 4, 3))
    j[0, :, 2] = [3000.0, 3004.0, 3006.0, 2900.0]  # mm
    np.testing.assert_array_equal(cues.ordinal_depth(j, 10.0), [[0, 0, 1, -1]])
    np.testing.assert_array_equal(cues.ordinal_depth(j, 250.0), [[0, 0, 0, 0]])


def test_codec_channels_and_state_round_trip():
    rng = np.random.default_rng(3)
    kp = rng.uniform(300, 700, size=(8, 17, 2))
    conf, depth = rng.uniform(0, 1, (8, 17)), rng.uniform(3, 5, (8, 17))
    codec = cues.CueCodec(cues.CodecConfig("xycd")).fit([(kp, (1000, 1000))])
    x = codec.encode(kp, (1000, 1000), conf, depth)
    assert x.shape == (8, 17, 4) and x.dtype == np.float32
    np.testing.assert_allclose(x[..., 2], 2 * conf - 1, atol=1e-6)
    assert np.all((x[..., 3] >= 0) & (x[..., 3] <= 2)) and np.all(x[:, 0, 3] == 0)
    # after rescaling every pose has the training mean box, in screen units
    np.testing.assert_allclose(cues.box_size(x[..., :2]), codec.mean_box, rtol=1e-5)
    again = cues.CueCodec.from_state_dict(codec.state_dict())
    np.testing.assert_array_equal(again.encode(kp, (1000, 1000), conf, depth), x)
    assert cues.CueCodec(cues.CodecConfig("xy"), codec.mean_box).encode(kp, (1000, 1000)).shape[-1] == 2
    with pytest.raises(ValueError, match="'depth'"):
        codec.encode(kp, (1000, 1000), conf)
    with pytest.raises(ValueError, match="call fit"):
        cues.CueCodec(cues.CodecConfig("xy")).encode(kp, (1000, 1000))


def test_box_rescale_makes_image_size_irrelevant():
    # the same pose seen in a 1000 px and a 2048 px image encodes identically up to position
    kp = np.random.default_rng(4).uniform(100, 400, size=(1, 17, 2))
    codec = cues.CueCodec(cues.CodecConfig("xy"), mean_box=0.5)
    a = codec.encode(kp, (1000, 1000))
    b = codec.encode(kp * 2.048, (2048, 2048))
    np.testing.assert_allclose(a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True), atol=1e-5)


def test_undetected_joints_encode_without_nan():
    kp = np.full((2, 17, 2), 500.0) + np.arange(17)[:, None]
    kp[1] = np.nan  # nobody in frame 1
    codec = cues.CueCodec(cues.CodecConfig("xycd"), mean_box=0.3)
    x = codec.encode(kp, (1000, 1000), np.where(np.isnan(kp[..., 0]), 0, 0.9), np.full((2, 17), np.nan))
    assert np.isfinite(x).all()
    np.testing.assert_array_equal(x[1, :, 2], -1)


def test_relative_inverse_d_channel_is_unchanged_by_any_positive_scale_and_shift():
    from auglift.core.codec import CodecConfig, CueCodec

    rng = np.random.default_rng(3)
    metric = rng.uniform(2.0, 5.0, (64, 17))       # metres, like a person 2-5 m away
    inverse = 1.0 / metric
    inverse[5, 3] = np.nan                          # an unknown joint stays unknown
    for mode in ("root", "root_signed", "nearest_joint"):
        codec = CueCodec(CodecConfig(channels="xycd", depth_mode=mode, depth_kind="relative_inverse"))
        ref = codec.encode_depth(inverse)
        assert np.isfinite(ref).all() and np.ptp(ref) > 0
        for scale, shift in ((0.01, 0.0), (7.0, -3.0), (123.0, 40.0)):
            scale_per_frame = scale * rng.uniform(0.5, 2.0, (64, 1))   # each frame its own a and b
            shift_per_frame = shift + rng.uniform(-1.0, 1.0, (64, 1))
            np.testing.assert_allclose(codec.encode_depth(scale_per_frame * inverse + shift_per_frame), ref,
                                       atol=1e-9)
    # the same values read as metric depth do change with scale: the kind decides the encoding
    metric_codec = CueCodec(CodecConfig(channels="xycd", depth_kind="metric"))
    assert not np.allclose(metric_codec.encode_depth(2 * metric), metric_codec.encode_depth(metric))


def test_relative_inverse_encoding_keeps_depth_order_farther_is_larger():
    from auglift.core.codec import relative_inverse_to_depth

    metric = np.array([[2.0, 3.0, 4.0, 2.5]])
    enc = relative_inverse_to_depth(1.0 / metric)
    assert (np.argsort(enc[0]) == np.argsort(metric[0])).all()
