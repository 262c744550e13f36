"""Still images: a folder of them in name order, or one image file (``dir``, ``photo.jpg``)."""
from __future__ import annotations

import glob
import os
from typing import List

from openpose_plus.edge import environment as env
from .base import DEFAULT_RING, CorruptFrame, Frame, Source, SourceEnded, SourceError
from .registry import register
from .uri import IMAGE_EXTENSIONS, SourceURI, is_image

try:
    import cv2
except ImportError:  # pragma: no cover - the edge extra installs opencv
    cv2 = None  # type: ignore[assignment]

__all__ = ["FolderSource"]


class FolderSource(Source):
    """Images of a folder in name order (or a single image file)."""

    kind = "folder"

    def __init__(self, uri: str, location: str, ring: int = DEFAULT_RING) -> None:
        super().__init__(uri, ring)
        self.location = location
        self.files: List[str] = []

    def open(self) -> "FolderSource":
        if cv2 is None:  # pragma: no cover
            raise SourceError("reading images needs OpenCV (pip install opencv-python-headless)")
        if os.path.isdir(self.location):
            self.files = sorted(p for p in glob.glob(os.path.join(glob.escape(self.location), "*")) if is_image(p))
            if not self.files:
                raise SourceError("source %s: no images (%s) in the folder" % (self.uri, ", ".join(IMAGE_EXTENSIONS)))
        elif os.path.isfile(self.location):
            self.files = [self.location]
        else:
            raise SourceError("source %s: no such file or folder" % self.uri)
        self.index = 0
        return self

    def read(self) -> Frame:
        if self.index >= len(self.files):
            raise SourceEnded("source %s: all %d images read" % (self.uri, len(self.files)))
        path = self.files[self.index]
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            self.index += 1
            raise CorruptFrame("source %s: cannot decode image %s (corrupt or not an image)" % (self.uri, path))
        buf = self.ring.get(bgr.shape[0], bgr.shape[1])
        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=buf)
        return self._frame(buf, name=path)


def _status(kind: str) -> env.Status:
    cv = env.probe_module("cv2", "opencv", "pip install opencv-python-headless")
    return env.Status(kind, cv.ok, "images via OpenCV" if cv.ok else cv.detail)


def _open(uri: str, where: SourceURI, ring: int) -> FolderSource:
    return FolderSource(uri, where.location, ring)


register("folder", "opencv", _open, _status)
