"""Frame sources named by URI, as jetson-utils' ``videoSource`` names them.

``csi://0``, ``v4l2:///dev/video0`` or ``/dev/video0``, ``rtsp://host/path`` (``rtp://``,
``webrtc://`` through jetson-utils; ``rtsps``, ``http(s)``, ``rtmp`` through OpenCV), a video
file, a folder of images (or one image), and
``synthetic://[WxH][?people=N&seed=S&fps=F&frames=N&rate=R&height=MIN-MAX]``, which renders
people walking so everything runs with no camera.

One room per part:

==================  ===============================================================
``uri.py``          the URI grammar: URI -> ``(kind, location, options)``
``base.py``         :class:`Source`, :class:`Frame`, the errors, the frame ring
``registry.py``     which provider opens which kind; :func:`open_source`
``images.py``       a folder of images, or one image
``opencv.py``       cameras, streams and files through ``cv2.VideoCapture``
``jetson.py``       the same through ``jetson_utils.videoSource`` (zero-copy, on a Jetson)
``reconnect.py``    :class:`ReconnectingSource`: reopens with backoff when a source is lost
==================  ===============================================================

``synthetic://`` lives with the synthetic world (:mod:`openpose_plus.edge.synthetic.source`)
and registers itself like the others. Every source yields :class:`Frame` objects with RGB
``H x W x 3`` uint8 images in a ring of buffers allocated once, which the consumer sizes to
the frames it keeps in flight (:meth:`Source.keep_in_flight`).
"""
from __future__ import annotations

import importlib

from .base import DEFAULT_RING, CorruptFrame, Frame, FrameRing, Source, SourceEnded, SourceError
from .reconnect import ReconnectingSource
from .registry import availability, kinds, make_source, open_source, register
from .uri import IMAGE_EXTENSIONS, SourceURI, parse_uri

__all__ = ["Frame", "FrameRing", "SourceError", "SourceEnded", "CorruptFrame", "Source", "SourceURI", "parse_uri",
           "open_source", "make_source", "register", "kinds", "availability", "ReconnectingSource",
           "IMAGE_EXTENSIONS", "DEFAULT_RING"]

# The kinds that come with the package register themselves on import (synthetic first:
# `openpose-plus info` lists them in this order).
for _module in ("openpose_plus.edge.synthetic.source", ".jetson", ".opencv", ".images"):
    importlib.import_module(_module, __name__)
