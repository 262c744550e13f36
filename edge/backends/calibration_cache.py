"""TensorRT's INT8 calibration cache: its text format, its version header, and retargeting it.

The cache is text: a header naming the TensorRT version and the calibrator, then one line
per activation tensor with its scale (``amax / 127``) as the big-endian hex of its
float32 bits::

    TRT-100300-EntropyCalibration2
    conv1:0: 3c8f5c29

The header's number is ``NV_TENSORRT_VERSION`` of the TensorRT that wrote it: major*1000 +
minor*100 + patch before 10.0 (8.5.2 -> 8502, 8.6.2 -> 8602), major*10000 + minor*100 +
patch from 10.0 (10.3.0 -> 100300). TensorRT *skips* a cache whose header names another
version or another calibrator (NVIDIA/TensorRT#1378) and then calibrates on whatever
``get_batch`` gives: with a replay-only calibrator that is nothing, and the build fails
or quantises blind.

The scales in this project's cache are not TensorRT's own calibration: they are computed on
the host (``openpose-plus calibrate``) from the same ranges as the Q/DQ model, and mean the
same to every TensorRT version. So the header written on the host is only a default
(:data:`DEFAULT_TRT_VERSION`), and the device hands TensorRT :func:`for_tensorrt` of the file:
the same scales under a header naming the TensorRT that is running. One ``calibration.cache``
therefore serves every generation that still has calibrators: JetPack 5.1 (TensorRT 8.5.2),
6.0 (8.6.2), 6.1/6.2 (10.3) and 7.0/7.1 (10.x); TensorRT 11 (JetPack 7.2.2+) has no
calibrators, and takes INT8 only from the Q/DQ model.

Standard library only: the device imports this.
"""
from __future__ import annotations

import math
import re
import struct
from typing import Dict, Mapping, Tuple

__all__ = ["DEFAULT_TRT_VERSION", "CALIBRATOR", "trt_version_code", "cache_header", "cache_text", "parse_cache",
           "for_tensorrt"]

# The header a host writes when not told otherwise: TensorRT 10.3, JetPack 6.1/6.2 (the
# newest JetPack with DLA and calibrators; DLA INT8 is the one route that needs this cache).
DEFAULT_TRT_VERSION = "10.3.0"
# The device replays the cache through an IInt8EntropyCalibrator2, whatever method made the
# ranges; TensorRT also skips a cache whose header names another calibrator.
CALIBRATOR = "EntropyCalibration2"

_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?(?:\.\d+)*(?:[.+-]?(?:post|dev|rc|a|b|cuda|cu)[\w.+-]*)?")
_HEADER = re.compile(r"TRT-(\d+)-(\w+)")
_LINE = re.compile(r"(.+): ([0-9a-f]{8})")


def trt_version_code(version: str) -> int:
    """``NV_TENSORRT_VERSION`` of a version string, as cache headers write it.

    ``"8.6.1"`` -> 8601, ``"8.6.2.3"`` -> 8602, ``"10.3.0"`` -> 100300, and pip's
    ``"10.13.3.9.post1"`` -> 101303 (build number and suffixes are not in the code).
    """
    m = _VERSION.fullmatch(str(version).strip())
    if not m:
        raise ValueError("TensorRT version must look like 8.6.1 or 10.13.3.9.post1, got %r" % (version,))
    major, minor, patch = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if minor > 99 or patch > 99:
        raise ValueError("TensorRT version %r has a minor or patch number above 99" % (version,))
    return major * (10000 if major >= 10 else 1000) + minor * 100 + patch


def cache_header(trt_version: str = DEFAULT_TRT_VERSION) -> str:
    return "TRT-%d-%s" % (trt_version_code(trt_version), CALIBRATOR)


def _hex(scale: float) -> str:
    return struct.pack(">f", scale).hex()


def cache_text(scales: Mapping[str, float], trt_version: str = DEFAULT_TRT_VERSION) -> str:
    """The cache for ``tensor -> scale``; every scale must be a positive finite float32."""
    lines = [cache_header(trt_version)]
    for name in sorted(scales):
        scale = struct.unpack(">f", struct.pack(">f", float(scales[name])))[0]  # as float32 stores it
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError("tensor %r has no usable scale (%r)" % (name, scale))
        if "\n" in name or not name:
            raise ValueError("tensor name %r cannot be written in a TensorRT cache" % name)
        lines.append("%s: %s" % (name, _hex(scale)))
    return "\n".join(lines) + "\n"


def parse_cache(text: str) -> Tuple[str, Dict[str, float]]:
    """``(header, tensor -> scale)`` of a cache; ValueError naming the line on anything malformed."""
    lines = text.splitlines()
    if not lines or not _HEADER.fullmatch(lines[0]):
        raise ValueError("not a TensorRT calibration cache: header is %r" % (lines[0] if lines else ""))
    scales: Dict[str, float] = {}
    for n, line in enumerate(lines[1:], start=2):
        m = _LINE.fullmatch(line)
        if not m:
            raise ValueError("line %d of the calibration cache is not 'name: hex-float': %r" % (n, line))
        name, value = m.group(1), m.group(2)
        if name in scales:
            raise ValueError("tensor %r appears twice in the calibration cache" % name)
        scale = struct.unpack(">f", bytes.fromhex(value))[0]
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError("line %d of the calibration cache: tensor %r has scale %r" % (n, name, scale))
        scales[name] = scale
    return lines[0], scales


def for_tensorrt(data: bytes, trt_version: str) -> bytes:
    """The cache ``data`` (a bundle's ``calibration.cache``) as the running TensorRT reads it.

    The scales are kept bit for bit; only the header changes, to ``trt_version`` (pass
    ``tensorrt.__version__``) and the calibrator the device replays it with. ValueError when
    ``data`` is not a well-formed cache, so a damaged file never reaches TensorRT (which
    would skip it and calibrate on nothing).
    """
    text = data.decode("ascii") if isinstance(data, (bytes, bytearray)) else str(data)
    parse_cache(text)
    body = text.split("\n", 1)[1] if "\n" in text else ""
    return (cache_header(trt_version) + "\n" + body).encode("ascii")
