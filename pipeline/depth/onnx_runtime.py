"""Depth Anything through ONNX Runtime on the CPU: the transformers model, exported once.

`OnnxDepthModel(model, fingerprint, ...)` exports the (eval-mode) transformers model with
torch.onnx (the TorchScript exporter, opset 17) for one input height x width - the image
processor's output for a video's frame size, so one export per frame shape - with a dynamic
batch axis, and runs it with onnxruntime's CPU provider at `threads` intra-op threads.
`quantize="int8"`: onnxruntime's dynamic quantisation after its pre-processing pass: int8
weights for the MatMul/Gemm layers with constant weights (the ViT's projections and MLPs) and
int8 attention products (Q K^T and the weights times V, both operands quantised per call);
activations are quantised per call. Convolutions and the head stay fp32: int8 convolutions
were slower dynamically (ConvInteger: 1.9x the time of the graph without it) and, calibrated on
real frames (QLinearConv), faster but 13 % of the depth range off torch (measured, V2 Small
random weights, 518 px, 1 thread, AVX2 without VNNI). `INT8_RECIPE` names this recipe: it is in
the export's file name and in the shard's depth params, so exports and caches of another
recipe are never mixed with this one.

Exports live under `cache_dir` (default `$AUGLIFT_ONNX_CACHE` or ~/.cache/auglift/onnx), named by
the model's fingerprint (its config and weights), the shape and the quantisation, and are
written atomically. Agreement with the torch model on the same inputs, random weights, as max
abs error / max |depth| of the map (tests/test_depth_onnx.py checks the bounds): fp32 <= 1e-4
(measured 1.4e-5 on the test's tiny model, 1.7e-5 on V2 Small at 518 px); int8 <= 5e-2
(measured 2.0e-3 on the tiny model, 1.5e-2 on V2 Small) - a different output, which the cache
records in the params.
Heavy imports (torch, onnx, onnxruntime) are lazy: this module loads only for this backend.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

QUANTIZE = (None, "int8")
INT8_RECIPE = "dyn-mm-attn"   # dynamic int8, every MatMul/Gemm incl. attention products
OPSET = 17


def default_cache_dir() -> Path:
    return Path(os.environ.get("AUGLIFT_ONNX_CACHE", Path.home() / ".cache" / "auglift" / "onnx"))


def fingerprint_dir(model_dir: str | os.PathLike) -> str:
    """Short hash of a save_pretrained directory's config and weight files (names, sizes, mtimes)."""
    h = hashlib.sha256()
    root = Path(model_dir)
    for p in sorted(root.iterdir()) if root.is_dir() else []:
        if p.is_file() and (p.suffix in (".json", ".safetensors", ".bin")):
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    h.update(str(model_dir).encode())
    return h.hexdigest()[:12]


class OnnxDepthModel:
    """`__call__(pixel_values (n, 3, H, W) float32) -> predicted_depth (n, H', W') float32`."""

    def __init__(self, model, fingerprint: str, cache_dir: str | os.PathLike | None = None,
                 quantize: str | None = None, threads: int = 1):
        if quantize not in QUANTIZE:
            raise ValueError(f"onnx quantize must be one of {QUANTIZE}, got {quantize!r}")
        if threads < 1:
            raise ValueError(f"onnx threads must be >= 1, got {threads}")
        self.model, self.fingerprint, self.quantize, self.threads = model, fingerprint, quantize, int(threads)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._sessions: dict[tuple[int, int], object] = {}

    def path_for(self, height: int, width: int) -> Path:
        tag = f"{INT8_RECIPE}-int8" if self.quantize == "int8" else "fp32"
        return self.cache_dir / f"depth_anything-{self.fingerprint}-{height}x{width}-opset{OPSET}-{tag}.onnx"

    def __call__(self, pixel_values: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(pixel_values, np.float32)
        session = self._session(int(x.shape[2]), int(x.shape[3]))
        return session.run(None, {"pixel_values": x})[0]

    def _session(self, height: int, width: int):
        key = (height, width)
        if key not in self._sessions:
            self._sessions[key] = self.new_session(height, width)
        return self._sessions[key]

    def new_session(self, height: int, width: int, profile_prefix: str | None = None):
        """An onnxruntime CPU session of the export for this frame shape (exported first when
        missing), at `threads` intra-op threads; `profile_prefix`: with onnxruntime's profiler on."""
        import onnxruntime as ort

        path = self.path_for(height, width)
        if not path.exists():
            self._export(path, height, width)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        if profile_prefix is not None:
            opts.enable_profiling, opts.profile_file_prefix = True, profile_prefix
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def _export(self, path: Path, height: int, width: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}")
        fp32 = tmp.with_suffix(".fp32.onnx")
        try:
            export_onnx(self.model, fp32, height, width)
            if self.quantize == "int8":
                quantize_int8(fp32, tmp.with_suffix(".onnx"))
                fp32.unlink()
            else:
                fp32.rename(tmp.with_suffix(".onnx"))
            os.replace(tmp.with_suffix(".onnx"), path)
        finally:
            for leftover in path.parent.glob(f"{tmp.name}*"):
                leftover.unlink(missing_ok=True)


def export_onnx(model, path: str | os.PathLike, height: int, width: int) -> Path:
    """Export a transformers depth model's `predicted_depth` for `(n, 3, height, width)` inputs."""
    import torch

    class _Depth(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, pixel_values):
            return self.inner(pixel_values=pixel_values).predicted_depth

    x = torch.zeros(1, 3, height, width, device=next(model.parameters()).device)
    with torch.no_grad():
        torch.onnx.export(_Depth(model.eval()), (x,), str(path), dynamo=False, opset_version=OPSET,
                          input_names=["pixel_values"], output_names=["predicted_depth"],
                          dynamic_axes={"pixel_values": {0: "n"}, "predicted_depth": {0: "n"}})
    return Path(path)


def quantize_int8(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Dynamic int8 quantisation of every MatMul/Gemm, attention products included (`INT8_RECIPE`)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = Path(str(dst) + ".pre.onnx")
    try:
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_dynamic(str(pre), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"],
                         extra_options={"MatMulConstBOnly": False})
    finally:
        pre.unlink(missing_ok=True)
    return Path(dst)
