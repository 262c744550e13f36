"""The HTTP endpoint: latest poses, an MJPEG preview with skeletons, health, Prometheus metrics.

Standard-library ``ThreadingHTTPServer`` (one thread per client, so a preview viewer never
blocks a scrape) on a configurable address, 127.0.0.1 by default. Metrics come from a
``prometheus_client`` registry passed in, rendered by ``prometheus_client`` itself.

    /          a small index page        /poses          latest poses as JSON
    /preview.mjpg  multipart JPEG stream  /snapshot.jpg   the latest annotated frame
    /healthz   200 "ok" / 503 and why     /metrics        Prometheus text format

With several streams each result carries its stream's name: ``/poses``, ``/preview.mjpg`` and
``/snapshot.jpg`` take ``?stream=NAME`` for one stream's (without it: the latest of any), the
index page shows a preview per stream, and ``/streams`` lists the names seen.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, Optional, Tuple
from urllib.parse import parse_qs, quote

from openpose_plus.edge.draw import draw_poses
from .base import Result, Sink

try:
    import cv2
except ImportError:  # pragma: no cover
    cv2 = None  # type: ignore[assignment]

__all__ = ["HttpSink"]

log = logging.getLogger("openpose_plus.sinks.http")
_BOUNDARY = "openposeplusframe"
_INDEX = (b"<!doctype html><title>openpose-plus</title><h1>openpose-plus</h1>"
          b"<p><a href='/poses'>/poses</a> <a href='/healthz'>/healthz</a> <a href='/metrics'>/metrics</a></p>"
          b"<img src='/preview.mjpg'>")


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
        self._jpeg: Optional[bytes] = None
        self._jpeg_seq = 0
        self._last_jpeg_time = 0.0
        # per stream (several streams): the latest record and preview of each, by name
        self._latest_by: Dict[str, bytes] = {}
        self._jpeg_by: Dict[str, bytes] = {}
        self._jpeg_seq_by: Dict[str, int] = {}
        self._jpeg_time_by: Dict[str, float] = {}
        self._cond = threading.Condition()
        self._closing = False
        self.clients = 0
        self.server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

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
        if stream is not None:
            return self._handle_stream(result, stream)
        body = json.dumps(result.record(), separators=(",", ":")).encode()
        now = time.monotonic()
        jpeg = None
        # Encode only for someone watching (or the first frame, for /snapshot.jpg), at most preview_fps.
        if result.image is not None and (self.clients > 0 or self._jpeg is None) \
                and now - self._last_jpeg_time >= self.preview_interval:
            img = draw_poses(result.image, result.poses, result.skeleton)
            ok, enc = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                                   [int(cv2.IMWRITE_JPEG_QUALITY), self.jpeg_quality])
            if ok:
                jpeg = enc.tobytes()
                self._last_jpeg_time = now
        with self._cond:
            self._latest = body
            if jpeg is not None:
                self._jpeg = jpeg
                self._jpeg_seq += 1
            self._cond.notify_all()

    def _encode(self, result: Result) -> Optional[bytes]:
        img = draw_poses(result.image, result.poses, result.skeleton)
        ok, enc = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                               [int(cv2.IMWRITE_JPEG_QUALITY), self.jpeg_quality])
        return enc.tobytes() if ok else None

    def _handle_stream(self, result: Result, stream: str) -> None:
        """A result of a named stream: the latest overall and that stream's own; its preview
        at most preview_fps, and only while someone watches (or for its first snapshot)."""
        body = json.dumps(result.record(), separators=(",", ":")).encode()
        now = time.monotonic()
        jpeg = None
        if result.image is not None and (self.clients > 0 or stream not in self._jpeg_by) \
                and now - self._jpeg_time_by.get(stream, 0.0) >= self.preview_interval:
            jpeg = self._encode(result)
            if jpeg is not None:
                self._jpeg_time_by[stream] = now
        with self._cond:
            self._latest = self._latest_by[stream] = body
            if jpeg is not None:
                self._jpeg = self._jpeg_by[stream] = jpeg
                self._jpeg_seq += 1
                self._jpeg_seq_by[stream] = self._jpeg_seq_by.get(stream, 0) + 1
            self._cond.notify_all()

    def _index(self) -> bytes:
        with self._cond:
            names = sorted(self._latest_by)
        if not names:
            return _INDEX
        parts = [b"<!doctype html><title>openpose-plus</title><h1>openpose-plus</h1>"
                 b"<p><a href='/poses'>/poses</a> <a href='/streams'>/streams</a> <a href='/healthz'>/healthz</a> "
                 b"<a href='/metrics'>/metrics</a></p>"]
        for name in names:
            q = quote(name)
            parts.append(("<figure style='display:inline-block'><figcaption>%s (<a href='/poses?stream=%s'>poses"
                          "</a>)</figcaption><img src='/preview.mjpg?stream=%s'></figure>" % (name, q, q)).encode())
        return b"".join(parts)

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
                stream = (parse_qs(query).get("stream") or [None])[0]
                if stream is not None and path in ("/poses", "/snapshot.jpg", "/preview.mjpg"):
                    return self._one_stream(path, stream)
                if path == "/":
                    self._send(200, sink._index(), "text/html; charset=utf-8")
                elif path == "/streams":
                    with sink._cond:
                        names = sorted(sink._latest_by)
                    self._send(200, json.dumps({"streams": names}).encode(), "application/json")
                elif path == "/poses":
                    with sink._cond:
                        body = sink._latest
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
                        jpeg = sink._jpeg
                    if jpeg is None:
                        self._send(503, b"no frame yet\n", "text/plain")
                    else:
                        self._send(200, jpeg, "image/jpeg")
                elif path == "/preview.mjpg":
                    self._stream()
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _one_stream(self, path: str, stream: str) -> None:
                with sink._cond:
                    known = stream in sink._latest_by
                    body, jpeg = sink._latest_by.get(stream), sink._jpeg_by.get(stream)
                if not known:
                    self._send(404, ("no stream %r (yet)\n" % stream).encode(), "text/plain; charset=utf-8")
                elif path == "/poses":
                    self._send(200, body, "application/json")  # type: ignore[arg-type]
                elif path == "/snapshot.jpg":
                    if jpeg is None:
                        self._send(503, b"no frame yet\n", "text/plain")
                    else:
                        self._send(200, jpeg, "image/jpeg")
                else:
                    self._stream(stream)

            def _stream(self, stream: Optional[str] = None) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=" + _BOUNDARY)
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                seen = -1
                with sink._cond:
                    sink.clients += 1
                try:
                    while True:
                        with sink._cond:
                            if stream is None:
                                sink._cond.wait_for(lambda: sink._closing or sink._jpeg_seq != seen, timeout=5.0)
                                if sink._closing:
                                    return
                                jpeg, seen = sink._jpeg, sink._jpeg_seq
                            else:  # one stream's frames only
                                sink._cond.wait_for(lambda: sink._closing or sink._jpeg_seq_by.get(stream, 0) != seen,
                                                    timeout=5.0)
                                if sink._closing:
                                    return
                                jpeg, seen = sink._jpeg_by.get(stream), sink._jpeg_seq_by.get(stream, 0)
                        if jpeg is None:
                            continue
                        self.wfile.write(("--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                          % (_BOUNDARY, len(jpeg))).encode() + jpeg + b"\r\n")
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the viewer went away
                finally:
                    with sink._cond:
                        sink.clients -= 1

        return Handler
