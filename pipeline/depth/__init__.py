"""Depth backends, chosen by name; each returns one depth per keypoint and says its kind.

Heavy dependencies (transformers) load only when a backend is built.
"""
from __future__ import annotations

from auglift.core.config_io import registered

from .base import DepthBackend, DepthOutput

# name -> "module:class" (relative to this package)
DEPTH_BACKENDS: dict[str, str] = {
    "landmark-z": "simple:LandmarkZDepth",               # embedded default: BlazePose's own z
    "depth-anything": "depth_anything:DepthAnythingDepth",  # paper-faithful, local checkpoint
    "none": "simple:NoDepth",
}


def depth_class(name: str) -> type[DepthBackend]:
    return registered(DEPTH_BACKENDS, __name__, name, "depth backend")


def build_depth(name: str, **params) -> DepthBackend:
    """Instantiate depth backend `name` with its params (see each backend's docstring)."""
    return depth_class(name)(**params)


__all__ = ["DEPTH_BACKENDS", "DepthBackend", "DepthOutput", "build_depth", "depth_class"]
