"""Letterbox a camera frame into the network's preallocated uint8 NHWC input buffer.

The frame is resized straight into the middle of the buffer (``cv2.resize`` with ``dst``
a view), so no image is allocated per frame; the pad bands are filled only when the
frame size changes. Normalisation and the NHWC->NCHW transpose live in the exported
graph, so this is the whole of preprocessing.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from .geometry import Letterbox

try:
    import cv2
except ImportError as _exc:  # pragma: no cover - the edge extra installs opencv
    cv2 = None  # type: ignore[assignment]
    _CV2_ERROR = _exc

__all__ = ["FrameError", "Preprocessor", "check_frame"]


class FrameError(ValueError):
    """A frame that cannot be used (wrong type, shape or size); the message says what it is."""


def check_frame(frame) -> Tuple[int, int]:
    """``(width, height)`` of a usable frame (uint8 ``H x W x 3``), else :class:`FrameError`."""
    if not isinstance(frame, np.ndarray):
        raise FrameError("a frame must be a numpy array, got %s" % type(frame).__name__)
    if frame.dtype != np.uint8:
        raise FrameError("a frame must be uint8, got %s" % frame.dtype)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise FrameError("a frame must be H x W x 3 (RGB), got shape %s" % (frame.shape,))
    if frame.shape[0] < 2 or frame.shape[1] < 2:
        raise FrameError("frame of %dx%d pixels is too small" % (frame.shape[1], frame.shape[0]))
    return frame.shape[1], frame.shape[0]


class Preprocessor:
    """Letterboxes frames into ``H x W x 3`` uint8 targets of the network's input size."""

    def __init__(self, input_width: int, input_height: int, pad_value: int = 0,
                 interpolation: int = -1) -> None:
        if cv2 is None:  # pragma: no cover
            raise ImportError("preprocessing needs OpenCV (pip install opencv-python-headless): %s" % _CV2_ERROR)
        self.input_width = int(input_width)
        self.input_height = int(input_height)
        self.pad_value = int(pad_value)
        self.interpolation = cv2.INTER_LINEAR if interpolation < 0 else interpolation
        self._letterboxes: Dict[Tuple[int, int], Letterbox] = {}
        self._target_state: Dict[int, Letterbox] = {}  # target address -> letterbox its pads were filled for

    def letterbox(self, width: int, height: int) -> Letterbox:
        lb = self._letterboxes.get((width, height))
        if lb is None:
            lb = Letterbox.fit(width, height, self.input_width, self.input_height)
            self._letterboxes[(width, height)] = lb
        return lb

    def __call__(self, frame: np.ndarray, target: np.ndarray) -> Letterbox:
        """Letterbox ``frame`` into ``target`` (``H x W x 3`` or ``1 x H x W x 3``); returns the mapping."""
        width, height = check_frame(frame)
        if target.ndim == 4:
            target = target[0]
        if target.shape != (self.input_height, self.input_width, 3) or target.dtype != np.uint8:
            raise FrameError("input buffer is %s %s, expected uint8 %s"
                             % (target.dtype, target.shape, (self.input_height, self.input_width, 3)))
        lb = self.letterbox(width, height)
        nw, nh = lb.resized_size
        if nw < 1 or nh < 1:  # e.g. 4000x2 into 96x64: 0 rows once scaled (cv2.resize would assert)
            raise FrameError("frame of %dx%d pixels is %dx%d once scaled into %dx%d: too thin to use"
                             % (width, height, nw, nh, self.input_width, self.input_height))
        key = int(target.ctypes.data)
        if self._target_state.get(key) != lb:
            target[...] = self.pad_value  # the pad bands changed: refill once
            self._target_state[key] = lb
        x0, y0 = int(lb.pad_x), int(lb.pad_y)
        view = target[y0:y0 + nh, x0:x0 + nw]
        if (nw, nh) == (width, height):
            np.copyto(view, frame)
        else:
            try:
                out = cv2.resize(frame, (nw, nh), dst=view, interpolation=self.interpolation)
            except cv2.error as exc:  # whatever OpenCV refuses in one frame loses that frame only
                raise FrameError("frame of %dx%d pixels cannot be resized to %dx%d: %s"
                                 % (width, height, nw, nh, str(exc).strip().splitlines()[-1])) from None
            if out is not view and not np.shares_memory(out, view):  # pragma: no cover - old OpenCV
                np.copyto(view, out)
        return lb
