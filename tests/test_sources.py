"""Sources: URIs, synthetic people, files, folders, and reconnecting with backoff."""
import os
import shutil
import threading
import time

import cv2
import numpy as np
import pytest

from openpose_plus.edge.sources import (CorruptFrame, ReconnectingSource, Source, SourceEnded, SourceError,
                                        availability, make_source, open_source, parse_uri)


@pytest.mark.parametrize("uri, kind, location", [
    ("csi://0", "csi", "0"),
    ("csi://1?width=1920&height=1080", "csi", "1"),
    ("/dev/video0", "v4l2", "/dev/video0"),
    ("v4l2:///dev/video2", "v4l2", "/dev/video2"),
    ("v4l2://1", "v4l2", "/dev/video1"),
    ("rtsp://10.0.0.2:8554/cam", "rtsp", "rtsp://10.0.0.2:8554/cam"),
    ("synthetic://", "synthetic", ""),
    ("synthetic://320x240?people=2", "synthetic", "320x240"),
    ("clip.mp4", "file", "clip.mp4"),
    ("file:///data/clip.mkv", "file", "/data/clip.mkv"),
    ("photo.jpg", "folder", "photo.jpg"),
])
def test_uris(uri, kind, location):
    got = parse_uri(uri)
    assert got[:2] == (kind, location)


def test_bad_uris_are_named():
    for uri, msg in [("", "empty"), ("ftp://host/x", "unknown source"), ("synthetic://?people", "no value"),
                     ("synthetic://axb", "WIDTHxHEIGHT"), ("synthetic://?peeple=2", "unknown option"),
                     ("synthetic://?people=two", "not an integer"),
                     ("synthetic://?height=0.9-0.4", "MIN-MAX"), ("synthetic://?height=tall", "MIN-MAX"),
                     ("synthetic://?height=0-0.5", "MIN-MAX"), ("synthetic://?height=0.2-0.3-0.4", "MIN-MAX")]:
        with pytest.raises(SourceError, match=msg):
            make_source(uri)


def test_synthetic_frames_move_are_deterministic_and_end():
    with open_source("synthetic://160x120?people=2&seed=3&frames=4") as src:
        frames = [(f.index, f.image.copy(), f.truth) for f in src]
    assert [i for i, _, _ in frames] == [0, 1, 2, 3]
    assert frames[0][1].shape == (120, 160, 3) and frames[0][1].dtype == np.uint8
    assert frames[0][2].shape == (2, 18, 3)
    assert not np.array_equal(frames[0][2], frames[3][2])  # people walk
    with open_source("synthetic://160x120?people=2&seed=3&frames=4") as again:
        np.testing.assert_array_equal(again.read().image, frames[0][1])


def test_synthetic_height_sets_how_tall_the_walkers_are():
    def tallest(uri):
        with open_source(uri) as src:
            truth = src.read().truth
        spans = [np.ptp(p[p[:, 2] > 0, 1]) for p in truth if (p[:, 2] > 0).sum() > 10]
        return max(spans) / 240

    assert tallest("synthetic://320x240?people=3&seed=2&frames=1&height=0.2") < 0.25
    assert tallest("synthetic://320x240?people=3&seed=2&frames=1&height=0.7-0.9") > 0.55


def test_synthetic_rate_paces_like_a_camera():
    with open_source("synthetic://64x48?people=1&rate=50&frames=6") as src:
        t0 = time.monotonic()
        n = sum(1 for _ in src)
    assert n == 6 and time.monotonic() - t0 >= 5 / 50 * 0.9


def test_recordings_carry_their_own_time_cameras_the_capture_time(tmp_path):
    # Read in a burst, a recording's frames keep their places in it (what tracking's
    # velocities are per); a camera stand-in paced by rate too: its scene moves at fps.
    with open_source("synthetic://64x48?people=1&fps=25&frames=4") as src:
        frames = list(src)
    assert [f.media_time for f in frames] == pytest.approx([0.0, 0.04, 0.08, 0.12])
    with open_source("synthetic://64x48?people=1&rate=200&frames=2") as camera:
        assert all(f.media_time == f.timestamp for f in camera)
    path = tmp_path / "clip.avi"
    _write_video(path, 3)  # 10 frames/s
    with open_source(str(path)) as src:
        assert [f.media_time for f in src] == pytest.approx([0.0, 0.1, 0.2])


def test_frames_come_from_a_small_ring_allocated_once():
    with open_source("synthetic://64x48?people=1", ring=3) as src:
        addrs = [src.read().image.ctypes.data for _ in range(9)]
    assert len(set(addrs)) == 3 and addrs[:3] == addrs[3:6] == addrs[6:]


def _write_video(path, n, w=96, h=64):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    assert writer.isOpened()
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[:, :, 2] = 200  # red in BGR
        cv2.putText(img, str(i), (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1, (255, 255, 255), 2)
        writer.write(img)
    writer.release()


def test_video_file_reads_rgb_then_ends(tmp_path):
    path = tmp_path / "clip.avi"
    _write_video(path, 5)
    with open_source(str(path)) as src:
        frames = [f.image.copy() for f in src]
        with pytest.raises(SourceEnded, match="ended after 5 frames"):
            src.read()
    assert len(frames) == 5 and frames[0].shape == (64, 96, 3)
    assert frames[0][5, 90, 0] > 150 and frames[0][5, 90, 2] < 60  # RGB order: red first


def test_missing_things_are_clear_errors(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        open_source(str(tmp_path / "nope.mp4"))
    with pytest.raises(SourceError, match="camera /dev/video99 is not there"):
        open_source("/dev/video99", prefer="opencv")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="no images"):
        open_source(str(empty))
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(SourceError, match="cannot open it"):
        open_source(str(tmp_path / "junk.mp4"))


def test_folder_skips_a_corrupt_image_with_its_name(tmp_path):
    for i in range(3):
        img = np.full((40, 50, 3), 60 * i, np.uint8)
        cv2.imwrite(str(tmp_path / ("%02d.png" % i)), img)
    (tmp_path / "01b.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (tmp_path / "notes.txt").write_text("not an image")
    src = open_source(str(tmp_path))
    assert [os.path.basename(p) for p in src.files] == ["00.png", "01.png", "01b.jpg", "02.png"]
    got = [src.read().image[0, 0, 0], src.read().image[0, 0, 0]]
    with pytest.raises(CorruptFrame, match="01b.jpg"):
        src.read()
    got.append(src.read().image[0, 0, 0])
    assert got == [0, 60, 120]
    with pytest.raises(SourceEnded):
        src.read()


def test_reconnect_when_a_stream_ends_then_frames_again():
    statuses = []
    # paced like a camera (rate): a live stream, whose end is a loss
    src = ReconnectingSource("synthetic://64x48?people=1&frames=3&rate=1000", min_delay=0.01,
                             on_status=statuses.append)
    src.open()
    indices = [src.read().index for _ in range(8)]
    assert indices == list(range(8))  # numbering goes on across reconnects
    assert src.reconnects == 2 and any("reconnected" in s for s in statuses)
    src.close()


def test_reconnect_backs_off_until_the_source_is_back(tmp_path):
    path = tmp_path / "cam.avi"
    _write_video(path, 2)
    statuses, beats = [], []
    hidden = tmp_path / "away.avi"

    def on_status(text):  # the camera comes back at the third retry, however long the first two took
        statuses.append(text)
        if "retry" in text and sum("retry" in s for s in statuses) == 3:
            os.rename(hidden, path)

    src = ReconnectingSource(str(path), min_delay=0.05, max_delay=0.2, on_status=on_status,
                             heartbeat=lambda: beats.append(1))
    src.open()
    assert src.read().index == 0 and src.read().index == 1
    os.rename(path, hidden)  # the camera goes away at the end of the stream
    t0 = time.monotonic()
    frame = src.read()  # blocks: retries with backoff until the file is back
    assert frame.index == 2 and time.monotonic() - t0 >= 0.05 + 0.1 + 0.2
    assert src.delays[:3] == [0.05, 0.1, 0.2] and max(src.delays) == 0.2
    assert any("retry" in s and "no such file" in s for s in statuses)
    assert src.reconnects == 1 and len(beats) >= len(src.delays)
    src.close()


def test_stop_interrupts_a_backoff(tmp_path):
    src = ReconnectingSource(str(tmp_path / "never.mp4"), min_delay=5.0, max_delay=5.0)
    threading.Timer(0.2, src.stop).start()
    t0 = time.monotonic()
    with pytest.raises(SourceEnded, match="stopped"):
        src.read()
    assert time.monotonic() - t0 < 3.0


def test_max_attempts_gives_up_with_the_reason(tmp_path):
    src = ReconnectingSource(str(tmp_path / "never.mp4"), min_delay=0.01, max_attempts=3)
    with pytest.raises(SourceError, match="no such file"):
        src.open()
    assert len(src.delays) == 2


def test_availability_says_how_each_kind_opens():
    st = {s.name: s for s in availability()}
    assert st["synthetic://"].ok and st["folder"].ok and st["file"].ok
    assert "OpenCV" in st["v4l2://"].detail or "jetson_utils" in st["v4l2://"].detail
    if not st["csi://"].ok:
        assert "jetson_utils" in st["csi://"].detail


def test_ring_grows_without_touching_frames_in_use():
    src = open_source("synthetic://64x48?people=1", ring=2)
    a = src.read().image
    keep = a.copy()
    src.ring.ensure(5)
    others = [src.read().image for _ in range(4)]
    assert all(o.ctypes.data != a.ctypes.data for o in others)
    np.testing.assert_array_equal(a, keep)


# -- the registry: kinds register themselves ---------------------------------------------------
@pytest.fixture
def fresh_registry(monkeypatch):
    """Kinds a test registers go away after it."""
    from openpose_plus.edge.sources import registry, uri

    monkeypatch.setattr(registry, "_KINDS", {k: list(v) for k, v in registry._KINDS.items()})
    monkeypatch.setattr(registry, "_LABELS", dict(registry._LABELS))
    monkeypatch.setattr(uri, "_SCHEMES", dict(uri._SCHEMES))
    return registry


def test_the_built_in_kinds_register_themselves():
    from openpose_plus.edge.sources import registry
    from openpose_plus.edge.sources.jetson import JetsonSource
    from openpose_plus.edge.sources.opencv import OpenCVSource
    from openpose_plus.edge.synthetic.source import SyntheticSource

    assert set(registry.kinds()) == {"synthetic", "csi", "v4l2", "rtsp", "file", "folder"}
    (synthetic,) = registry.providers("synthetic")
    assert synthetic.factory.__module__ == "openpose_plus.edge.synthetic.source"
    assert isinstance(make_source("synthetic://"), SyntheticSource)
    for kind in ("csi", "v4l2", "rtsp", "file"):
        assert [p.name for p in registry.providers(kind)] == ["jetson_utils", "opencv"]
    assert isinstance(make_source("/dev/video0", prefer="opencv"), OpenCVSource)
    assert isinstance(make_source("rtsp://cam/x", prefer="jetson_utils"), JetsonSource)  # made, not opened
    if not {s.name: s for s in availability()}["v4l2://"].detail.endswith("(zero-copy cudaImage)"):
        assert isinstance(make_source("v4l2://0"), OpenCVSource)  # auto: jetson_utils is not here
    with pytest.raises(SourceError, match="unknown source provider 'gstreamer'"):
        make_source("csi://0", prefer="gstreamer")


class Counting(Source):
    """A new kind for the registry tests: ``count://N?value=V``, N frames of value V."""

    kind = "count"

    def __init__(self, uri, where, ring, via="count"):
        super().__init__(uri, ring)
        self.n, self.value, self.via = int(where.location or 1), int(where.options.get("value", 0)), via

    def read(self):
        if self.index >= self.n:
            raise SourceEnded("count ended")
        buf = self.ring.get(4, 4)
        buf.fill(self.value)
        return self._frame(buf)


def test_a_new_kind_brings_its_scheme_and_opens_like_the_others(fresh_registry):
    from openpose_plus.edge.environment import Status

    fresh_registry.register("count", "count", Counting, lambda kind: Status(kind, True, "counts"), scheme="count")
    assert parse_uri("count://3?value=7") == ("count", "3", {"value": "7"})
    with open_source("count://3?value=7") as src:
        assert [int(f.image[0, 0, 0]) for f in src] == [7, 7, 7]
    assert {s.name: (s.ok, s.detail) for s in availability()}["count://"] == (True, "counts")
    with pytest.raises(SourceError, match="count://"):  # the error lists what can be named
        parse_uri("ftp://host/x")
    with pytest.raises(ValueError, match="already opens csi"):
        fresh_registry.register("count", "count", Counting, scheme="csi")
    src = ReconnectingSource("count://2", min_delay=0.01).open()  # the wrapper opens any kind
    assert [src.read().index for _ in range(4)] == [0, 1, 2, 3]
    assert src.reopened == 1 and src.reconnects == 0  # not live: read again from its start, not lost
    src.close()


def test_auto_takes_the_first_provider_that_runs_here_and_prefer_names_one(fresh_registry):
    from openpose_plus.edge.environment import Status

    def via(name):
        return lambda uri, where, ring: Counting(uri, where, ring, via=name)

    reg = fresh_registry.register
    reg("count", "plain", via("plain"), scheme="count")
    reg("count", "absent", via("absent"), lambda kind: Status(kind, False, "absent: not installed"), priority=20)
    reg("count", "fast", via("fast"), lambda kind: Status(kind, True, "fast path"), priority=10)
    assert [p.name for p in fresh_registry.providers("count")] == ["absent", "fast", "plain"]
    assert make_source("count://1").via == "fast"
    assert make_source("count://1", prefer="absent").via == "absent"
    assert make_source("count://1", prefer="plain").via == "plain"
    assert make_source("count://1", prefer="opencv").via == "fast"  # a provider, not of this kind: auto
    st = {s.name: s for s in availability()}["count://"]
    assert st.ok and st.detail == "fast path (no absent)"
    reg("count", "fast", via("fast"), lambda kind: Status(kind, False, "fast: no GPU"), priority=10)  # replaced
    assert make_source("count://1").via == "plain"  # nothing better runs: the last one
    assert {s.name: s for s in availability()}["count://"].detail == "built in (no absent)"
