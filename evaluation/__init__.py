"""COCO keypoint evaluation without TensorFlow: images -> maps -> people -> AP (pycocotools).

Training evaluates checkpoints with it, calibration scores each precision with it, and both
agree with the device because the maps are grouped by the edge's own grouping."""
