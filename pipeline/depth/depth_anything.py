"""Depth Anything V2 through transformers: the AugLift paper's monocular depth model.

Loaded with `AutoModelForDepthEstimation` + `AutoImageProcessor` from a local directory (what
`save_pretrained` or `huggingface-cli download <id> --local-dir DIR` writes). A hub id is only
accepted with `allow_download=True`: precompute never downloads on its own.

Two families, never mixed silently (the shard's `depth_backend.kind` records which):
- metric checkpoints (e.g. Depth-Anything-V2-Metric-Indoor-Small-hf) give metres -> "metric";
- relative checkpoints (e.g. Depth-Anything-V2-Small-hf) give relative inverse depth
  (disparity-like: larger = nearer, unknown scale and shift per image) -> "relative_inverse".
The family is read from `depth_estimation_type` in the checkpoint's config.json; when that is
absent, a model name containing "metric" means metric. A contradiction (config says relative,
name says Metric) or a `kind` param that disagrees is an error.

Each map is resized to the frame size (the processor's own post-processing, bilinear), then
sampled at the keypoints with `sample_keypoint_depth` (min over a radius-3 px disc).

`backend`: "torch" (default), or "onnx" / "onnx-int8": the same model exported to ONNX Runtime
for CPUs without a GPU (`onnx_runtime.py`; int8 = dynamic quantisation), run with as many
threads as torch has here (precompute's --threads). The shard records a non-torch backend in
its params, so the config hash tells the caches apart.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from auglift.core.codec import sample_keypoint_depth
from auglift.pipeline.detect.base import Detections

from .base import DepthBackend, DepthOutput
from .onnx_runtime import (
    INT8_RECIPE,  # a constant; the module's heavy imports are lazy
    OnnxDepthModel,
    fingerprint_dir,
)

KINDS = {"metric": "metric", "relative": "relative_inverse"}
BACKENDS = ("torch", "onnx", "onnx-int8")
HOW_TO_GET = ("download a Depth Anything V2 checkpoint on a machine with network, e.g. "
              "`huggingface-cli download depth-anything/Depth-Anything-V2-Small-hf --local-dir DIR`, and pass "
              "--depth-param model=DIR (or allow the hub with --allow-download)")


def resolve_kind(model: str, config_json: dict | None, requested: str | None = None) -> str:
    """The cache depth kind of a checkpoint, by the rules in the module docstring."""
    says_metric_name = "metric" in Path(str(model).rstrip("/")).name.lower()
    declared = (config_json or {}).get("depth_estimation_type")
    if declared is not None:
        if declared not in KINDS:
            raise ValueError(f"depth-anything {model}: unknown depth_estimation_type {declared!r} in config.json")
        kind = KINDS[declared]
        if kind == "relative_inverse" and says_metric_name:
            raise ValueError(f"depth-anything {model}: config.json says depth_estimation_type='relative' but the "
                             f"model name says Metric; fix the config or pass a correctly named directory")
    else:
        kind = "metric" if says_metric_name else "relative_inverse"
    if requested is not None and requested != kind:
        raise ValueError(f"depth-anything {model}: kind={requested!r} was asked for but the checkpoint is {kind!r}")
    return kind


class DepthAnythingDepth(DepthBackend):
    name = "depth-anything"

    def __init__(self, model: str, allow_download: bool = False, kind: str | None = None,
                 device: str = "cpu", radius: int = 3, input_size: int | None = None, backend: str = "torch",
                 onnx_cache: str | None = None):
        import transformers
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        if backend not in BACKENDS:
            raise ValueError(f"depth-anything: backend must be one of {BACKENDS}, got {backend!r}")
        if backend != "torch" and device != "cpu":
            raise ValueError(f"depth-anything: backend {backend!r} runs on the CPU; use backend=torch on {device}")
        local = Path(model).is_dir()
        if not local and not allow_download:
            raise FileNotFoundError(f"depth-anything: model directory {model!r} not found; " + HOW_TO_GET)
        config_json = None
        if local:
            cfg_file = Path(model) / "config.json"
            if not cfg_file.is_file():
                raise FileNotFoundError(f"depth-anything: {cfg_file} not found (not a save_pretrained directory)")
            config_json = json.loads(cfg_file.read_text())
        self.kind = resolve_kind(model, config_json, kind)
        load = {"local_files_only": not allow_download}
        self._processor = AutoImageProcessor.from_pretrained(model, **load)
        if input_size is not None:
            self._processor.size = {"height": int(input_size), "width": int(input_size)}
        self._model = AutoModelForDepthEstimation.from_pretrained(model, **load).eval().to(device)
        if config_json is None:
            config_json = self._model.config.to_dict()
            self.kind = resolve_kind(model, config_json, kind)
        extra = {} if backend == "torch" else {"backend": backend}   # torch caches keep their hash
        if backend == "onnx-int8":
            extra["int8_recipe"] = INT8_RECIPE   # another recipe gives other depths: another hash
        super().__init__(model=str(model), radius=int(radius), input_size=input_size,
                         max_depth=config_json.get("max_depth") if self.kind == "metric" else None,
                         unit="m" if self.kind == "metric" else "relative inverse depth (arbitrary scale/shift)",
                         **extra)
        self.version = f"transformers-{transformers.__version__}"
        self._device = device
        self._onnx = None
        if backend != "torch":
            import torch

            self._onnx = OnnxDepthModel(self._model, fingerprint_dir(model), onnx_cache,
                                        "int8" if backend == "onnx-int8" else None, torch.get_num_threads())

    def maps(self, frames: np.ndarray):
        """`(n, H, W, 3)` uint8 RGB -> torch `(n, H, W)` float32 depth maps at the frame size."""
        import torch

        n, h, w = frames.shape[:3]
        inputs = self._processor(images=list(frames), return_tensors="pt")
        if self._onnx is not None:
            out = SimpleNamespace(predicted_depth=torch.from_numpy(self._onnx(inputs["pixel_values"].numpy())))
        else:
            with torch.inference_mode():
                out = self._model(pixel_values=inputs["pixel_values"].to(self._device))
        post = self._processor.post_process_depth_estimation(out, target_sizes=[(h, w)] * n)
        return torch.stack([p["predicted_depth"] for p in post]).float()

    def __call__(self, frames: np.ndarray, detections: Detections) -> DepthOutput:
        import torch

        frames = np.asarray(frames)
        maps = self.maps(frames)
        kp = torch.as_tensor(np.asarray(detections.keypoints, np.float64), device=maps.device)
        depth, valid = sample_keypoint_depth(maps, kp, radius=self.params["radius"], return_valid=True)
        depth, valid = depth.cpu().numpy().astype(np.float32), valid.cpu().numpy()
        depth[~np.isfinite(depth)] = np.nan
        return DepthOutput(depth, valid & np.isfinite(depth))

    def close(self) -> None:
        self._model = self._onnx = None
