"""The four lifters on real Human3.6M motion (S9 "Walking 1", camera 1).

Inputs are the ground-truth 3D joints projected through the real camera, so confidence is 1
and the depth cue is the exact root-relative camera depth: oracle cues, labelled as such.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from auglift.core.camera import project, world_to_camera
from auglift.core.skeleton import H36M32_TO_17
from auglift.lifters.metrics import mpjpe_loss
from auglift.lifters.models import MODELS, PRESETS, build_config, build_model, count_parameters
from auglift.lifters.models.videopose3d import strided_conv

FIRST_LAYER = {
    "simple_baseline": {"input.weight"},
    "videopose3d": {"expand_conv.weight"},
    "poseformer": {"joint_embed.weight"},
    "motionbert": {"joint_embed.weight"},
}


@pytest.fixture(scope="module")
def walking(shared_data):
    """(T, 17, 4) oracle cues (x, y normalised to [-1, 1] by image width, c=1, depth in m)
    and (T, 17, 3) root-relative camera-space 3D in metres."""
    h5py = pytest.importorskip("h5py")
    h36m = shared_data / "h36m"
    with h5py.File(h36m / "S9/MyPoses/3D_positions/Walking 1.h5", "r") as f:
        world = f["3D_positions"][()].T.reshape(-1, 32, 3)[:, list(H36M32_TO_17)]
    with h5py.File(h36m / "cameras.h5", "r") as f:
        cam = {k: f["subject9/camera1"][k][()] for k in ("R", "T", "f", "c", "k", "p")}
    xc = world_to_camera(world, cam["R"].T, cam["T"].ravel())
    uv = project(xc, cam["f"], cam["c"], cam["k"], cam["p"])
    xy = uv / 1000.0 * 2.0 - 1.0  # image 1000 px wide
    depth = (xc[..., 2] - xc[:, :1, 2]) / 1000.0
    cues = np.concatenate([xy, np.ones_like(depth)[..., None], depth[..., None]], axis=-1)
    target = (xc - xc[:, :1]) / 1000.0
    return torch.tensor(cues, dtype=torch.float32), torch.tensor(target, dtype=torch.float32)


def windows(walking, frames: int, count: int, in_channels: int, stride: int = 7):
    cues, target = walking
    starts = range(0, count * stride, stride)
    x = torch.stack([cues[s:s + frames, :, :in_channels] for s in starts])
    y = torch.stack([target[s:s + frames] for s in starts])
    return x, y


def target_for(model, y: torch.Tensor) -> torch.Tensor:
    if model.predicts == "all":
        return y
    centre = model.receptive_field // 2
    return y[:, centre:centre + 1]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("in_channels", [2, 3, 4])
def test_forward_backward_small(walking, name, in_channels):
    torch.manual_seed(0)
    model = build_model(name, in_channels=in_channels, preset="small")
    rf = model.receptive_field
    x, y = windows(walking, rf, 4, in_channels)
    out = model(x)
    expected_t = rf if model.predicts == "all" else 1
    assert out.shape == (4, expected_t, 17, 3)
    loss = mpjpe_loss(out, target_for(model, y))
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))  # eval mode is deterministic


@pytest.mark.parametrize("name", sorted(MODELS))
def test_only_input_layer_depends_on_channels(name):
    shapes = {c: {n: tuple(p.shape) for n, p in build_model(name, c, preset="small").named_parameters()}
              for c in (2, 4)}
    assert shapes[2].keys() == shapes[4].keys()
    differ = {n for n in shapes[2] if shapes[2][n] != shapes[4][n]}
    assert differ == FIRST_LAYER[name]


def test_videopose3d_receptive_fields_measured_by_gradient():
    expected = {"vp3d-1": 1, "vp3d-9": 9, "vp3d-27": 27, "vp3d-81": 81, "vp3d-243": 243}
    for preset, rf in expected.items():
        assert build_config("videopose3d", 2, preset=preset).receptive_field == rf
        torch.manual_seed(0)
        model = build_model("videopose3d", 2, preset=preset, channels=16).eval()
        assert model.receptive_field == rf
        x = torch.randn(1, rf + 4, 17, 2, requires_grad=True)
        out = model(x)
        assert out.shape == (1, 5, 17, 3)  # one output per full window
        out[0, 0].sum().backward()
        seen = (x.grad[0].abs().sum(dim=(1, 2)) > 0).nonzero().ravel().tolist()
        assert seen == list(range(rf)), preset


@pytest.mark.parametrize("name", ["simple_baseline", "videopose3d"])
def test_sliding_window_equals_per_window_prediction(walking, name):
    """A long input (dilated path) predicts the centre of every window the same way as the
    window alone (strided "optimised" path for VideoPose3D, frame by frame for SimpleBaseline)."""
    torch.manual_seed(0)
    model = build_model(name, 3, preset="small").eval()
    rf = model.receptive_field
    cues, _ = walking
    seq = cues[None, :rf + 10, :, :3]
    with torch.no_grad():
        full = model(seq)
        assert full.shape == (1, 11, 17, 3)
        for i in (0, 5, 10):
            alone = model(seq[:, i:i + rf])
            torch.testing.assert_close(full[:, i:i + 1], alone, rtol=1e-4, atol=1e-5)


def test_transformers_mix_all_frames_and_check_lengths():
    torch.manual_seed(0)
    pf = build_model("poseformer", 2, preset="small").eval()
    x = torch.randn(1, 9, 17, 2, requires_grad=True)
    pf(x).sum().backward()
    assert (x.grad[0].abs().sum(dim=(1, 2)) > 0).all()  # the centre pose sees every frame
    with pytest.raises(ValueError, match="exactly 9 frames"):
        pf(torch.randn(1, 7, 17, 2))

    mb = build_model("motionbert", 2, preset="small").eval()
    x = torch.randn(1, 5, 17, 2, requires_grad=True)  # shorter than `frames` is allowed
    out = mb(x)
    assert out.shape == (1, 5, 17, 3)
    out[0, 0].sum().backward()
    assert (x.grad[0].abs().sum(dim=(1, 2)) > 0).all()  # frame 0 attends to the last frame too
    with pytest.raises(ValueError, match="at most 9 frames"):
        mb(torch.randn(1, 10, 17, 2))
    with pytest.raises(ValueError, match="C=2 channels"):
        mb(torch.randn(1, 5, 17, 4))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_training_steps_reduce_loss(walking, name):
    torch.manual_seed(0)
    no_noise = {"dropout": 0.0}
    if name in ("poseformer", "motionbert"):
        no_noise["drop_path"] = 0.0
    model = build_model(name, 4, preset="small", **no_noise)
    x, y = windows(walking, model.receptive_field, 16, 4)
    y = target_for(model, y)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = mpjpe_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    model.eval()
    with torch.no_grad():
        assert mpjpe_loss(model(x), y).item() < losses[0]


def test_paper_presets_parameter_counts():
    counts = {name: count_parameters(build_model(name, 2, preset="paper")) for name in MODELS}
    assert 4.0e6 < counts["simple_baseline"] < 5.0e6     # paper: "4-5 million"
    assert 16.5e6 < counts["videopose3d"] < 17.5e6       # paper: 16.95 M (243 frames)
    assert 9.3e6 < counts["poseformer"] < 9.9e6          # paper: 9.6 M (81 frames)
    assert 40e6 < counts["motionbert"] < 45e6            # paper: 42.3 M
    vp27 = count_parameters(build_model("videopose3d", 2, preset="vp3d-27"))
    assert 8.3e6 < vp27 < 8.8e6                          # paper: 8.56 M
    lite = count_parameters(build_model("motionbert", 2, preset="lite"))
    assert 15e6 < lite < 17e6                            # paper: 16.0 M
    frames = {p: build_config(n, 2, preset=p).receptive_field
              for n in ("poseformer", "motionbert") for p in PRESETS[n] if p[-1].isdigit()}
    assert frames == {"poseformer-9": 9, "poseformer-27": 27, "poseformer-81": 81,
                      "motionbert-9": 9, "motionbert-27": 27, "motionbert-243": 243}


def test_registry_errors_and_config_round_trip():
    with pytest.raises(ValueError, match="unknown lifter 'gcn'"):
        build_model("gcn", 2)
    with pytest.raises(ValueError, match="unknown preset 'vp3d-5'"):
        build_model("videopose3d", 2, preset="vp3d-5")
    with pytest.raises(ValueError, match="no config field"):
        build_model("poseformer", 2, preset="small", channels=3)
    with pytest.raises(ValueError, match="odd"):
        build_model("videopose3d", 2, filter_widths=[2, 3])
    torch.manual_seed(0)
    model = build_model("videopose3d", 3, preset="small").eval()
    cfg = dataclasses.asdict(model.config)
    cfg["filter_widths"] = list(cfg["filter_widths"])  # as it comes back from JSON
    name = model.name
    again = build_model(name, **cfg).eval()
    again.load_state_dict(model.state_dict())
    x = torch.randn(2, model.receptive_field, 17, 3)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))


@pytest.mark.parametrize("width,frames", [(1, 4), (3, 9), (5, 5)])
def test_strided_conv_equals_conv1d_with_stride_equal_to_width(width, frames):
    """VideoPose3D's optimised-training convolution (a matrix product over groups of `width`
    frames) computes what conv1d with stride = filter width does."""
    torch.manual_seed(0)
    h = torch.randn(3, 7, frames)
    weight = torch.randn(11, 7, width)
    torch.testing.assert_close(strided_conv(h, weight), torch.nn.functional.conv1d(h, weight, stride=width),
                               rtol=1e-5, atol=1e-5)
