"""Representative images for calibration, prepared exactly as the device prepares a frame.

Each image is read, turned RGB and letterboxed into the network's uint8 input by the edge's
own :class:`~openpose_plus.edge.preprocess.Preprocessor` (same resize, same pad grey), so
the activation ranges INT8 is calibrated on are the ranges the device will see.
Every unreadable image is named; fewer images than asked for is an error, not a silent
calibration on too little data.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, Iterator, List, Optional

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

__all__ = ["CalibrationError", "IMAGE_SUFFIXES", "list_images", "load_images", "ImageBatches"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


DEFAULT_IMAGES = 64  # what TensorRT's samples calibrate on; more rarely moves a range


class CalibrationError(ValueError):
    """Calibration input that cannot be used; the message names the file or the setting."""


def list_images(directory: str, num_images: Optional[int]) -> List[str]:
    """The first ``num_images`` image files of ``directory`` (sorted by name); ``None``: up to
    ``DEFAULT_IMAGES`` of them, however many there are."""
    if num_images is not None and num_images < 1:
        raise CalibrationError("--num-images must be at least 1, got %d" % num_images)
    if not os.path.isdir(directory):
        raise CalibrationError("calibration image folder %s does not exist" % directory)
    names = sorted(n for n in os.listdir(directory) if n.lower().endswith(IMAGE_SUFFIXES)
                   and os.path.isfile(os.path.join(directory, n)))
    if num_images is None:
        if not names:
            raise CalibrationError("no calibration images in %s" % directory)
        num_images = min(DEFAULT_IMAGES, len(names))
    if len(names) < num_images:
        raise CalibrationError("too few calibration images: %s has %d, --num-images asks for %d"
                               % (directory, len(names), num_images))
    return [os.path.join(directory, n) for n in names[:num_images]]


def _read_rgb(path: str) -> Optional[np.ndarray]:
    import cv2

    try:
        data = np.fromfile(path, np.uint8)
    except OSError:
        return None
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None or bgr.ndim != 3 or bgr.shape[0] < 2 or bgr.shape[1] < 2:
        return None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_images(paths: List[str], width: int, height: int, pad_value: int = 0) -> np.ndarray:
    """``(N, height, width, 3)`` uint8 network inputs; every unreadable file is named in the error."""
    from openpose_plus.edge.preprocess import Preprocessor

    pre = Preprocessor(width, height, pad_value)
    out = np.empty((len(paths), height, width, 3), np.uint8)
    bad = []
    for i, path in enumerate(paths):
        image = _read_rgb(path)
        if image is None:
            bad.append(os.path.basename(path))
            continue
        pre(image, out[i])
    if bad:
        raise CalibrationError("unreadable calibration image%s (corrupt, truncated or not an image): %s"
                               % ("s" if len(bad) > 1 else "", ", ".join(bad)))
    return out


class ImageBatches(CalibrationDataReader):
    """onnxruntime's ``CalibrationDataReader`` protocol over prepared inputs, one image a batch.

    ``on_batch(done, total)`` is called per batch handed out (the progress bar).
    """

    def __init__(self, inputs: np.ndarray, input_name: str,
                 on_batch: Optional[Callable[[int, int], None]] = None) -> None:
        self.inputs = inputs
        self.input_name = input_name
        self.on_batch = on_batch
        self._it: Optional[Iterator[int]] = None
        self._done = 0

    def __len__(self) -> int:
        return len(self.inputs)

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        if self._it is None:
            self._it = iter(range(len(self.inputs)))
        i = next(self._it, None)
        if i is None:
            return None
        self._done += 1
        if self.on_batch is not None:
            self.on_batch(self._done, len(self.inputs))
        return {self.input_name: self.inputs[i:i + 1]}

    def rewind(self) -> None:
        self._it = None
        self._done = 0

    # ORT's calibrators call these when they exist (strided calibration); harmless otherwise.
    def set_range(self, start_index: int, end_index: int) -> None:
        self._it = iter(range(start_index, min(end_index, len(self.inputs))))
