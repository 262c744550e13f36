"""Sources: URIs, synthetic people, files, folders, and reconnecting with backoff."""
import os
import shutil
import threading
import time

import cv2
import numpy as np
import pytest

from openpose_plus.edge.sources import (CorruptFrame, ReconnectingSource, SourceEnded, SourceError,
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
    src = ReconnectingSource("synthetic://64x48?people=1&frames=3", min_delay=0.01, on_status=statuses.append)
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
