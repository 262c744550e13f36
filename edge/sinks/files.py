"""File-like sinks: OpenPose JSON per frame, JSON lines (stdout, file, UDP), annotated video.

Durability, per sink (none of them fsyncs per frame: that costs milliseconds on a Jetson's
eMMC, and the frame rate matters more than the last frames before a power cut):

* OpenPose JSON: each file is written whole or not at all (temp file + rename); a crash or
  a power cut loses at most the last frames, never half a file. One process writes a folder:
  it holds an ``flock`` on the folder itself (nothing is added among the outputs), and a
  second process is refused, named by its pid; within one process, sinks with different
  prefixes (streams) may share it.
* JSON lines: each record is one ``write(2)`` of the whole line; a write the disk cuts short
  is taken back (truncated), so the file holds whole records only and ``errors`` counts
  exactly the records not written. A torn last record (a power cut mid-write) is cut when
  the file is opened again.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import stat
import sys
import threading
from typing import Dict, List, Optional, Set, Tuple

from openpose_plus.edge.draw import draw_poses
from openpose_plus.edge.openpose_json import write_openpose_json
from .base import Result, Sink

try:
    import cv2
except ImportError:  # pragma: no cover
    cv2 = None  # type: ignore[assignment]

__all__ = ["OpenPoseJsonSink", "JsonLinesSink", "VideoSink", "udp_address", "flock_holder"]

log = logging.getLogger("openpose_plus.sinks")


def udp_address(target: str) -> Tuple[str, int]:
    """``udp://HOST:PORT`` as ``(host, port)`` (``[v6]`` brackets taken off); ValueError otherwise."""
    host, sep, port = target[len("udp://"):].rpartition(":")
    if not target.startswith("udp://") or not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError("jsonl sink: %r is not udp://HOST:PORT" % target)
    return host.strip("[]") or "127.0.0.1", int(port)


def flock_holder(path: str) -> str:
    """Who holds an ``flock`` on ``path`` ('process N', from /proc/locks), or '' if nobody does."""
    try:
        st = os.stat(path)
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    for line in lines:  # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5678 0 EOF" (a waiter has "->" before FLOCK)
        fields = line.split()
        at = fields.index("FLOCK") if "FLOCK" in fields else -1
        if at < 0 or len(fields) < at + 5 or fields[at + 4].count(":") != 2:
            continue
        major, minor, inode = fields[at + 4].split(":")
        if (int(inode), int(major, 16), int(minor, 16)) == (st.st_ino, os.major(st.st_dev), os.minor(st.st_dev)) \
                and "->" not in fields:
            return "process %s" % fields[at + 3]
    return ""


class _FolderLocks:
    """The folders this process writes OpenPose JSON into: one ``flock`` each, shared by the
    sinks of this process that write different prefixes there."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: Dict[Tuple[int, int], List] = {}  # (dev, inode) -> [fd, prefixes]

    def take(self, folder: str, prefix: str) -> Tuple[int, int]:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        with self._lock:
            held = self._held.get(key)
            if held is not None:
                os.close(fd)
                if prefix in held[1]:
                    raise OSError(errno.EBUSY, "openpose_json sink: %s is in use by another sink of this process "
                                               "with prefix %r" % (folder, prefix))
                held[1].add(prefix)
                return key
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                who = flock_holder(folder) or "another process"
                raise OSError(errno.EBUSY, "openpose_json sink: %s is in use by %s (one process writes a folder)"
                              % (folder, who)) from None
            self._held[key] = [fd, {prefix}]
            return key

    def give(self, key: Tuple[int, int], prefix: str) -> None:
        with self._lock:
            held = self._held.get(key)
            if held is None:
                return
            prefixes: Set[str] = held[1]
            prefixes.discard(prefix)
            if not prefixes:
                os.close(held[0])  # closing the descriptor releases the flock
                del self._held[key]


_FOLDERS = _FolderLocks()


class OpenPoseJsonSink(Sink):
    """``<dir>/<prefix><frame:012d>_keypoints.json`` per frame, as OpenPose ``--write_json``.

    Files are named by the frame number the pipeline gives (the same as JSON lines and
    ``/poses``); the pipeline starts numbering after the files already here. Used on its own,
    a sink shifts its numbers past them, so nothing is ever overwritten."""

    name = "openpose_json"

    def __init__(self, directory: str, prefix: str = "") -> None:
        self.directory = directory
        self.prefix = prefix
        self.written = 0
        self.offset = 0
        self._shift: Optional[int] = None
        self._lock_key: Optional[Tuple[int, int]] = None

    def _make_folder(self) -> None:
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as exc:
            raise OSError(exc.errno, "openpose_json sink: cannot create %s: %s"
                          % (self.directory, exc.strerror or exc)) from None

    def _lock(self) -> None:
        """One writer per folder: two daemons would overwrite each other's files."""
        key = _FOLDERS.take(self.directory, self.prefix)
        self._unlock()
        self._lock_key = key

    def _unlock(self) -> None:
        if self._lock_key is not None:
            _FOLDERS.give(self._lock_key, self.prefix)
            self._lock_key = None

    def open(self) -> None:
        self._make_folder()
        self._lock()
        # A restart into the same folder numbers on after the files already there, never over them.
        self.offset = 0
        self._shift = None
        head, tail = self.prefix, "_keypoints.json"
        for entry in os.scandir(self.directory):
            name = entry.name
            number = name[len(head):-len(tail)] if name.startswith(head) and name.endswith(tail) else ""
            if number.isdigit():
                self.offset = max(self.offset, int(number) + 1)

    def next_frame(self, stream: Optional[str] = None) -> int:
        return self.offset  # its folder is one stream's

    def handle(self, result: Result) -> None:
        if self._shift is None:  # a pipeline numbers from offset on already: no shift
            self._shift = max(0, self.offset - result.index)
        write_openpose_json(self.directory, result.index + self._shift, result.poses, self.prefix)
        self.written += 1

    def recover(self) -> bool:
        if os.path.isdir(self.directory):
            return False  # there, but not writable or full: nothing to repair from here
        self._make_folder()
        self._lock()
        log.warning("openpose_json sink: %s was removed; made it again", self.directory)
        return True

    def close(self) -> None:
        self._unlock()


_TAIL = 1 << 20  # how far back from the end a torn record or the last frame number is looked for


class JsonLinesSink(Sink):
    """One JSON object per frame, to ``-`` (stdout), a file (appended), or ``udp://host:port``.

    To a file: whole records only (see the module's notes); a restart appends after the last
    whole record and numbers frames on after it."""

    name = "jsonl"

    def __init__(self, target: str = "-", flush_every: int = 1) -> None:
        self.target = target
        self.flush_every = max(1, int(flush_every))  # stdout only: a file gets each record as it comes
        self._file = None
        self._fd: Optional[int] = None
        self._sock: Optional[socket.socket] = None
        self._addr = None
        self._pending = 0
        self._next: Dict[Optional[str], int] = {}  # by stream: the number after its last record in the file

    def open(self) -> None:
        if self.target == "-":
            self._file = sys.stdout
        elif self.target.startswith("udp://"):
            self._addr = udp_address(self.target)
            family = socket.AF_INET6 if ":" in self._addr[0] else socket.AF_INET
            self._sock = socket.socket(family, socket.SOCK_DGRAM)
        else:
            self._open_file()

    def _open_file(self) -> None:
        parent = os.path.dirname(os.path.abspath(self.target))
        try:
            os.makedirs(parent, exist_ok=True)
            fd = os.open(self.target, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as exc:
            raise OSError(exc.errno, "jsonl sink: cannot open %s: %s" % (self.target, exc.strerror or exc)) from None
        try:
            self._next = self._cut_torn_tail(fd)
        except OSError:
            os.close(fd)
            raise
        self._fd = fd

    def _cut_torn_tail(self, fd: int) -> Dict[Optional[str], int]:
        """Cut a last record with no newline (a crash mid-write); each stream's frame number
        after its last record in the file's last MiB (the key None: records with no stream)."""
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return {}  # a pipe or a device: nothing to look back at
        size = st.st_size
        start = max(0, size - _TAIL)
        tail = os.pread(fd, size - start, start)
        end = tail.rfind(b"\n") + 1  # just after the last whole record (0: none in the tail)
        if end < len(tail) and (end > 0 or start == 0):
            os.ftruncate(fd, start + end)
            log.warning("jsonl sink: %s ended in a torn record (%d bytes with no newline: a crash or a full disk "
                        "while writing); cut it", self.target, len(tail) - end)
        lines = tail[:end].split(b"\n")
        if start > 0:
            lines = lines[1:]  # the tail starts inside a record
        out: Dict[Optional[str], int] = {}
        for line in lines:
            try:
                record = json.loads(line)
                frame, stream = record["frame"], record.get("stream")
            except (ValueError, TypeError, KeyError, AttributeError):
                continue  # not a record of ours: numbers on from the others
            if isinstance(frame, int) and not isinstance(frame, bool) and frame >= 0 and (
                    stream is None or isinstance(stream, str)):
                out[stream] = max(out.get(stream, 0), frame + 1)
        return out

    def next_frame(self, stream: Optional[str] = None) -> int:
        # Records with no stream field (written before streams had names) count for every stream.
        if stream is None:
            return max(self._next.values(), default=0)
        return max(self._next.get(stream, 0), self._next.get(None, 0))

    def _write(self, data: bytes) -> None:
        """All of ``data`` at the end of the file, or none of it (a short write is taken back)."""
        assert self._fd is not None
        try:
            n = os.write(self._fd, data)
        except OSError as exc:
            raise OSError(exc.errno, "jsonl sink: cannot write %s: %s" % (self.target, exc.strerror or exc)) from None
        if n != len(data):
            os.ftruncate(self._fd, os.fstat(self._fd).st_size - n)
            raise OSError(errno.ENOSPC, "jsonl sink: cannot write %s: the disk took %d of %d bytes (full?); "
                                        "record not written" % (self.target, n, len(data)))

    def handle(self, result: Result) -> None:
        line = json.dumps(result.record(), separators=(",", ":"))
        if self._sock is not None:
            self._sock.sendto(line.encode(), self._addr)
            return
        if self._fd is not None:
            self._write((line + "\n").encode())
            return
        assert self._file is not None
        self._file.write(line + "\n")
        self._pending += 1
        if self._pending >= self.flush_every:
            self._file.flush()
            self._pending = 0

    def recover(self) -> bool:
        if self._fd is None:
            return False
        try:
            removed = os.fstat(self._fd).st_nlink == 0
        except OSError:
            removed = True
        if not removed and os.path.exists(self.target):
            return False  # there, but not writable or full: nothing to repair from here
        os.close(self._fd)
        self._fd = None
        self._open_file()  # its folder made again, the file started again
        log.warning("jsonl sink: %s was removed; started it again", self.target)
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._file is not None:
            self._file.flush()
            self._file = None


def _unused_name(path: str) -> str:
    stem, ext = os.path.splitext(path)
    n = 0
    while os.path.exists(path):
        n += 1
        path = "%s-%d%s" % (stem, n, ext)
    return path


class VideoSink(Sink):
    """Frames with skeletons drawn, into a video file (``cv2.VideoWriter``; fourcc from the suffix)."""

    name = "video"
    needs_image = True

    def __init__(self, path: str, fps: float = 30.0, fourcc: Optional[str] = None) -> None:
        if cv2 is None:  # pragma: no cover
            raise ImportError("the video sink needs OpenCV (pip install opencv-python-headless)")
        if fps <= 0:
            raise ValueError("video sink fps must be positive, got %r" % fps)
        self.path = path
        self.fps = float(fps)
        ext = os.path.splitext(path)[1].lower()
        self.fourcc = fourcc or {".avi": "MJPG", ".mkv": "MJPG"}.get(ext, "mp4v")
        self.writer = None
        self.size = None
        self.frames = 0

    def open(self) -> None:
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)

    def handle(self, result: Result) -> None:
        img = result.image
        if img is None:
            return
        size = (img.shape[1], img.shape[0])
        if self.writer is None:
            self.path = _unused_name(self.path)  # a restart never overwrites an earlier video
            self.writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*self.fourcc), self.fps, size)
            if not self.writer.isOpened():
                self.writer = None
                raise OSError("video sink: OpenCV cannot write %s with codec %s" % (self.path, self.fourcc))
            self.size = size
        elif size != self.size:
            raise ValueError("video sink: frame %d is %dx%d, the video is %dx%d"
                             % (result.index, size[0], size[1], self.size[0], self.size[1]))
        draw_poses(img, result.poses, result.skeleton)  # img is this sink's own copy
        cv2.cvtColor(img, cv2.COLOR_RGB2BGR, dst=img)
        self.writer.write(img)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
