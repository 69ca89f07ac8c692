"""The simulator's configuration: one frozen dataclass tree, loadable from YAML."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from auglift.core.config_io import check_fields, read_yaml_mapping

from .noise import ConfidenceConfig, DepthNoiseConfig, NoiseConfig
from .render import BodyModel
from .views import VirtualCameraConfig

# Bumped whenever the same config would give different numbers; it goes into the config hash.
SIMULATOR_VERSION = "1"


@dataclass(frozen=True)
class SimulateConfig:
    """Everything that decides a simulated shard's contents (with the seed).

    keypoints: "simulated" (projected ground truth + `noise`) or "real" (the dataset's own 2D
    detections where it has them, e.g. Stacked Hourglass on Human3.6M; simulated elsewhere and
    for virtual views). Depth and confidence are simulated either way.
    ordinal_bins_mm: bins of the ORACLE ordinal arrays `ordinal_<bin>mm` (the names the lifters'
    data loader looks for). batch_frames only bounds memory; it does not change results.
    """

    seed: int = 0
    keypoints: str = "simulated"
    radius: int = 3
    occlusion_margin_mm: float = 30.0
    background_offset_m: float | None = 2.5
    ordinal_bins_mm: tuple[float, ...] = (10.0, 100.0, 250.0)
    real_cameras: bool = True
    batch_frames: int = 256
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    confidence: ConfidenceConfig = field(default_factory=ConfidenceConfig)
    depth: DepthNoiseConfig = field(default_factory=DepthNoiseConfig)
    body: BodyModel = field(default_factory=BodyModel)
    views: VirtualCameraConfig = field(default_factory=VirtualCameraConfig)

    def __post_init__(self):
        if self.keypoints not in ("simulated", "real"):
            raise ValueError(f"keypoints must be 'simulated' or 'real', got {self.keypoints!r}")
        if self.radius < 0:
            raise ValueError(f"radius must be >= 0, got {self.radius}")
        if any(b <= 0 for b in self.ordinal_bins_mm):
            raise ValueError(f"ordinal_bins_mm must be positive, got {self.ordinal_bins_mm}")
        if self.batch_frames < 1:
            raise ValueError(f"batch_frames must be >= 1, got {self.batch_frames}")

    def hashed(self) -> dict:
        """What the config hash covers (all of it but the memory-only `batch_frames`)."""
        d = dataclasses.asdict(self)
        d.pop("batch_frames")
        return {"simulator_version": SIMULATOR_VERSION, **d}


def config_from_dict(data: dict | None, where: str = "config") -> SimulateConfig:
    """Build a SimulateConfig from nested plain data; unknown keys are an error naming them."""
    return _build(SimulateConfig, data or {}, where)


def load_config(path: str | Path) -> SimulateConfig:
    """Read a YAML file of SimulateConfig fields (any subset; the rest keep their defaults)."""
    data = read_yaml_mapping(path, "simulator config")
    try:
        return config_from_dict(data, str(path))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from None


def _build(cls, data: dict, where: str):
    check_fields(cls, data, where)
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in data.items():
        default = getattr(cls(), name) if name in fields else None
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value or {}, f"{where}.{name}")
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)
