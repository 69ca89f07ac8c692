"""Mocap cue simulator: (x, y, c, d) shards from 3D joints and cameras, labelled simulated.

- `render`: coarse capsule body, per-keypoint ray tracing -> occlusion-aware depth, visibility
- `noise`: detector-like 2D noise, visibility-driven confidence, depth-model errors
- `views`: virtual cameras (perspective augmentation)
- `sequence`: one sequence and camera -> shard arrays and attributes
- `run`: the whole-dataset driver behind `auglift simulate`
"""
from .config import SIMULATOR_VERSION, SimulateConfig, config_from_dict, load_config
from .noise import (
                    ConfidenceConfig,
                    DepthNoiseConfig,
                    NoiseConfig,
                    add_detector_noise,
                    apply_depth_model,
                    simulate_confidence,
)
from .render import BodyModel, keypoint_depth, visibility
from .run import simulate_dataset
from .sequence import shard_rng, simulate_view
from .views import VirtualCameraConfig, sample_virtual_camera

__all__ = [
    "SIMULATOR_VERSION", "BodyModel", "ConfidenceConfig", "DepthNoiseConfig", "NoiseConfig",
    "SimulateConfig", "VirtualCameraConfig", "add_detector_noise", "apply_depth_model",
    "config_from_dict", "keypoint_depth", "load_config", "sample_virtual_camera", "shard_rng",
    "simulate_confidence", "simulate_dataset", "simulate_view", "visibility",
]

