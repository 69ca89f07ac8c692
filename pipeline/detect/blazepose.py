"""MediaPipe BlazePose (full) as the embedded, offline 2D detector.

Uses the legacy `mp.solutions.pose.Pose` graph with `model_complexity=1`, whose weights
(pose_detection.tflite + pose_landmark_full.tflite) ship inside the mediapipe==0.10.21 wheel;
complexities 0 and 2 would download their weights at run time, so they are refused.

BlazePose is a single-person model: on a frame with several people it returns the one its
detector ranks first (usually the largest / most central), and nothing can be asked of the
others. The multi-person tasks API (`PoseLandmarker(num_poses>1)`) needs a `.task` model
bundle that the wheel does not ship. Use the `rtmpose` backend for crowded footage.

Output, mapped from BlazePose-33 to H36M-17 (pipeline.skeleton, with its synthesised joints):
- keypoints: landmark x, y (normalised) times the image width, height -> pixels;
- confidence: landmark visibility (a synthesised joint takes its weakest part's);
- bbox: extent of all 33 landmarks, clipped to the image;
- extras "landmark_z_world": z of `pose_world_landmarks`, metres, origin at the hip centre,
  larger = farther from the camera (a metric, model-estimated relative depth);
  extras "landmark_z_image": the image-space landmark z (same scale as x, i.e. times the image
  width -> pixels), origin at the hip centre.
"""
from __future__ import annotations

import numpy as np

from pipeline.skeleton import confidence_to_h36m17, to_h36m17

from .base import Detections, Detector, empty_detections, keypoint_box

MODEL_COMPLEXITY = 1  # "full": the only pose landmark weights inside the mediapipe wheel


class BlazePoseDetector(Detector):
    name = "mediapipe"
    extras = ("landmark_z_world", "landmark_z_image")

    def __init__(self, static_image_mode: bool = True, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, model_complexity: int = MODEL_COMPLEXITY):
        if model_complexity != MODEL_COMPLEXITY:
            raise ValueError(f"mediapipe model_complexity={model_complexity}: only {MODEL_COMPLEXITY} (full) is "
                             f"bundled in the mediapipe wheel; other complexities would download weights")
        import mediapipe as mp

        super().__init__(static_image_mode=bool(static_image_mode),
                         min_detection_confidence=float(min_detection_confidence),
                         min_tracking_confidence=float(min_tracking_confidence),
                         model_complexity=MODEL_COMPLEXITY, persons="single (BlazePose)")
        self.version = f"mediapipe-{mp.__version__}/pose_landmark_full"
        self._mp = mp
        self._pose = None

    def _graph(self):
        if self._pose is None:
            p = self.params
            self._pose = self._mp.solutions.pose.Pose(
                static_image_mode=p["static_image_mode"], model_complexity=MODEL_COMPLEXITY,
                smooth_landmarks=not p["static_image_mode"], enable_segmentation=False,
                min_detection_confidence=p["min_detection_confidence"],
                min_tracking_confidence=p["min_tracking_confidence"])
        return self._pose

    def reset(self) -> None:
        # Tracking mode keeps the previous frame's pose; a new sequence must not start from it.
        if not self.params["static_image_mode"]:
            self.close()

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None

    def __call__(self, frames: np.ndarray) -> Detections:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected (n, H, W, 3) uint8 RGB frames, got {frames.shape} {frames.dtype}")
        n, h, w = frames.shape[:3]
        out = empty_detections(n, self.extras)
        pose = self._graph()
        for i in range(n):
            res = pose.process(np.ascontiguousarray(frames[i]))
            if res.pose_landmarks is None:
                continue
            lm = np.array([(p.x, p.y, p.z, p.visibility) for p in res.pose_landmarks.landmark], np.float64)
            xy = lm[:, :2] * (w, h)
            out.keypoints[i] = to_h36m17(xy, "blazepose33")
            out.confidence[i] = np.clip(confidence_to_h36m17(lm[:, 3], "blazepose33"), 0.0, 1.0)
            out.bbox[i] = keypoint_box(xy, (w, h))
            out.extras["landmark_z_image"][i] = to_h36m17(lm[:, 2:3] * w, "blazepose33")[:, 0]
            if res.pose_world_landmarks is not None:
                zw = np.array([[p.z] for p in res.pose_world_landmarks.landmark], np.float64)
                out.extras["landmark_z_world"][i] = to_h36m17(zw, "blazepose33")[:, 0]
        return out
