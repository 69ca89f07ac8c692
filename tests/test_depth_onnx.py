"""The ONNX Runtime path of Depth Anything against the torch model, on a real frame (random weights)."""
from __future__ import annotations

import numpy as np
import pytest
from test_depth import _save_depth_anything

from auglift.pipeline.depth import build_depth
from auglift.pipeline.depth.onnx_runtime import INT8_RECIPE
from auglift.pipeline.frames.images import read_image

pytest.importorskip("onnxruntime")

# Documented in pipeline/depth/onnx_runtime.py: relative to the largest |depth| of the map.
TOLERANCE = {"onnx": 1e-4, "onnx-int8": 5e-2}


@pytest.fixture(scope="module")
def model_and_frame(shared_data, tmp_path_factory):
    model = _save_depth_anything(tmp_path_factory.mktemp("da") / "Depth-Anything-V2-Tiny-random", "relative")
    frame = read_image(shared_data / "samples" / "h36m_S7_Greeting.55011271_000396.jpg")
    return model, frame


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_onnx_depth_agrees_with_torch(model_and_frame, tmp_path, backend):
    model, frame = model_and_frame
    frames = np.stack([frame, frame[:, ::-1].copy()])           # a batch of two different frames
    ref = build_depth("depth-anything", model=str(model)).maps(frames).numpy()
    onnx = build_depth("depth-anything", model=str(model), backend=backend, onnx_cache=str(tmp_path))
    got = onnx.maps(frames).numpy()
    assert got.shape == ref.shape == (2, *frame.shape[:2])
    err = np.abs(got - ref).max() / np.abs(ref).max()
    assert err <= TOLERANCE[backend], err
    print(f"{backend}: max abs error / max |depth| = {err:.2e}")
    if backend == "onnx-int8":
        assert err > 1e-6          # it did run the quantised graph, not the fp32 one
    exported = sorted(tmp_path.glob("*.onnx"))
    assert len(exported) == 1 and exported[0].name.endswith("int8.onnx" if "int8" in backend else "fp32.onnx")
    assert onnx.describe()["params"]["backend"] == backend
    # the int8 recipe is part of the depth params (so of the cache's config hash), fp32 has none
    assert onnx.describe()["params"].get("int8_recipe") == (INT8_RECIPE if backend == "onnx-int8" else None)
    assert "backend" not in build_depth("depth-anything", model=str(model)).describe()["params"]
    # a second backend reuses the export (same file, untouched)
    stamp = exported[0].stat().st_mtime_ns
    again = build_depth("depth-anything", model=str(model), backend=backend, onnx_cache=str(tmp_path))
    np.testing.assert_array_equal(again.maps(frames).numpy(), got)
    assert exported[0].stat().st_mtime_ns == stamp and len(list(tmp_path.iterdir())) == 1


def test_onnx_backend_refuses_bad_choices(model_and_frame, tmp_path):
    model, _ = model_and_frame
    with pytest.raises(ValueError, match="backend must be one of"):
        build_depth("depth-anything", model=str(model), backend="tensorrt")
    with pytest.raises(ValueError, match="runs on the CPU"):
        build_depth("depth-anything", model=str(model), backend="onnx", device="cuda")
