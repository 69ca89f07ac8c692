"""MediaPipe BlazePose (full) as the embedded, offline 2D detector.

Uses the legacy `mp.solutions.pose.Pose` graph with `model_complexity=1`, whose weights
(pose_detection.tflite + pose_landmark_full.tflite) ship inside the mediapipe==0.10.21 wheel;
complexities 0 and 2 would download their weights at run time, so they are refused.

BlazePose is a single-person model: on a frame with several people `__call__` returns the one
its detector ranks first (usually the largest / most central). The multi-person tasks API
(`PoseLandmarker(num_poses>1)`) needs a `.task` bundle with metadata that the wheel does not
ship. Several people are found instead with BlazePose's own person detector (the wheel's
`pose_detection.tflite`, run through mediapipe's `PoseDetectionCpu` subgraph): `person_boxes`
runs it on the whole frame and on square tiles along the long side (people small in a wide frame
are missed at its 224 px input), merges the finds by IoU, and takes each person's box from the
detector's hip centre and body-radius keypoints. `people_in_boxes` then runs the landmark graph
on a square crop around each box (zero-padded outside the image), and maps the landmarks back.

Output, mapped from BlazePose-33 to H36M-17 (core.skeleton, with its synthesised joints):
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

from auglift.core.skeleton import confidence_to_h36m17, to_h36m17

from .base import Detections, Detector, People, empty_detections, empty_people, keypoint_box
from .people import box_iou

MODEL_COMPLEXITY = 1  # "full": the only pose landmark weights inside the mediapipe wheel
PERSON_DETECTOR_GRAPH = """
input_stream: "image"
output_stream: "detections"
node { calculator: "PoseDetectionCpu" input_stream: "IMAGE:image" output_stream: "DETECTIONS:detections" }
"""
MERGE_IOU = 0.4         # finds of several tiles overlapping more than this are one person
BOX_MARGIN = 0.15       # people_in_boxes crops each detector box widened by this on every side


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
        self._crop_pose = None
        self._person_detector = None

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
        for name in ("_pose", "_crop_pose", "_person_detector"):
            graph = getattr(self, name)
            if graph is not None:
                graph.close()
                setattr(self, name, None)

    def _landmarks(self, graph, image: np.ndarray):
        """(xy (33, 2) in image pixels, visibility (33,), image z (33,) px, world z (33,) m) or None."""
        res = graph.process(np.ascontiguousarray(image))
        if res.pose_landmarks is None:
            return None
        h, w = image.shape[:2]
        lm = np.array([(p.x, p.y, p.z, p.visibility) for p in res.pose_landmarks.landmark], np.float64)
        zw = np.full(len(lm), np.nan)
        if res.pose_world_landmarks is not None:
            zw = np.array([p.z for p in res.pose_world_landmarks.landmark], np.float64)
        return lm[:, :2] * (w, h), lm[:, 3], lm[:, 2] * w, zw

    def person_boxes(self, frames: np.ndarray) -> list[np.ndarray]:
        """BlazePose's person detector on the whole frame and on square tiles: `(P, 4)` per frame."""
        if self._person_detector is None:
            from google.protobuf import text_format
            from mediapipe.framework import calculator_pb2
            from mediapipe.python.solution_base import SolutionBase

            config = text_format.Parse(PERSON_DETECTOR_GRAPH, calculator_pb2.CalculatorGraphConfig())
            self._person_detector = SolutionBase(graph_config=config, outputs=["detections"])
        return [self._frame_person_boxes(np.asarray(f)) for f in frames]

    def _frame_person_boxes(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        side = min(h, w)
        starts = np.unique(np.r_[np.arange(0, max(h, w) - side, side // 2), max(h, w) - side])
        if max(h, w) < 1.2 * side:   # near-square: the whole frame is the only tile
            starts = starts[:0]
        tiles = [(0, 0, frame)] + [(s, 0, frame[:, s:s + side]) if w >= h else (0, s, frame[s:s + side])
                                   for s in starts]
        boxes, scores = [], []
        for x0, y0, tile in tiles:
            th, tw = tile.shape[:2]
            for d in self._person_detector.process({"image": np.ascontiguousarray(tile)}).detections or []:
                kp = [(k.x * tw + x0, k.y * th + y0) for k in d.location_data.relative_keypoints]
                centre, radius = np.array(kp[0]), float(np.hypot(*np.subtract(kp[1], kp[0])))
                boxes.append(np.r_[centre - radius, centre + radius])
                scores.append(float(d.score[0]))
        keep: list[int] = []
        for i in np.argsort(-np.array(scores)):
            if all(box_iou(boxes[i], boxes[j])[0, 0] <= MERGE_IOU for j in keep):
                keep.append(int(i))
        out = np.array([np.clip(boxes[i], 0, [w - 1, h - 1, w - 1, h - 1]) for i in keep])
        return out.reshape(-1, 4).astype(np.float32)

    def people_in_boxes(self, frame: np.ndarray, boxes: np.ndarray) -> People:
        """The landmark graph on a square crop around each box (widened by BOX_MARGIN)."""
        if self._crop_pose is None:  # every crop is a new image: never the tracking graph
            self._crop_pose = self._mp.solutions.pose.Pose(
                static_image_mode=True, model_complexity=MODEL_COMPLEXITY, enable_segmentation=False,
                min_detection_confidence=self.params["min_detection_confidence"])
        frame = np.asarray(frame)
        h, w = frame.shape[:2]
        rows = []
        for box in np.asarray(boxes, np.float64).reshape(-1, 4):
            crop, origin = square_crop(frame, box, BOX_MARGIN)
            found = self._landmarks(self._crop_pose, crop)
            if found is not None:
                xy, vis, z_image, z_world = found
                rows.append(self._to_h36m(xy + origin, vis, z_image, z_world, (w, h)))
        if not rows:
            return empty_people(self.extras)
        kp, conf, box, zi, zw = (np.stack(v) for v in zip(*rows))
        return People(kp, conf, box, {"landmark_z_image": zi, "landmark_z_world": zw})

    @staticmethod
    def _to_h36m(xy, vis, z_image, z_world, size):
        return (to_h36m17(xy, "blazepose33").astype(np.float32),
                np.clip(confidence_to_h36m17(vis, "blazepose33"), 0.0, 1.0).astype(np.float32),
                keypoint_box(xy, size), to_h36m17(z_image[:, None], "blazepose33")[:, 0].astype(np.float32),
                to_h36m17(z_world[:, None], "blazepose33")[:, 0].astype(np.float32))

    def __call__(self, frames: np.ndarray) -> Detections:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected (n, H, W, 3) uint8 RGB frames, got {frames.shape} {frames.dtype}")
        n, h, w = frames.shape[:3]
        out = empty_detections(n, self.extras)
        pose = self._graph()
        for i in range(n):
            found = self._landmarks(pose, frames[i])
            if found is not None:
                (out.keypoints[i], out.confidence[i], out.bbox[i], out.extras["landmark_z_image"][i],
                 out.extras["landmark_z_world"][i]) = self._to_h36m(*found, (w, h))
        return out


def square_crop(frame: np.ndarray, box: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """A square crop of `frame` centred on `box` (xyxy), side = its larger side x (1 + 2 margin),
    zero-padded where it leaves the image -> (crop, (x, y) of its top-left corner in the frame)."""
    h, w = frame.shape[:2]
    centre = (box[:2] + box[2:]) / 2
    side = max(int(np.ceil(np.max(box[2:] - box[:2]) * (1 + 2 * margin))), 16)
    x0, y0 = (np.round(centre - side / 2)).astype(int)
    crop = np.zeros((side, side, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if sx1 > sx0 and sy1 > sy0:
        crop[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = frame[sy0:sy1, sx0:sx1]
    return crop, np.array([x0, y0], np.float64)
