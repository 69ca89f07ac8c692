"""The data every training study draws from, defined once so that the studies share it.

All H36M caches are SIMULATED cues (2D detections, confidence, occlusion-aware depth) made from
the real H36M mocap by `pipeline.simulate`; the shards say so in their provenance.

- `h36m`: the four real cameras, every subject (train S1 S5 S6 S7, validation S8, test S9 S11).
- `h36m_sh2d`: S9/S11 with the REAL Stacked-Hourglass 2D detections shipped with H36M (no
  confidence in them: confidence and depth stay simulated) - a real-detector test column.
- `views_train`: virtual cameras around the training motion (the paper's perspective
  augmentation), S1 S5 S6 S7 and S8.
- `views_ood`: SYNTHETIC out-of-distribution views of the test motion (S9/S11): cameras closer,
  higher and with other focal lengths and image size than H36M's, roughly like MPI-INF-3DHP's
  studio. Labelled "synthetic OOD" wherever it appears.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from auglift.pipeline.simulate import SimulateConfig, VirtualCameraConfig

from .context import TEST_SUBJECTS, TRAIN_SUBJECTS, VAL_SUBJECTS, StudyContext

# Labels used as table columns everywhere, with what they are.
ID = "H36M S9/S11 (ID)"
ID_SH = "H36M S9/S11, real SH 2D"
OOD_VIEWS = "synthetic OOD views"
OOD_3DHP = "3DHP real frames"
TEST_SET_NOTES = {
    ID: "in-distribution: simulated cues from the test subjects' mocap through the real H36M cameras",
    ID_SH: "the same frames with the real Stacked-Hourglass 2D detections of H36M (confidence and depth "
           "still simulated)",
    OOD_VIEWS: "SYNTHETIC out-of-distribution: the test motion seen by virtual cameras closer, higher and with "
               "other focal lengths and image size than H36M's (a stand-in for a new dataset's cameras)",
    OOD_3DHP: "REAL MPI-INF-3DHP sample frames through the real detector (MediaPipe BlazePose) and depth backend "
              "(BlazePose landmark z, kind landmark_z, while the lifters learnt simulated metric depth); frames "
              "where nobody was detected are left out; 3 or 4 frames, so indicative only",
}


@dataclass(frozen=True)
class DataSize:
    actions: tuple[str, ...] | None = None   # action globs; None = all
    views_train: int = 1                     # virtual cameras per training (subject, action)
    views_ood: int = 2                       # virtual cameras per test (subject, action)
    workers: int = 2


def data_size(size: str) -> DataSize:
    return DataSize() if size == "small" else DataSize(views_train=4, views_ood=4, workers=16)


def sim_config(seed: int, **changes):
    return dataclasses.replace(SimulateConfig(seed=seed), **changes)


def ood_view_config(n: int):
    return VirtualCameraConfig(num_views=n, elevation_deg=(20.0, 55.0), distance_m=(1.5, 3.0),
                               focal_px=(1300.0, 1700.0), image_size=(2048, 2048))


def train_view_config(n: int):
    return VirtualCameraConfig(num_views=n)


def h36m(ctx: StudyContext, ds: DataSize) -> Path:
    return ctx.simulated("h36m", sim_config(ctx.cache_seed), TRAIN_SUBJECTS + VAL_SUBJECTS + TEST_SUBJECTS,
                         ds.actions, workers=ds.workers)


def h36m_sh2d(ctx: StudyContext, ds: DataSize) -> Path:
    return ctx.simulated("h36m_sh2d", sim_config(ctx.cache_seed, keypoints="real"), TEST_SUBJECTS, ds.actions,
                         workers=ds.workers)


def views_train(ctx: StudyContext, ds: DataSize) -> Path:
    cfg = sim_config(ctx.cache_seed, real_cameras=False, views=train_view_config(ds.views_train))
    return ctx.simulated("views_train", cfg, TRAIN_SUBJECTS + VAL_SUBJECTS, ds.actions, workers=ds.workers)


def views_ood(ctx: StudyContext, ds: DataSize) -> Path:
    cfg = sim_config(ctx.cache_seed, real_cameras=False, views=ood_view_config(ds.views_ood))
    return ctx.simulated("views_ood", cfg, TEST_SUBJECTS, ds.actions, workers=ds.workers)


def standard_tests(ctx: StudyContext, ds: DataSize) -> tuple[dict[str, list[str]], dict[str, tuple[str, ...]]]:
    """The simulated test sets of most tables: ({column: specs}, {column: subjects})."""
    tests = {ID: [str(h36m(ctx, ds))], ID_SH: [str(h36m_sh2d(ctx, ds))], OOD_VIEWS: [str(views_ood(ctx, ds))]}
    return tests, {ID: TEST_SUBJECTS, ID_SH: TEST_SUBJECTS, OOD_VIEWS: TEST_SUBJECTS}


def describe(ds: DataSize, data_root) -> dict:
    return {"root": str(data_root),
            "h36m": f"mocap 10 fps; train {' '.join(TRAIN_SUBJECTS)}, validation {' '.join(VAL_SUBJECTS)}, "
                    f"test {' '.join(TEST_SUBJECTS)}; actions {'all' if not ds.actions else ','.join(ds.actions)}",
            "cues": "SIMULATED (pipeline.simulate) unless a column says real",
            "virtual views": f"{ds.views_train} per training motion, {ds.views_ood} per test motion (synthetic OOD)"}
