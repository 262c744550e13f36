"""The HTTP endpoint: the live page, latest poses, a pose stream, an MJPEG preview with
skeletons, health, Prometheus metrics.

Standard-library ``ThreadingHTTPServer`` (one thread per client, so a preview viewer never
blocks a scrape) on a configurable address, 127.0.0.1 by default. Metrics come from a
``prometheus_client`` registry passed in, rendered by ``prometheus_client`` itself.

    /          the live page (static/index.html): skeletons, IDs and trails drawn in the
               browser over the picture, frames/s and per-stage times
    /events    Server-Sent Events: one ``skeleton`` event (part names, limbs), then each
               frame's poses as /poses has them, plus the frame ``size`` (a slow client
               skips frames, it never holds the sink up)
    /poses     latest poses as JSON       /snapshot.jpg   the latest annotated frame
    /preview.mjpg  multipart JPEG stream with skeletons (``?raw=1``: the picture alone)
    /healthz   200 "ok" / 503 and why     /metrics        Prometheus text format

Several streams: each result carries its stream's name, and ``/poses``, ``/events``,
``/preview.mjpg`` and ``/snapshot.jpg`` take ``?stream=NAME`` for that stream alone (without
it: the latest of any); ``/streams`` lists the names seen, and the live page shows one stream
(``/?stream=NAME``; the first by default) with a link to each.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, Optional, Tuple
from urllib.parse import parse_qs

from openpose_plus.edge.draw import draw_poses
from .base import Result, Sink

try:
    import cv2
except ImportError:  # pragma: no cover
    cv2 = None  # type: ignore[assignment]

__all__ = ["HttpSink"]

log = logging.getLogger("openpose_plus.sinks.http")
_BOUNDARY = "openposeplusframe"
_PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static", "index.html")
_KEEPALIVE = 5.0  # seconds between SSE comments while no frame comes (proxies close idle streams)


class _Feed:
    """One MJPEG feed (annotated or raw): the latest JPEG, its number, who watches it."""

    __slots__ = ("jpeg", "seq", "clients", "last_time")

    def __init__(self) -> None:
        self.jpeg: Optional[bytes] = None
        self.seq = 0
        self.clients = 0
        self.last_time = 0.0


class _Stream:
    """One named stream's latest record, SSE event and feeds (the same names as the sink's own)."""

    def __init__(self) -> None:
        self._latest = b'{"frame": null, "people": []}'
        self._feeds = {False: _Feed(), True: _Feed()}  # annotated, raw
        self._event = b""
        self._event_seq = 0
        self.event_clients = 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class HttpSink(Sink):
    name = "http"
    needs_image = True

    def __init__(self, address: str = "127.0.0.1", port: int = 8080, registry=None,
                 health: Optional[Callable[[], Tuple[bool, str]]] = None, preview_fps: float = 10.0,
                 jpeg_quality: int = 80) -> None:
        if not 0 <= int(port) <= 65535:
            raise ValueError("http sink: port %r is not 0..65535" % (port,))
        self.address, self.requested_port = address, int(port)
        self.registry = registry
        self.health = health or (lambda: (True, "ok"))
        self.preview_interval = 1.0 / preview_fps if preview_fps > 0 else 0.0
        self.jpeg_quality = int(jpeg_quality)
        self._latest = b'{"frame": null, "people": []}'
        self._feeds = {False: _Feed(), True: _Feed()}  # annotated, raw
        self._event = b""        # the latest frame as an SSE message
        self._event_seq = 0
        self._skeleton = b""     # the skeleton as an SSE event, once a frame told it
        self._streams: Dict[str, _Stream] = {}  # by name, as results of named streams come
        self._cond = threading.Condition()
        self._closing = False
        self.event_clients = 0
        self.server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        with open(_PAGE, "rb") as f:  # read once: the page is part of the package
            self._page = f.read()

    @property
    def clients(self) -> int:
        """Viewers of the annotated preview."""
        return self._feeds[False].clients

    @property
    def _jpeg(self) -> Optional[bytes]:
        return self._feeds[False].jpeg

    @property
    def port(self) -> int:
        return self.server.server_address[1] if self.server else self.requested_port

    def open(self) -> None:
        if self.server is not None:
            return
        try:
            self.server = _Server((self.address, self.requested_port), self._handler_class())
        except OSError as exc:
            raise OSError("http sink: cannot listen on %s:%d: %s" % (self.address, self.requested_port, exc)) from None
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="http-sink", daemon=True)
        self._thread.start()
        log.info("http sink on http://%s:%d/", self.address, self.port)

    def handle(self, result: Result) -> None:
        stream = getattr(result, "stream", None)
        st = None
        if stream is not None:
            st = self._streams.get(stream)
            if st is None:
                with self._cond:
                    st = self._streams.setdefault(stream, _Stream())
        record = result.record()
        body = json.dumps(record, separators=(",", ":")).encode()
        event = b""
        if self.event_clients > 0 or (st is not None and st.event_clients > 0):  # only for someone watching
            if result.image is not None:
                record["size"] = [int(result.image.shape[1]), int(result.image.shape[0])]
            event = b"data: " + json.dumps(record, separators=(",", ":")).encode() + b"\n\n"
        if not self._skeleton:
            sk = result.skeleton
            self._skeleton = b"event: skeleton\ndata: " + json.dumps(
                {"name": sk.name, "parts": list(sk.parts), "limbs": [list(limb) for limb in sk.limbs]},
                separators=(",", ":")).encode() + b"\n\n"
        now = time.monotonic()
        jpegs = {}
        for raw in (True, False):  # raw first: drawing writes on the image (this sink's own copy)
            # Encode only for someone watching (or, annotated, the first frame for /snapshot.jpg),
            # at most preview_fps per feed: the latest of any stream's, and this stream's own.
            feeds = [f for f in [self._feeds[raw]] + ([st._feeds[raw]] if st is not None else [])
                     if (f.clients > 0 or (not raw and f.jpeg is None)) and now - f.last_time >= self.preview_interval]
            if result.image is None or not feeds:
                continue
            img = result.image if raw else draw_poses(result.image, result.poses, result.skeleton)
            ok, enc = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                                   [int(cv2.IMWRITE_JPEG_QUALITY), self.jpeg_quality])
            if ok:
                jpegs[raw] = (enc.tobytes(), feeds)
                for feed in feeds:
                    feed.last_time = now
        with self._cond:
            self._latest = body
            if event:
                self._event = event
                self._event_seq += 1
            if st is not None:
                st._latest = body
                if event:
                    st._event = event
                    st._event_seq += 1
            for jpeg, feeds in jpegs.values():
                for feed in feeds:
                    feed.jpeg = jpeg
                    feed.seq += 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    # -- the request handler -------------------------------------------------------------
    def _handler_class(self):
        sink = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "openpose-plus"

            def log_message(self, fmt, *args) -> None:  # route to logging, not stderr per request
                log.debug("%s " + fmt, self.client_address[0], *args)

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                name = (parse_qs(query).get("stream") or [None])[0]
                src = sink
                if name is not None and path in ("/events", "/poses", "/snapshot.jpg", "/preview.mjpg"):
                    with sink._cond:
                        src = sink._streams.get(name)  # type: ignore[assignment]
                    if src is None:
                        self._send(404, ("no stream %r (yet)\n" % name).encode(), "text/plain; charset=utf-8")
                        return
                if path in ("/", "/index.html"):
                    self._send(200, sink._page, "text/html; charset=utf-8")
                elif path == "/events":
                    self._events(src)
                elif path == "/streams":
                    with sink._cond:
                        names = sorted(sink._streams)
                    self._send(200, json.dumps({"streams": names}).encode(), "application/json")
                elif path == "/poses":
                    with sink._cond:
                        body = src._latest
                    self._send(200, body, "application/json")
                elif path == "/healthz":
                    ok, why = sink.health()
                    self._send(200 if ok else 503, (why + "\n").encode(), "text/plain; charset=utf-8")
                elif path == "/metrics":
                    if sink.registry is None:
                        self._send(404, b"no metrics registry\n", "text/plain")
                        return
                    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

                    self._send(200, generate_latest(sink.registry), CONTENT_TYPE_LATEST)
                elif path == "/snapshot.jpg":
                    with sink._cond:
                        jpeg = src._feeds[False].jpeg
                    if jpeg is None:
                        self._send(503, b"no frame yet\n", "text/plain")
                    else:
                        self._send(200, jpeg, "image/jpeg")
                elif path == "/preview.mjpg":
                    self._stream("raw=1" in query.split("&"), src)
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _events(self, src) -> None:
                """Server-Sent Events: the skeleton, then the latest frame (of ``src``: the sink,
                any stream's, or one stream's) each time one comes."""
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                seen, told = src._event_seq, False
                with sink._cond:
                    src.event_clients += 1
                try:
                    while True:
                        with sink._cond:
                            sink._cond.wait_for(lambda: sink._closing or src._event_seq != seen
                                                or (sink._skeleton and not told), timeout=_KEEPALIVE)
                            if sink._closing:
                                return
                            skeleton, event, fresh = sink._skeleton, src._event, src._event_seq != seen
                            seen = src._event_seq
                        out = b""
                        if skeleton and not told:
                            out, told = skeleton, True
                        if fresh and event:
                            out += event
                        self.wfile.write(out or b": keep-alive\n\n")
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the page was closed
                finally:
                    with sink._cond:
                        src.event_clients -= 1

            def _stream(self, raw: bool, src) -> None:
                feed = src._feeds[raw]
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=" + _BOUNDARY)
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                seen = -1
                with sink._cond:
                    feed.clients += 1
                try:
                    while True:
                        with sink._cond:
                            sink._cond.wait_for(lambda: sink._closing or feed.seq != seen, timeout=5.0)
                            if sink._closing:
                                return
                            jpeg, seen = feed.jpeg, feed.seq
                        if jpeg is None:
                            continue
                        self.wfile.write(("--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                          % (_BOUNDARY, len(jpeg))).encode() + jpeg + b"\r\n")
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the viewer went away
                finally:
                    with sink._cond:
                        feed.clients -= 1

        return Handler
