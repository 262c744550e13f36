"""systemd's notify protocol (sd_notify) over ``$NOTIFY_SOCKET``, without libsystemd.

A datagram per message to the socket systemd names (a path, or ``@name`` for the
abstract namespace). ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``, when set, must be us) says
how often systemd wants ``WATCHDOG=1``; :meth:`Notifier.watchdog_interval` is half of it,
as sd_watchdog_enabled(3) advises. Outside systemd every call is a no-op.
"""
from __future__ import annotations

import os
import socket
import time
from typing import Optional

__all__ = ["Notifier"]


class Notifier:
    def __init__(self, address: Optional[str] = None, watchdog_usec: Optional[int] = None) -> None:
        env = os.environ
        self.address = address if address is not None else env.get("NOTIFY_SOCKET", "")
        if watchdog_usec is None:
            watchdog_usec = 0
            pid = env.get("WATCHDOG_PID")
            if env.get("WATCHDOG_USEC") and (not pid or pid == str(os.getpid())):
                try:
                    watchdog_usec = int(env["WATCHDOG_USEC"])
                except ValueError:
                    watchdog_usec = 0
        self.watchdog_usec = max(0, int(watchdog_usec))
        self._sock: Optional[socket.socket] = None
        self.sent = 0

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def watchdog_interval(self) -> Optional[float]:
        """Seconds between WATCHDOG=1 pings (half the timeout), or None if systemd wants none."""
        return self.watchdog_usec / 2e6 if self.watchdog_usec else None

    def _target(self):
        addr = self.address
        if addr.startswith("@"):
            return "\0" + addr[1:]  # abstract namespace
        return addr

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` lines as one datagram; False when not under systemd or on failure."""
        if not self.address:
            return False
        msg = "\n".join(fields).encode("utf-8", "replace")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 16)
            self._sock.sendto(msg, self._target())
        except OSError:
            return False  # systemd went away; nothing useful to do about it
        self.sent += 1
        return True

    def ready(self, status: Optional[str] = None) -> bool:
        return self.notify("READY=1", *(["STATUS=" + status] if status else []))

    def status(self, text: str) -> bool:
        return self.notify("STATUS=" + text.replace("\n", " "))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: Optional[str] = None) -> bool:
        return self.notify("STOPPING=1", *(["STATUS=" + status] if status else []))

    def reloading(self) -> bool:
        # Type=notify-reload (systemd 253+) wants the monotonic time of the reload with it.
        usec = int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)
        return self.notify("RELOADING=1", "MONOTONIC_USEC=%d" % usec)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
