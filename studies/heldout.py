"""Out-of-distribution splits of H36M that do not use the simulator's virtual cameras.

Every choice here was made before any of these columns was computed, on what the data set is,
never on a result (none of them was tuned on a test column):

- cross-camera: the fourth H36M camera (60457274, the last in the data set's camera order) is held
  out; lifters are retrained on the other three and tested on it. Sitting actions are left out of
  the camera test so that it changes only the camera.
- cross-action: the two sitting action groups (Sitting, SittingDown: the poses furthest from the
  standing ones, the paper's usual example) are held out of training and are the test.
  The same retrained lifters serve both columns (trained on three cameras, no sitting).
- cross-subject: beyond the standard split (S9/S11 never seen), the lifters are retrained on one
  subject, S1 (the first training subject), instead of four, and tested on S9/S11: a test of
  generalising to new bodies from few people. S8 still picks the best epoch.

All shards are the study's SIMULATED cues through the REAL H36M cameras (real calibrations).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from auglift.lifters.shards import ShardInfo, resolve_shards

HELD_OUT_CAMERA = "60457274"
HELD_OUT_ACTION_GROUPS = ("Sitting", "SittingDown")
CROSS_SUBJECT_TRAIN = ("S1",)
# the study's column labels
CAMERA = f"held-out camera {HELD_OUT_CAMERA}"
ACTION = "held-out actions (" + ", ".join(HELD_OUT_ACTION_GROUPS) + ")"
SUBJECT = "cross-subject (trained on " + " ".join(CROSS_SUBJECT_TRAIN) + " only)"


def action_group(action: str) -> str:
    """"Sitting 1" / "Sitting_2" / "SittingDown" -> "Sitting" / "Sitting" / "SittingDown"."""
    return re.sub(r"[ _]*\d+$", "", action.strip())


def select(infos: Sequence[ShardInfo], cameras: Sequence[str] | None = None,
           exclude_cameras: Sequence[str] = (), groups: Sequence[str] | None = None,
           exclude_groups: Sequence[str] = ()) -> list[ShardInfo]:
    """The shards whose camera / action group pass the filters (None: any)."""
    return [i for i in infos
            if (cameras is None or i.camera in cameras) and i.camera not in exclude_cameras
            and (groups is None or action_group(i.action) in groups)
            and action_group(i.action) not in exclude_groups]


def split_paths(root: str | Path, subjects: Sequence[str], **filters) -> list[str]:
    """Shard paths of `subjects` under `root` passing `select`'s filters; an empty split is an error."""
    infos = select(resolve_shards(str(root), subjects=list(subjects)), **filters)
    if not infos:
        raise ValueError(f"{root}: no shard of {','.join(subjects)} passes {filters}")
    return [str(i.path) for i in infos]


def restricted_train(root: str | Path, subjects: Sequence[str]) -> list[str]:
    """Training (and validation) shards of the held-out-camera / held-out-action lifters."""
    return split_paths(root, subjects, exclude_cameras=(HELD_OUT_CAMERA,), exclude_groups=HELD_OUT_ACTION_GROUPS)


def camera_test(root: str | Path, subjects: Sequence[str]) -> list[str]:
    """The held-out camera on the test subjects, sitting actions left out (only the camera changes)."""
    return split_paths(root, subjects, cameras=(HELD_OUT_CAMERA,), exclude_groups=HELD_OUT_ACTION_GROUPS)


def action_test(root: str | Path, subjects: Sequence[str]) -> list[str]:
    """The held-out action groups on the test subjects, through the three training cameras."""
    return split_paths(root, subjects, exclude_cameras=(HELD_OUT_CAMERA,), groups=HELD_OUT_ACTION_GROUPS)
