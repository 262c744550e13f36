"""The source URI grammar, as jetson-utils' ``videoSource`` names its inputs.

    csi://0[?width=W&height=H&fps=F]     v4l2:///dev/video0, v4l2://1, /dev/video0
    rtsp://host/path, rtp://@:5000, webrtc://@:8554/in (jetson-utils' network inputs),
    rtsps, http, https, rtmp (OpenCV's): network streams; the query belongs to the URL
    file:///path/clip.mp4, clip.mp4      a video file
    file:///path/dir, dir, photo.jpg     a folder of images, or one image
    synthetic://[WxH][?key=value&...]    registered by :mod:`openpose_plus.edge.synthetic.source`

:func:`parse_uri` turns a URI into ``(kind, location, options)``; a kind that brings its own
scheme adds it with :func:`add_scheme`. The option readers turn ``key=value`` text into
numbers with errors that name the URI.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, NamedTuple, Optional, Tuple

from .base import SourceError

__all__ = ["SourceURI", "parse_uri", "add_scheme", "schemes", "is_image", "IMAGE_EXTENSIONS",
           "int_option", "float_option", "range_option"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class SourceURI(NamedTuple):
    kind: str                 # csi, v4l2, rtsp, file, folder, or a registered kind (synthetic)
    location: str             # a device, a path, a URL, or what the kind makes of it (WxH)
    options: Dict[str, str]   # the key=value query, for schemes whose query is ours


class _Scheme(NamedTuple):
    kind: str      # what it opens (file:// opens a file or a folder)
    resolve: Callable[[str, str], Tuple[str, str]]  # (uri, rest after "://") -> (kind, location)
    options: bool  # the query is key=value options for us (else it is part of a URL)


def is_image(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def _path(path: str) -> Tuple[str, str]:
    return ("folder" if os.path.isdir(path) or is_image(path) else "file"), path


def _v4l2(uri: str, rest: str) -> Tuple[str, str]:
    # v4l2:///dev/video0, a link such as /dev/v4l/by-id/usb-...-index0, or a number
    return "v4l2", rest if rest.startswith("/") else "/dev/video" + (rest or "0")


_SCHEMES: Dict[str, _Scheme] = {
    "csi": _Scheme("csi", lambda uri, rest: ("csi", rest or "0"), True),
    "v4l2": _Scheme("v4l2", _v4l2, True),
    "file": _Scheme("file", lambda uri, rest: _path(rest), True),
}
for _net in ("rtsp", "rtp", "webrtc", "rtsps", "http", "https", "rtmp"):
    _SCHEMES[_net] = _Scheme("rtsp", lambda uri, rest: ("rtsp", uri), False)


def add_scheme(scheme: str, kind: str, options: bool = True) -> None:
    """``scheme://LOCATION[?key=value&...]`` opens ``kind`` (a registered source kind)."""
    existing = _SCHEMES.get(scheme)
    if existing is not None and existing.kind != kind:
        raise ValueError("source scheme %s:// already opens %s, not %s" % (scheme, existing.kind, kind))
    _SCHEMES[scheme] = _Scheme(kind, lambda uri, rest: (kind, rest), options)


def schemes() -> Tuple[str, ...]:
    return tuple(_SCHEMES)


def parse_uri(uri: str) -> SourceURI:
    """``(kind, location, options)`` of ``uri``; a clear :class:`SourceError` when it is not one."""
    if not isinstance(uri, str) or not uri.strip():
        raise SourceError("empty source URI")
    uri = uri.strip()
    scheme, sep, rest = uri.partition("://")
    if not sep:  # a bare path
        if uri.startswith("/dev/video"):
            return SourceURI("v4l2", uri, {})
        return SourceURI(*_path(uri), {})
    entry = _SCHEMES.get(scheme)
    if entry is None:
        raise SourceError("unknown source %r (use %s, /dev/videoN, a file or a folder)"
                          % (uri, ", ".join(s + "://" for s in _SCHEMES)))
    options: Dict[str, str] = {}
    if entry.options:
        rest, _, query = rest.partition("?")
        for item in filter(None, query.split("&")):
            k, eq, v = item.partition("=")
            if not eq:
                raise SourceError("source %s: option %r has no value (use key=value)" % (uri, item))
            options[k] = v
    kind, location = entry.resolve(uri, rest)
    return SourceURI(kind, location, options)


# -- reading options ------------------------------------------------------------------------
def _number_option(options: Dict[str, str], key: str, default, uri: str, kind: Callable, what: str):
    if key not in options:
        return default
    try:
        return kind(options[key])
    except ValueError:
        raise SourceError("source %s: option %s=%r is not %s" % (uri, key, options[key], what)) from None


def int_option(options: Dict[str, str], key: str, default: Optional[int], uri: str) -> Optional[int]:
    return _number_option(options, key, default, uri, int, "an integer")


def float_option(options: Dict[str, str], key: str, default: Optional[float], uri: str) -> Optional[float]:
    return _number_option(options, key, default, uri, float, "a number")


def range_option(options: Dict[str, str], key: str, uri: str) -> Optional[Tuple[float, float]]:
    """``MIN-MAX`` (or one number) -> ``(min, max)``, ``0 < min <= max``; None when absent."""
    if key not in options:
        return None
    text = options[key]
    try:
        parts = [float(v) for v in text.split("-")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not 0 < parts[0] <= parts[1] < float("inf"):
        raise SourceError("source %s: option %s=%r is not MIN-MAX with 0 < MIN <= MAX" % (uri, key, text))
    return parts[0], parts[1]
