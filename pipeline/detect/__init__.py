"""2D pose detector backends, chosen by name.

Each backend module imports its heavy dependency only when built, so listing the registry costs
nothing. Every backend returns one H36M-17 pose per frame (see base.Detections), and every
person of a frame through `detect_people` / `people_in_boxes` (base.People; matching and
tracking: people.py, subjects.py).
"""
from __future__ import annotations

from auglift.core.config_io import registered

from .base import PERSON_MODES, Detections, Detector, People, empty_detections, keypoint_box, select_person

# name -> "module:class" (relative to this package)
DETECTORS: dict[str, str] = {
    "mediapipe": "blazepose:BlazePoseDetector",   # embedded default: weights ship in the wheel
    "rtmpose": "rtmpose:RTMPoseDetector",         # paper-faithful; OpenMMLab stack, see README
}


def detector_class(name: str) -> type[Detector]:
    return registered(DETECTORS, __name__, name, "detector")


def build_detector(name: str, **params) -> Detector:
    """Instantiate detector `name` with its params (see each backend's docstring)."""
    return detector_class(name)(**params)


__all__ = ["DETECTORS", "PERSON_MODES", "Detections", "Detector", "People", "build_detector", "detector_class",
           "empty_detections", "keypoint_box", "select_person"]
