"""A source that comes back: reopens its URI with exponential backoff when it fails or ends.

A live source (a camera, a stream) that fails or ends is *lost*: it is reopened with backoff,
each success after a loss counted as a reconnect. A finite source (a file, a folder, an
unpaced ``synthetic://``) that ends has simply been read to its end: with ``reopen_on_end``
it is opened again at once and read from the start, counted in ``reopened``, not as a
reconnect, and nothing is logged; only if it cannot be opened again is it lost.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, List, Optional

from .base import DEFAULT_RING, CorruptFrame, Frame, Source, SourceEnded, SourceError
from .registry import make_source

__all__ = ["ReconnectingSource"]

log = logging.getLogger("openpose_plus.sources")


class ReconnectingSource(Source):
    """Reopens ``uri`` with exponential backoff when it fails (and, if ``reopen_on_end``, when it ends).

    ``on_status(text)`` hears about losses and retries (the daemon puts it in STATUS=),
    ``heartbeat()`` is called on every attempt (the pipeline is alive while retrying).
    ``stop()`` interrupts a backoff sleep. Frame indices keep counting across reconnects.
    A URI that no provider can ever open (an unknown scheme or option) is a
    :class:`SourceError` here, at construction, not a retry loop later.
    :attr:`down` is true from its first failed attempt until it is connected again.
    """

    def __init__(self, uri: str, ring: int = DEFAULT_RING, min_delay: float = 0.5, max_delay: float = 30.0,
                 reopen_on_end: bool = True, max_attempts: Optional[int] = None,
                 on_status: Optional[Callable[[str], None]] = None,
                 heartbeat: Optional[Callable[[], None]] = None, prefer: str = "auto") -> None:
        super().__init__(uri, ring)
        if min_delay <= 0 or max_delay < min_delay:
            raise ValueError("reconnect delays must satisfy 0 < min (%r) <= max (%r)" % (min_delay, max_delay))
        self.min_delay, self.max_delay = float(min_delay), float(max_delay)
        self.reopen_on_end = reopen_on_end
        self.max_attempts = max_attempts
        self.on_status = on_status or (lambda text: None)
        self.heartbeat = heartbeat or (lambda: None)
        self.prefer = prefer
        # Made, not opened: checks the URI and says whether it is a camera or a file.
        self._live = bool(make_source(uri, self.ring.size, prefer).live)
        self.inner: Optional[Source] = None
        self.reconnects = 0   # opened again after a loss
        self.reopened = 0     # a finite source read again from its start
        self.delays: List[float] = []  # the backoff delays slept, for logs and tests
        self.connected = False
        self._was_open = False
        self.failures = 0  # failed attempts since it was last connected: > 0 and not connected is "down"
        self._stop = threading.Event()

    @property
    def live(self) -> bool:  # type: ignore[override]
        return self._live

    @property
    def down(self) -> bool:
        """Lost: not connected, and at least one attempt to reopen it has failed."""
        return not self.connected and self.failures > 0

    def stop(self) -> None:
        self._stop.set()

    def keep_in_flight(self, frames: int) -> None:
        """The ring is shared by every source it opens; one open now may size its own too."""
        super().keep_in_flight(frames)
        if self.inner is not None:
            self.inner.keep_in_flight(frames)

    def drop(self, frame: Frame) -> None:
        if self.inner is not None:
            self.inner.drop(frame)
        else:
            super().drop(frame)

    def open(self) -> "ReconnectingSource":
        self._connect()
        return self

    def _open_inner(self) -> None:
        self.inner = make_source(self.uri, self.ring.size, self.prefer).open()
        self.inner.ring = self.ring  # keep one ring across reconnects

    def _connect(self, why: str = "") -> None:
        delay = self.min_delay
        attempt = 0
        while not self._stop.is_set():
            attempt += 1
            self.heartbeat()
            try:
                self._open_inner()
                self.connected = True
                self.failures = 0
                if self._was_open:
                    self.reconnects += 1
                    self.on_status("source %s reconnected after %d attempt(s)" % (self.uri, attempt))
                    log.info("source %s reconnected", self.uri)
                elif attempt > 1:
                    self.on_status("source %s connected after %d attempt(s)" % (self.uri, attempt))
                    log.info("source %s connected", self.uri)
                self._was_open = True
                return
            except SourceError as exc:
                self.failures += 1
                if self.max_attempts is not None and attempt >= self.max_attempts:
                    raise
                msg = "%s; retry %d in %.1f s" % (exc, attempt, delay)
                self.on_status(("source lost (%s): " % why if why else "") + msg)
                log.warning("%s", msg)
                self.delays.append(delay)
                deadline = time.monotonic() + delay
                while not self._stop.is_set() and time.monotonic() < deadline:
                    self.heartbeat()  # retrying is alive: the daemon keeps its watchdog fed
                    self._stop.wait(min(1.0, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2.0, self.max_delay)
        raise SourceEnded("source %s: stopped while reconnecting" % self.uri)

    def read(self) -> Frame:
        while True:
            if self._stop.is_set():
                raise SourceEnded("source %s stopped" % self.uri)
            if self.inner is None:
                self._connect(why="not open" if self._was_open else "")
            try:
                frame = self.inner.read()  # type: ignore[union-attr]
            except CorruptFrame:
                raise
            except SourceEnded as exc:
                if not self.reopen_on_end:
                    raise
                if self.live:
                    self._drop(str(exc))  # a stream that ends has been lost
                else:
                    self._reopen(exc)     # a file or folder read to its end: from the start again
                continue
            except SourceError as exc:
                self._drop(str(exc))
                continue
            frame.index = self.index
            self.index += 1
            return frame

    def _reopen(self, end: SourceEnded) -> None:
        self.heartbeat()
        if self.inner is not None:
            self.inner.close()
            self.inner = None
        try:
            self._open_inner()
        except SourceError as exc:  # gone since (a folder emptied, a file removed): lost after all
            self._drop("%s; then %s" % (end, exc))
            return
        self.reopened += 1
        log.debug("source %s read again from its start (%s)", self.uri, end)

    def _drop(self, why: str) -> None:
        self.connected = False
        log.warning("source %s lost: %s", self.uri, why)
        if self.inner is not None:
            # Frames of the lost source may still be in flight: a source whose frames are its
            # own memory (jetson_utils) keeps that memory until they are let go.
            self.inner.close()
            self.inner = None
        self._connect(why=why)

    def close(self) -> None:
        self._stop.set()
        if self.inner is not None:
            self.inner.close()
            self.inner = None
