"""TensorRT's calibration cache: version codes, the text format, and retargeting a cache to the running TensorRT."""
from __future__ import annotations

import pytest

from openpose_plus.edge.backends.calibration_cache import (DEFAULT_TRT_VERSION, cache_header, cache_text,
                                                           for_tensorrt, parse_cache, trt_version_code)


def test_version_codes_of_every_jetpack_and_of_pip():
    # JetPack 5.1 / 6.0 / 6.1-6.2, a desktop 8.6.1, pip's wheels (build number and .postN suffix)
    assert [trt_version_code(v) for v in ("8.5.2", "8.6.2", "10.3.0", "8.6.1")] == [8502, 8602, 100300, 8601]
    assert trt_version_code("10.13.3.9.post1") == 101303 and trt_version_code("8.5.2.2") == 8502
    assert trt_version_code("11.4.0.106") == 110400 and trt_version_code(" 10.3 ") == 100300
    for bad in ("eight", "10", "10.3.x", "", "10.300.0"):
        with pytest.raises(ValueError):
            trt_version_code(bad)
    assert DEFAULT_TRT_VERSION == "10.3.0" and cache_header() == "TRT-100300-EntropyCalibration2"


def test_text_format_round_trips_and_rejects_what_tensorrt_would_skip():
    text = cache_text({"conv1:0": 0.5, "b": 1.0}, "8.6.1")
    assert text == "TRT-8601-EntropyCalibration2\nb: 3f800000\nconv1:0: 3f000000\n"
    assert parse_cache(text) == ("TRT-8601-EntropyCalibration2", {"b": 1.0, "conv1:0": 0.5})
    assert parse_cache("TRT-8601-EntropyCalibration2\na: b: 3f800000\n")[1] == {"a: b": 1.0}  # ': ' inside a name
    for bad in ("nonsense\n", "TRT-8601-EntropyCalibration2\nx 3f800000\n", "TRT-8601-EntropyCalibration2\nx: 3f8\n",
                "TRT-8601-EntropyCalibration2\nx: 3f800000\nx: 3f800000\n",
                "TRT-8601-EntropyCalibration2\nx: 00000000\n", "TRT-8601-EntropyCalibration2\nx: 7f800000\n"):
        with pytest.raises(ValueError):
            parse_cache(bad)
    for scales in ({"t": 0.0}, {"t": float("nan")}, {"": 1.0}, {"a\nb": 1.0}):
        with pytest.raises(ValueError):
            cache_text(scales)


def test_retargeting_keeps_the_scales_bit_for_bit():
    text = cache_text({"x": 0.0123, "y:0": 3.5}, "8.6.1")
    for version, header in (("8.5.2", "TRT-8502-EntropyCalibration2"), ("8.6.2.3", "TRT-8602-EntropyCalibration2"),
                            ("10.3.0", "TRT-100300-EntropyCalibration2"),
                            ("10.13.3.9.post1", "TRT-101303-EntropyCalibration2")):
        out = for_tensorrt(text.encode(), version).decode()
        assert out.splitlines()[0] == header and out.split("\n", 1)[1] == text.split("\n", 1)[1]
    # a cache written for another calibrator is replayed as EntropyCalibration2, which the device uses
    minmax = text.replace("EntropyCalibration2", "MinMaxCalibration")
    assert for_tensorrt(minmax.encode(), "8.6.1").decode() == text
    with pytest.raises(ValueError):
        for_tensorrt(b"TRT-8601-EntropyCalibration2\nbroken\n", "8.6.1")
    with pytest.raises(ValueError):
        for_tensorrt(b"\xff\xfe", "8.6.1")
