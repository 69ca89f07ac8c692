"""RTMDet person detector + RTMPose-L (body8, 384x288): the AugLift paper's 2D detector.

Needs OpenMMLab's stack (mmengine, mmcv 2.1 compiled against the installed torch, mmdet 3.x,
mmpose 1.x: `make setup-rtmpose` builds it into `.venv-rtmpose`) and four local files, passed
as detector params (never downloaded at run time):

- `pose_config`, `pose_checkpoint`: e.g. `rtmpose-l_8xb256-420e_body8-384x288.py` (in mmpose's
  configs/body_2d_keypoint/rtmpose/body8/) and its `.pth` from the RTMPose model zoo
  (https://github.com/open-mmlab/mmpose/tree/main/projects/rtmpose);
- `det_config`, `det_checkpoint`: an RTMDet person (or COCO) detector, e.g.
  `rtmdet_m_640-8xb32_coco-person.py` from mmpose's projects/rtmpose/rtmdet/person/ and its `.pth`.

A checkpoint of None builds the network with random weights (for tests only; the shard's
`detector.params` then says `random_weights: true`).

Per frame: RTMDet boxes of class `det_cat_id` above `bbox_thr`, non-maximum suppressed; then one
person is kept (`person`: "largest" box, or the "confident" pose with the highest mean keypoint
score, for which every box is run through RTMPose). COCO-17 keypoints are mapped to H36M-17.
RTMPose's SimCC scores are not probabilities and can exceed 1; they are clipped to [0, 1].
`detect_people` keeps every RTMDet box (tracking, pipeline.detect.subjects) and
`people_in_boxes` runs RTMPose on given boxes (an actor's ground-truth box, for datasets).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from auglift.core.skeleton import confidence_to_h36m17, to_h36m17

from .base import PERSON_MODES, Detections, Detector, People, empty_detections, empty_people, select_person

HOW_TO_GET = ("download it from the RTMPose model zoo "
              "(https://github.com/open-mmlab/mmpose/tree/main/projects/rtmpose) and pass its local path "
              "with --detector-param {name}=PATH")


def _require_file(name: str, path: str | None, allow_none: bool) -> str | None:
    if path is None and allow_none:
        return None
    if path is None or not Path(path).is_file():
        raise FileNotFoundError(f"rtmpose: {name} {path!r} not found; " + HOW_TO_GET.format(name=name))
    return str(path)


class RTMPoseDetector(Detector):
    name = "rtmpose"

    def __init__(self, pose_config: str | None = None, pose_checkpoint: str | None = None,
                 det_config: str | None = None, det_checkpoint: str | None = None,
                 person: str = "largest", bbox_thr: float = 0.3, nms_thr: float = 0.3, det_cat_id: int = 0,
                 device: str = "cpu", random_weights: bool = False):
        if person not in PERSON_MODES:
            raise ValueError(f"rtmpose: unknown person selection {person!r}; choose from {PERSON_MODES}")
        files = {"pose_config": _require_file("pose_config", pose_config, False),
                 "det_config": _require_file("det_config", det_config, False),
                 "pose_checkpoint": _require_file("pose_checkpoint", pose_checkpoint, random_weights),
                 "det_checkpoint": _require_file("det_checkpoint", det_checkpoint, random_weights)}
        try:
            import mmdet
            import mmpose
            from mmdet.apis import inference_detector, init_detector
            from mmpose.apis import inference_topdown, init_model
            from mmpose.utils import adapt_mmdet_pipeline
        except ImportError as e:
            raise ImportError(f"rtmpose needs mmpose/mmdet/mmcv ({e}); `make setup-rtmpose` builds them into "
                              f".venv-rtmpose (mmcv compiles from source; README, 'Paper-faithful models')") from e
        super().__init__(**{k: (Path(v).name if v else None) for k, v in files.items()}, person=person,
                         bbox_thr=float(bbox_thr), nms_thr=float(nms_thr), det_cat_id=int(det_cat_id),
                         random_weights=bool(random_weights), scores="SimCC, clipped to [0, 1]")
        self.version = f"mmpose-{mmpose.__version__}/mmdet-{mmdet.__version__}"
        self._inference_detector = inference_detector
        self._inference_topdown = inference_topdown
        self._det = init_detector(files["det_config"], files["det_checkpoint"], device=device)
        # Once mmpose is initialised the default registry scope is mmpose's; prefix the detector's
        # test pipeline with "mmdet." so that it still finds mmdet's transforms.
        self._det.cfg = adapt_mmdet_pipeline(self._det.cfg)
        self._pose = init_model(files["pose_config"], files["pose_checkpoint"], device=device)

    def _boxes(self, det_result) -> np.ndarray:
        from mmpose.evaluation.functional import nms

        pred = det_result.pred_instances.cpu().numpy()
        keep = (pred.labels == self.params["det_cat_id"]) & (pred.scores > self.params["bbox_thr"])
        boxes = np.concatenate([pred.bboxes[keep], pred.scores[keep, None]], axis=1)
        if len(boxes) == 0:
            return boxes[:, :4]
        return boxes[nms(boxes, self.params["nms_thr"]), :4]

    def person_boxes(self, frames: np.ndarray) -> list[np.ndarray]:
        """RTMDet person boxes `(P, 4)` xyxy per RGB frame, thresholded and NMS'ed."""
        bgr = [np.ascontiguousarray(f[..., ::-1]) for f in frames]  # OpenMMLab models take BGR
        return [self._boxes(r) for r in self._inference_detector(self._det, bgr)]

    def pose_in_boxes(self, frame: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RTMPose on person `boxes` (P, 4) xyxy of one RGB frame -> COCO-17 keypoints (P, 17, 2)
        in pixels and their SimCC scores (P, 17)."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        samples = self._inference_topdown(self._pose, np.ascontiguousarray(frame[..., ::-1]), boxes,
                                          bbox_format="xyxy")
        kps = np.concatenate([s.pred_instances.keypoints for s in samples])
        scores = np.concatenate([s.pred_instances.keypoint_scores for s in samples])
        return kps, scores

    def people_in_boxes(self, frame: np.ndarray, boxes: np.ndarray) -> People:
        """RTMPose on person `boxes` (P, 4) -> People in H36M-17, each with its given box."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            return empty_people()
        kps, scores = self.pose_in_boxes(frame, boxes)
        return People(np.stack([to_h36m17(k.astype(np.float64), "coco17") for k in kps]).astype(np.float32),
                      np.clip(np.stack([confidence_to_h36m17(c, "coco17") for c in scores]), 0.0, 1.0
                              ).astype(np.float32), boxes)

    def __call__(self, frames: np.ndarray) -> Detections:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected (n, H, W, 3) uint8 RGB frames, got {frames.shape} {frames.dtype}")
        out = empty_detections(len(frames))
        for i, boxes in enumerate(self.person_boxes(frames)):
            if len(boxes) == 0:
                continue
            if self.params["person"] == "largest":  # only the kept person needs a pose
                boxes = boxes[[select_person(boxes, mode="largest")]]
            kps, scores = self.pose_in_boxes(frames[i], boxes)
            j = select_person(boxes, scores, self.params["person"])
            out.keypoints[i] = to_h36m17(kps[j].astype(np.float64), "coco17")
            out.confidence[i] = np.clip(confidence_to_h36m17(scores[j], "coco17"), 0.0, 1.0)
            out.bbox[i] = boxes[j]
        return out
