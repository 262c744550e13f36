"""``synthetic://[WxH][?people=N&seed=S&fps=F&frames=N&rate=R&height=MIN-MAX]``: people walking.

A :class:`~openpose_plus.edge.synthetic.scene.MovingScene` rendered frame by frame
(``height``: the people's heights as fractions of the frame's, by default 0.25-0.8), with the
true keypoints on each frame, so the whole pipeline runs and can be scored with no camera.
Registers itself as the ``synthetic`` source kind. With ``rate`` it stands in for a camera (live:
a pipeline drops frames rather than wait, an end is a lost stream); without, for a file.
Sizes and options have ranges, so a typo is an error naming the option, not a MemoryError.
"""
from __future__ import annotations

import time
from typing import Dict

import numpy as np

from openpose_plus.edge import environment as env
from openpose_plus.edge.sources.base import DEFAULT_RING, Frame, Source, SourceEnded, SourceError
from openpose_plus.edge.sources.registry import register
from openpose_plus.edge.sources.uri import SourceURI, float_option, int_option, range_option

__all__ = ["SyntheticSource"]

OPTIONS = ("people", "seed", "fps", "frames", "rate", "height")
MAX_SIDE = 4096    # 4K is 3840 wide; a frame larger than this is a typo, and would fill the memory
MAX_PEOPLE = 64


class SyntheticSource(Source):
    """People walking over a fixed background (:class:`.scene.MovingScene`)."""

    kind = "synthetic"

    def __init__(self, uri: str, location: str, options: Dict[str, str], ring: int = DEFAULT_RING) -> None:
        super().__init__(uri, ring)
        size = location.strip("/") or "640x480"
        try:
            w, h = (int(v) for v in size.lower().split("x"))
        except ValueError:
            raise SourceError("source %s: size %r is not WIDTHxHEIGHT" % (uri, size)) from None
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise SourceError("source %s: unknown option(s) %s (known: %s)"
                              % (uri, ", ".join(unknown), ", ".join(sorted(OPTIONS))))
        if not (16 <= w <= MAX_SIDE and 16 <= h <= MAX_SIDE):
            raise SourceError("source %s: size %dx%d is not between 16x16 and at most %dx%d"
                              % (uri, w, h, MAX_SIDE, MAX_SIDE))
        self.width, self.height = w, h
        self.people = int_option(options, "people", 3, uri)
        self.seed = int_option(options, "seed", 0, uri)
        self.fps = float_option(options, "fps", 30.0, uri)
        self.frames = int_option(options, "frames", None, uri)
        self.rate = float_option(options, "rate", None, uri)  # pace like a camera (frames/s)
        self.person_height = range_option(options, "height", uri)  # fractions of the frame height
        for key, value, low, high in (("people", self.people, 0, MAX_PEOPLE), ("fps", self.fps, 0.1, 1000.0),
                                      ("frames", self.frames, 0, None), ("rate", self.rate, 0.1, 1000.0)):
            if value is not None and not (low <= value and (high is None or value <= high)):
                raise SourceError("source %s: option %s=%s must be %s..%s"
                                  % (uri, key, options[key], low, "" if high is None else high))
        self.live = self.rate is not None  # paced like a camera: a stand-in for one
        self.scene = None
        self._next_time = 0.0

    def open(self) -> "SyntheticSource":
        from .scene import MovingScene

        try:
            heights = None if self.person_height is None else \
                (self.person_height[0] * self.height, self.person_height[1] * self.height)
            self.scene = MovingScene(self.width, self.height, self.people, seed=self.seed, fps=self.fps,
                                     person_height=heights)
        except ValueError as exc:
            raise SourceError("source %s: %s" % (self.uri, exc)) from None
        self.index = 0
        self._next_time = time.monotonic()
        return self

    def read(self) -> Frame:
        if self.scene is None:
            raise SourceError("source %s is not open" % self.uri)
        if self.frames is not None and self.index >= self.frames:
            raise SourceEnded("source %s ended after %d frames" % (self.uri, self.frames))
        if self.rate:
            self._next_time += 1.0 / self.rate
            delay = self._next_time - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        image, truth = self.scene.frame(self.index)
        buf = self.ring.get(self.height, self.width)
        np.copyto(buf, image)
        # Unpaced, a recording: the scene's own time (read in bursts, the wall clock would
        # make its walkers jump and stall, and a tracker lose them). Paced (rate), a
        # camera's stand-in: the capture time, as a camera's.
        return self._frame(buf, truth, media_time=None if self.rate else self.index / self.fps)

    def close(self) -> None:
        self.scene = None


def _status(kind: str) -> env.Status:
    cv = env.probe_module("cv2", "opencv", "pip install opencv-python-headless")  # the scene draws with it
    return env.Status(kind, cv.ok, "rendered people, no camera needed" if cv.ok else cv.detail)


def _open(uri: str, where: SourceURI, ring: int) -> SyntheticSource:
    return SyntheticSource(uri, where.location, where.options, ring)


register("synthetic", "synthetic", _open, _status, scheme="synthetic")
