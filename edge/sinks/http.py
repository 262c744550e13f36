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
    /streams   the names of the streams seen, as JSON

Several streams: each result carries its stream's name, and ``/poses``, ``/events``,
``/preview.mjpg`` and ``/snapshot.jpg`` take ``?stream=NAME`` for that stream alone (without
it: the latest of any); the live page shows one stream (``/?stream=NAME``; the first by
default) with a link to each.

Every path answers HEAD as GET, without the body. A client has ``REQUEST_TIMEOUT`` seconds
for each read and write (a half-sent request or a viewer that stopped reading is closed), at
most ``MAX_CONNECTIONS`` are served at once (more are answered 503 and closed, with no
thread), and a client that goes away is a debug line, not a traceback.
``/snapshot.jpg`` is the frame after the request (encoded for it), or the last one within a
second when frames have stopped. The preview keeps ``preview_fps`` on average: each JPEG is
due one interval after the last one was due, not after it was made.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, Iterator, Optional, Tuple
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
    """One named stream's latest record, SSE event and feeds (named as the sink's own, so a
    request for one stream is served as the sink serves the latest of any)."""

    def __init__(self) -> None:
        self._latest = b'{"frame": null, "people": []}'
        self._feeds = {False: _Feed(), True: _Feed()}  # annotated, raw
        self._event = b""
        self._event_seq = 0
        self._snapshot_wanted = False
        self.event_clients = 0


REQUEST_TIMEOUT = 10.0  # seconds for each read or write of one client
MAX_CONNECTIONS = 32    # clients served at once (a thread each)
_STREAMS = {"/preview.mjpg": "multipart/x-mixed-replace; boundary=" + _BOUNDARY,  # HEAD: headers only
            "/events": "text/event-stream"}
_BUSY = b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _next_slot(last: float, now: float, interval: float) -> float:
    """When the JPEG made at ``now`` was due: one interval after the last was due (so the rate
    holds when frames come a little faster than it), or ``now`` after a pause."""
    due = last + interval
    return due if now - due < interval else now


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64  # listen backlog (5 by default: a burst of connections waited a second each)

    def __init__(self, *args, **kwargs) -> None:
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):  # full: say so and close, no thread
            try:
                request.settimeout(1.0)
                request.sendall(_BUSY)
                request.setblocking(False)
                request.recv(65536)  # what it sent, read: closing on unread data would reset the answer away
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout)):  # the client went away or stalled
            log.debug("http client %s: %s", client_address[0], exc)
        else:
            log.warning("http request from %s failed", client_address[0], exc_info=True)


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
        self._snapshot_wanted = False  # a /snapshot.jpg request waits for the next frame
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
        st: Optional[_Stream] = None
        if stream is not None:
            st = self._streams.get(stream)
            if st is None:
                with self._cond:
                    st = self._streams.setdefault(stream, _Stream())
        owners = [self] if st is None else [self, st]  # the latest of any stream, and this stream's own
        record = result.record()
        body = json.dumps(record, separators=(",", ":")).encode()
        event = b""
        if any(o.event_clients > 0 for o in owners):  # the live page's stream: only for someone watching
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
            # Encode only for someone watching, at most preview_fps (or, annotated, for
            # /snapshot.jpg: the first frame, and the frame after a request), for each feed
            # that wants it: the latest of any stream's, and this stream's own.
            wanting = []
            for owner in owners:
                feed = owner._feeds[raw]
                snapshot = not raw and (owner._snapshot_wanted or feed.jpeg is None)
                if snapshot or (feed.clients > 0 and now - feed.last_time >= self.preview_interval):
                    wanting.append(owner)
            if result.image is None or not wanting:
                continue
            img = result.image if raw else draw_poses(result.image, result.poses, result.skeleton)
            ok, enc = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                                   [int(cv2.IMWRITE_JPEG_QUALITY), self.jpeg_quality])
            if ok:
                jpegs[raw] = (enc.tobytes(), wanting)
                for owner in wanting:
                    feed = owner._feeds[raw]
                    # the next is due one interval after this one was due, not after it was made
                    feed.last_time = _next_slot(feed.last_time, now, self.preview_interval)
                    if not raw:
                        owner._snapshot_wanted = False
        with self._cond:
            for owner in owners:
                owner._latest = body
                if event:
                    owner._event = event
                    owner._event_seq += 1
            for raw, (jpeg, wanting) in jpegs.items():
                for owner in wanting:
                    owner._feeds[raw].jpeg = jpeg
                    owner._feeds[raw].seq += 1
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
            timeout = REQUEST_TIMEOUT  # each read and write (a socket timeout)
            head = False

            def log_message(self, fmt, *args) -> None:  # route to logging, not stderr per request
                log.debug("%s " + fmt, self.client_address[0], *args)

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if not self.head:
                    self.wfile.write(body)

            def do_HEAD(self) -> None:
                self.head = True
                ctype = _STREAMS.get(self.path.split("?")[0])
                if ctype is None:
                    self.do_GET()
                    return
                self.send_response(200)  # a stream: its headers, and no stream
                self.send_header("Content-Type", ctype)
                self.send_header("Cache-Control", "no-store")
                self.end_headers()

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                name = (parse_qs(query).get("stream") or [None])[0]
                src = sink  # the latest of any stream, or (?stream=NAME) that stream's own
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
                    with sink._cond:  # the frame after this request (at most a second's wait)
                        feed = src._feeds[False]
                        seq, src._snapshot_wanted = feed.seq, True
                        sink._cond.wait_for(lambda: sink._closing or feed.seq != seq, timeout=1.0)
                        jpeg = feed.jpeg
                    if jpeg is None:
                        self._send(503, b"no frame yet\n", "text/plain")
                    else:
                        self._send(200, jpeg, "image/jpeg")
                elif path == "/preview.mjpg":
                    self._stream("raw=1" in query.split("&"), src)
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _events(self, src) -> None:
                """Server-Sent Events: the skeleton, then the latest frame (of ``src``: any
                stream's, or one stream's) each time one comes."""
                seen, told = src._event_seq, False
                with self._streaming("/events", src, "event_clients"):
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

            def _stream(self, raw: bool, src) -> None:
                feed = src._feeds[raw]
                seen = -1
                with self._streaming("/preview.mjpg", feed, "clients"):
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

            @contextlib.contextmanager
            def _streaming(self, path: str, watched, counter: str) -> Iterator[None]:
                """The headers of the stream at ``path``, then its body (the with block), this
                viewer counted in ``watched.<counter>`` meanwhile (the frame side makes only what
                someone watches); a viewer that goes away ends it quietly."""
                self.send_response(200)
                self.send_header("Content-Type", _STREAMS[path])
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                with sink._cond:
                    setattr(watched, counter, getattr(watched, counter) + 1)
                try:
                    yield
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the page or the viewer went away
                finally:
                    with sink._cond:
                        setattr(watched, counter, getattr(watched, counter) - 1)

        return Handler
