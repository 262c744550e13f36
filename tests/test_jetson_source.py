"""JetsonSource driven through a stand-in for jetson_utils (tests/standins/jetson_utils_standin.py),
which behaves as jetson-utils' bindings do: its URI parser, its ring of --num-buffers images
that frames live in and that deleting the videoSource frees, a file's end and timeouts as
builds before and after 2023-03 report them. The real library needs a Jetson."""
import gc
import logging
import os
import threading
import time

import cv2
import numpy as np
import pytest

from openpose_plus.edge.sources import (ReconnectingSource, SourceEnded, SourceError, SourceURI, make_source,
                                        open_source, parse_uri)
from openpose_plus.edge.sources import jetson as jetson_mod
from openpose_plus.edge.sources.jetson import JetsonSource, jetson_resource
from openpose_plus.edge.sources.opencv import OpenCVSource

def _load_standin():
    """A fresh copy (its world, its memory) for each test."""
    from standins import jetson_utils_standin

    return jetson_utils_standin.fresh()


@pytest.fixture
def ju(monkeypatch):
    """The stand-in as ``jetson_utils``, with an empty world, for one test."""
    module = _load_standin()
    monkeypatch.setitem(__import__("sys").modules, "jetson_utils", module)
    yield module
    gc.collect()


@pytest.fixture(params=["2022.08", "2024.06"])
def generation(request, ju):
    """Builds before 2023-03 raise on a timeout; later ones return None."""
    ju._set_generation(request.param)
    return request.param


def _write_video(path, n, w=96, h=64):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    assert writer.isOpened()
    for i in range(n):
        img = np.full((h, w, 3), 20 * i, np.uint8)
        writer.write(img)
    writer.release()


# -- URIs: what jetson-utils' parser wants, and what goes to OpenCV ---------------------------------
@pytest.mark.parametrize("uri, resource", [
    ("csi://0", "csi://0"),
    ("csi://1?width=1920&height=1080", "csi://1"),
    ("v4l2://0", "v4l2:///dev/video0"),
    ("v4l2://2", "v4l2:///dev/video2"),
    ("v4l2:///dev/video3", "v4l2:///dev/video3"),
    ("/dev/video1", "v4l2:///dev/video1"),
    ("rtsp://user:pw@10.0.0.2:8554/cam?channel=1", "rtsp://user:pw@10.0.0.2:8554/cam?channel=1"),
    ("rtp://@:5000", "rtp://@:5000"),
    ("webrtc://@:8554/input", "webrtc://@:8554/input"),
    ("file:///data/clip.MKV", "file:///data/clip.MKV"),
    ("clip.mp4", "file://" + os.path.abspath("clip.mp4")),
    ("file:///data/clip.avi?loop=-1", "file:///data/clip.avi"),
])
def test_uris_are_rewritten_as_its_parser_wants(ju, uri, resource):
    got, why = jetson_resource(uri, parse_uri(uri))
    assert (got, why) == (resource, "")
    parsed = ju.URI(got)  # jetson-utils' own grammar takes it
    assert parsed.protocol == resource.partition("://")[0]


def test_its_parser_refuses_what_the_rewrite_avoids(ju):
    with pytest.raises(ValueError):
        ju.URI("v4l2://0")  # "failed to parse V4L2 device ID": it wants /dev/videoN
    with pytest.raises(Exception, match="failed to create videoSource"):
        ju.videoSource("v4l2://0")
    with pytest.raises(Exception, match="failed to create videoSource"):
        ju.videoSource("https://host/live.m3u8")  # unsupported protocol


def test_a_v4l2_link_by_id_is_followed_to_its_number(tmp_path):
    link = tmp_path / "usb-Cam-video-index0"
    os.symlink("/dev/video7", str(link))
    assert jetson_resource("v4l2://" + str(link), parse_uri("v4l2://" + str(link)))[0] == "v4l2:///dev/video7"


@pytest.mark.parametrize("uri", ["rtsps://cam/x", "http://cam/mjpg", "https://host/live.m3u8", "rtmp://host/app",
                                 "clip.ts", "clip", "csi://left"])
def test_what_jetson_utils_does_not_open_goes_to_opencv(ju, uri):
    assert jetson_resource(uri, parse_uri(uri))[0] is None
    assert isinstance(make_source(uri), OpenCVSource)  # jetson_utils imports here, and is passed by
    with pytest.raises(SourceError, match="jetson_utils cannot open it"):
        make_source(uri, prefer="jetson_utils")


def test_jetson_utils_takes_what_it_opens_when_it_imports(ju):
    for uri in ("csi://0", "v4l2://0", "rtsp://cam/x", "rtp://@:5000", "webrtc://@:8554/in", "clip.mp4"):
        assert isinstance(make_source(uri), JetsonSource), uri


def test_webrtc_has_no_opencv_fallback():
    with pytest.raises(SourceError, match="OpenCV does not receive WebRTC"):
        make_source("webrtc://@:8554/in", prefer="opencv")


def test_uri_options_become_its_command_line(ju):
    ju.WORLD.plug("csi://0")
    with open_source("csi://0?width=320&height=240&fps=15&flip=rotate-180", ring=5) as src:
        assert src.argv(5) == ["--num-buffers=5", "--log-file=stderr", "--log-level=warning", "--input-flip=rotate-180",
                               "--input-rate=15.0", "--input-height=240", "--input-width=320"]
        opts = src._src.GetOptions()
        assert (opts["width"], opts["height"], opts["framerate"], opts["numBuffers"]) == (320, 240, 15.0, 5)
        assert src.read().image.shape == (240, 320, 3)
    with pytest.raises(SourceError, match="width='wide' is not an integer"):
        open_source("csi://0?width=wide")


# -- frames: zero-copy views of its ring ------------------------------------------------------------
def test_frames_are_views_of_its_ring_no_copy(ju, generation):
    ju.WORLD.plug("/dev/video0")
    src = open_source("v4l2://0?width=64&height=48", ring=3)
    frames = [src.read() for _ in range(6)]
    ptrs = [f.image.ctypes.data for f in frames]
    assert len(set(ptrs)) == 3 and ptrs[:3] == ptrs[3:]  # the ring of 3, round and round
    assert all(p in ju._MEMORY for p in ptrs) and src.zero_copy is True
    assert [int(f.image[0, 0, 0]) for f in frames[3:]] == [3, 4, 5]
    owner = np.asarray(frames[5].image[10:20, :, 1])  # any view keeps the frame's lease
    while isinstance(owner, np.ndarray):
        owner = owner.base
    assert isinstance(owner, jetson_mod._Lease)
    img = jetson_mod.cuda_image(frames[5])  # for a GPU stage: the same memory, by pointer
    assert img.ptr == frames[5].image.ctypes.data and img.mapped and not img.freeOnDelete
    assert img.__cuda_array_interface__["data"][0] == img.ptr and img.shape == (48, 64, 3)
    assert jetson_mod.cuda_image(open_source("synthetic://16x16").read()) is None
    src.close()


def test_a_cuda_stream_of_its_own_where_the_build_has_one(ju, generation):
    """From 2024-06 the conversion runs on a non-blocking stream of its own and only that is
    waited for; older builds have no stream API: the device-wide wait."""
    ju.WORLD.plug("csi://0")
    src = open_source("csi://0?width=32&height=24", ring=3)
    for _ in range(4):
        src.read()
    if generation >= "2024.06":
        assert ju.SYNCS == {"device": 0, "stream": 4}
        assert list(ju.STREAMS.values()) == [True] and src._src._streams_used == set(ju.STREAMS)
    else:
        assert ju.SYNCS == {"device": 4, "stream": 0} and not hasattr(ju, "cudaStreamCreate")
    src.keep_in_flight(5)  # made again, with a stream of its own again
    src.read()
    assert len(ju.STREAMS) == (1 if generation >= "2024.06" else 0)
    src.close()
    assert ju.STREAMS == {}


# -- the ring sized to the pipeline's window ---------------------------------------------------------
@pytest.fixture(scope="module")
def estimator(tmp_path_factory):
    from edge_fixtures import tiny_estimator

    with tiny_estimator(tmp_path_factory.mktemp("b")) as est:
        yield est


def _check_frames(wrong):
    def on_frame(r):
        if r.image[0, 0, 0] != r.index % 256 or r.image[-1, -1, 2] != r.index % 256:
            wrong.append((r.index, int(r.image[0, 0, 0])))
    return on_frame


def test_open_then_pipeline_sizes_its_ring_to_the_window(ju, generation, estimator):
    """`run` opens the source, then makes the pipeline: the videoSource is made again, before
    any capture, with the window's buffers; a camera faster than the network drops frames and
    no frame in flight is overwritten."""
    from openpose_plus.edge.pipeline import Pipeline

    ju.WORLD.plug("csi://0")
    src = open_source("csi://0?width=96&height=64", ring=2)  # smaller than the window (12 by default)
    wrong = []
    p = Pipeline(estimator, src, infer_workers=2, queue_size=1, max_frames=400, on_frame=_check_frames(wrong))
    assert src._src.GetOptions()["numBuffers"] == p.window + 2 == src.ring.size
    assert ju.WORLD.opened == ["csi://0", "csi://0"] and src.remakes == 1
    p.run()
    src.close()
    assert p.error is None and p.capture_drops > 0 and p.frames + p.capture_drops == 400
    assert not wrong, wrong[:5]
    assert src.waits > 0 and src.overwrites == 0  # dropped frames turned its ring: it waited instead


def test_the_daemons_source_opens_once_with_the_windows_ring(ju, estimator):
    from openpose_plus.edge.pipeline import Pipeline

    ju.WORLD.plug("/dev/video0")
    src = ReconnectingSource("v4l2:///dev/video0?width=96&height=64", ring=2, min_delay=0.01)
    wrong = []
    p = Pipeline(estimator, src, infer_workers=1, queue_size=2, max_frames=60, on_frame=_check_frames(wrong))
    p.run()
    assert ju.WORLD.opened == ["v4l2:///dev/video0"]
    assert src.inner._src.GetOptions()["numBuffers"] == p.window + 2
    assert not wrong and p.error is None
    src.close()


def test_a_dropped_frame_is_waited_for_only_while_held(ju, monkeypatch, caplog):
    ju.WORLD.plug("csi://0")
    src = open_source("csi://0?width=32&height=24", ring=2)
    src.keep_in_flight(2)  # ring of 3: made again
    assert src.ring.size == 3 and src.remakes == 1
    kept = src.read()
    value = int(kept.image[0, 0, 0])
    for _ in range(2):
        src.drop(src.read())  # dropped, yet they took turns of its ring
    got = {}
    reader = threading.Thread(target=lambda: got.setdefault("frame", src.read()))
    reader.start()  # the next capture would overwrite `kept`: it waits
    deadline = time.monotonic() + 5
    while src.waits == 0 and time.monotonic() < deadline:
        reader.join(0.01)
    assert src.waits == 1 and reader.is_alive() and int(kept.image[0, 0, 0]) == value
    del kept  # let go: the capture goes on
    reader.join(5)
    assert not reader.is_alive() and src.overwrites == 0 and "frame" in got
    # A frame held past the wait is overwritten, counted and logged (copy frames kept longer).
    monkeypatch.setattr(jetson_mod, "HELD_WAIT_S", 0.05)
    held = [got.pop("frame")]
    for _ in range(2):
        src.drop(src.read())
    with caplog.at_level(logging.WARNING, "openpose_plus.sources"):
        src.read()
    assert src.overwrites == 1 and "overwritten" in caplog.text and held
    src.close()


# -- reconnect: never frees frames in flight -------------------------------------------------------------
def test_reconnect_keeps_frames_in_flight_alive_until_let_go(ju, generation):
    ju.WORLD.plug("/dev/video0")
    statuses = []

    def on_status(text):
        statuses.append(text)
        if "retry" in text:
            ju.WORLD.plug("/dev/video0")  # the camera is back during the backoff

    src = ReconnectingSource("v4l2://0?width=64&height=48", min_delay=0.01, on_status=on_status).open()
    held = [src.read(), src.read()]
    values = [int(f.image[0, 0, 0]) for f in held]
    ptrs = {f.image.ctypes.data for f in held}
    ju.WORLD.unplug("/dev/video0")  # its captures time out, then its videoSource cannot be made
    frame = src.read()
    assert src.reconnects == 1 and frame.index == 2 and any("no frame in 5 s" in s for s in statuses)
    assert len(ju.LIVE) == 2  # the lost source lives on under the frames in flight...
    assert [int(f.image[0, 0, 0]) for f in held] == values and not ptrs & ju.FREED
    del held, frame
    gc.collect()
    assert len(ju.LIVE) == 1 and ptrs <= ju.FREED  # ...and is freed with the last of them
    src.close()


def test_close_stops_at_once_and_frees_with_the_last_frame(ju):
    ju.WORLD.plug("csi://0")
    src = open_source("csi://0?width=32&height=24", ring=4)
    frame = src.read()
    vs = src._src
    src.close()
    assert not vs.IsStreaming() and len(ju.LIVE) == 1
    del vs
    ptr = frame.image.ctypes.data
    assert ptr not in ju.FREED and int(frame.image[0, 0, 0]) == 0
    view = frame.image[:, :, 0]
    del frame
    assert len(ju.LIVE) == 1  # a view of the frame is still about
    del view
    assert len(ju.LIVE) == 0 and ptr in ju.FREED


# -- the end of a file, timeouts -----------------------------------------------------------------------
def test_a_file_ends_with_source_ended(ju, generation, tmp_path):
    path = tmp_path / "clip.avi"
    _write_video(path, 5)
    with open_source(str(path)) as src:
        assert isinstance(src, JetsonSource)
        frames = [int(f.image[0, 0, 0]) for f in src]
        with pytest.raises(SourceEnded, match="ended after 5 frames"):
            src.read()
    assert len(frames) == 5 and frames == sorted(frames) and frames[0] < 5 < frames[4]
    with open_source("file://%s?loop=2" % path) as src:  # --input-loop=2: twice through, then the end
        assert len(list(src)) == 10


def test_a_file_in_the_pipeline_ends_without_an_error(ju, tmp_path, estimator):
    from openpose_plus.edge.pipeline import Pipeline

    path = tmp_path / "clip.avi"
    _write_video(path, 12)
    src = open_source(str(path))
    p = Pipeline(estimator, src, infer_workers=2).run()
    src.close()
    assert p.error is None and p.frames == 12 and p.capture_drops == 0
    src = ReconnectingSource(str(path), min_delay=0.01, reopen_on_end=False).open()
    assert len(list(src)) == 12 and src.reconnects == 0


def test_a_file_that_cannot_start_is_an_error_not_an_end(ju, tmp_path):
    with pytest.raises(SourceError, match="jetson_utils cannot open"):
        open_source(str(tmp_path / "absent.mp4"))
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 1000)
    src = open_source(str(tmp_path / "junk.mp4"))
    with pytest.raises(SourceError, match="could not start") as err:
        src.read()
    assert not isinstance(err.value, SourceEnded)


def test_keep_in_flight_after_reading_a_file_goes_on_where_it_was(ju, tmp_path):
    path = tmp_path / "clip.avi"
    _write_video(path, 6)
    src = open_source(str(path), ring=2)
    first = [int(src.read().image[0, 0, 0]) for _ in range(2)]
    src.keep_in_flight(4)
    rest = [int(f.image[0, 0, 0]) for f in src]
    assert len(first + rest) == 6 and first + rest == sorted(first + rest) and src.remakes == 1


def test_timeouts_are_retried_then_lose_a_live_source(ju, generation):
    ju.WORLD.plug("csi://0")
    src = open_source("csi://0?width=32&height=24")
    ju.WORLD.stall("csi://0", jetson_mod.FIRST_FRAME_TIMEOUTS - 1)  # a slow start is waited for
    assert src.read().index == 0
    ju.WORLD.stall("csi://0", jetson_mod.TIMEOUTS - 1)
    assert src.read().index == 1
    ju.WORLD.stall("csi://0", jetson_mod.TIMEOUTS)
    with pytest.raises(SourceError, match="no frame in 5 s") as err:
        src.read()
    assert not isinstance(err.value, SourceEnded)
    src.close()


def test_a_stream_that_is_not_there_is_an_error(ju, generation):
    src = open_source("rtsp://10.0.0.9/none")  # made: GStreamer only starts on the first capture
    with pytest.raises(SourceError, match="stopped streaming"):
        src.read()


def test_without_jetson_utils_the_reason_is_given(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "jetson_utils", None)
    monkeypatch.setitem(__import__("sys").modules, "jetson", None)
    with pytest.raises(SourceError, match="jetson_utils is not importable"):
        make_source("csi://0", prefer="jetson_utils").open()
    assert isinstance(make_source("csi://0"), OpenCVSource)
    assert not jetson_mod._status("csi").ok


def test_the_standin_says_what_it_is_and_invents_no_api():
    from standins import surface

    module = _load_standin()
    assert "stand-in" in module.__doc__ and "no test machine can have it" in module.__doc__
    assert surface.invented(module.LIBRARY, vars(module), module.EXPORTS) == set()


def test_parse_keeps_uri_options_for_jetson(ju):
    where = parse_uri("csi://0?width=640")
    assert where == SourceURI("csi", "0", {"width": "640"})
