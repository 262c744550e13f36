"""A small progress printer: ``step 120/1000 [####----] 12% loss 0.1234 42.1 samples/s eta 0:21``.

On a terminal it redraws one line; into a file or a pipe it prints a line every
``every`` updates, so CI logs and TensorBoard-less runs stay readable. Only the caller
decides who prints (under Horovod, rank 0 alone makes one).
"""
from __future__ import annotations

import sys
import time
from typing import Dict, Optional, TextIO

__all__ = ["Progress", "format_duration"]


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return "%d:%02d:%02d" % (h, m, s) if h else "%d:%02d" % (m, s)


class Progress(object):
    def __init__(self, total: int, start: int = 0, label: str = "step", width: int = 24,
                 stream: Optional[TextIO] = None, every: int = 1, clock=time.monotonic) -> None:
        self.total, self.done, self.label, self.width = int(total), int(start), label, width
        self.stream = stream if stream is not None else sys.stderr
        self.every = max(1, int(every))
        self.clock = clock
        self._first = start
        self._t0 = clock()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._updates = 0
        self.last_line = ""

    def rate(self) -> float:
        """Steps per second since the start."""
        elapsed = self.clock() - self._t0
        return (self.done - self._first) / elapsed if elapsed > 0 else 0.0

    def line(self, values: Dict[str, float]) -> str:
        frac = min(1.0, self.done / self.total) if self.total else 1.0
        filled = int(round(frac * self.width))
        rate = self.rate()
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        text = " ".join("%s %s" % (k, _fmt(v)) for k, v in values.items())
        return "%s %d/%d [%s%s] %3d%% %s eta %s" % (self.label, self.done, self.total, "#" * filled,
                                                  "-" * (self.width - filled), int(frac * 100), text,
                                                  format_duration(eta))

    def update(self, done: int, **values: float) -> None:
        self.done = int(done)
        self._updates += 1
        final = self.done >= self.total
        if not (self._tty or final or self._updates % self.every == 0):
            return
        self.last_line = self.line(values)
        if self._tty:
            self.stream.write("\r\x1b[K" + self.last_line + ("\n" if final else ""))
        else:
            self.stream.write(self.last_line + "\n")
        self.stream.flush()


def _fmt(v: float) -> str:
    if isinstance(v, float):
        return "%.4g" % v if abs(v) < 1e4 else "%.0f" % v
    return str(v)
