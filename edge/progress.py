"""The one progress line of the project: downloads, datasets, training, evaluation, calibration, ``run``.

    step 120/1000 [##----------------------]  12% loss 0.1234 samples_s 42.1 eta 0:21
    train2017.zip 1.2 GB/19.3 GB [#-----------------------]   6% 41.3 MB/s eta 7:18
    512 frames people 3 29.8 frames/s

On a terminal it redraws one line, at most every ``interval`` seconds; into a file or a pipe (logs,
CI) it prints a line each time the count has gone ``every`` further (default: a tenth of the total).
The end of the total is always shown. Standard library only, Python 3.8 (the edge uses it too).
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Dict, Optional, TextIO

__all__ = ["Progress", "format_duration"]


def format_duration(seconds: float) -> str:
    """``1:05``, or ``1:02:05`` from an hour on."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return "%d:%02d:%02d" % (h, m, s) if h else "%d:%02d" % (m, s)


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return ("%.0f %s" if unit == "B" else "%.1f %s") % (n, unit)
        n /= 1000.0
    return "%.1f TB" % n


def _value(v: object) -> str:
    if isinstance(v, float):
        return "%.4g" % v if abs(v) < 1e4 else "%.0f" % v
    return str(v)


class Progress:
    """``label done/total unit [bar] pct% name value ... rate eta``; a part with nothing to show is left out.

    ``unit="B"`` counts bytes (``12.0 MB/27.0 MB ... 3.1 MB/s``); another unit follows the count and
    names the rate (``12/27 files ... 3.1 files/s``); without a unit no rate is shown. Without a total
    there is no bar and no ETA. ``update(done, **values)`` sets the count and the named values shown
    with it, ``advance(n)`` adds to the count, ``close()`` shows the last count and ends the line.
    """

    def __init__(self, total: Optional[float] = None, start: float = 0, label: str = "", unit: str = "",
                 every: Optional[float] = None, interval: float = 0.1, enabled: bool = True,
                 stream: Optional[TextIO] = None, width: int = 24,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.done, self.label, self.unit, self.width = total, start, label, unit, width
        self.every = every or (total / 10.0 if total else None)
        self.interval, self.enabled, self.clock = interval, enabled, clock
        self.stream = stream if stream is not None else sys.stderr
        self.values: Dict[str, object] = {}
        self.last_line = ""
        self._start, self._t0, self._last = start, clock(), float("-inf")
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._next = start + self.every if self.every else float("inf")
        self._shown: Optional[float] = None  # the count last shown
        self._open = False  # a redrawn line not ended yet

    def rate(self) -> float:
        """Units per second since the start."""
        elapsed = self.clock() - self._t0
        return (self.done - self._start) / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        count = _bytes if self.unit == "B" else (lambda n: "%d" % n)
        rate = self.rate()
        parts = [self.label, count(self.done) + ("/" + count(self.total) if self.total else "")
                 + (" " + self.unit if self.unit not in ("", "B") else "")]
        if self.total:
            frac = min(1.0, self.done / self.total)
            filled = int(frac * self.width)
            parts.append("[%s%s] %3d%%" % ("#" * filled, "-" * (self.width - filled), frac * 100))
        parts += ["%s %s" % (k, _value(v)) for k, v in self.values.items()]
        if self.unit:
            parts.append(_bytes(rate) + "/s" if self.unit == "B" else "%.1f %s/s" % (rate, self.unit))
        if self.total:
            parts.append("eta " + format_duration((self.total - self.done) / rate if rate > 0 else 0))
        return " ".join(p for p in parts if p)

    def update(self, done: float, **values: object) -> None:
        self.done = done
        self.values.update(values)
        if not self.enabled or self._shown == done:
            return
        if self._final() or (self.clock() - self._last >= self.interval if self._tty else done >= self._next):
            self._show()

    def advance(self, n: float = 1, **values: object) -> None:
        self.update(self.done + n, **values)

    def close(self) -> None:
        if self.enabled and self._shown != self.done:
            self._show()
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False

    def _final(self) -> bool:
        return bool(self.total) and self.done >= self.total

    def _show(self) -> None:
        self.last_line = self.line()
        self._shown, self._last = self.done, self.clock()
        self._next = self.done + self.every if self.every else float("inf")
        if self._tty:
            self._open = not self._final()
            self.stream.write("\r\x1b[K" + self.last_line + ("" if self._open else "\n"))
        else:
            self.stream.write(self.last_line + "\n")
        self.stream.flush()
