"""Write a file so that readers see the old one or the whole new one, never half of it.

Durability is the caller's choice: ``durable=True`` fsyncs the file and its folder, so the
new file survives a power cut (the engine cache and the download ledger: losing them costs
minutes); per-frame outputs (OpenPose JSON) skip it, because an fsync per frame costs
milliseconds on a Jetson's eMMC, and a power cut then loses at most the last frames, never
half a file. The file gets the mode an ordinary ``open`` would give it (0666 less the
process umask: a unit's ``UMask=0027`` makes it group-readable), not mkstemp's 0600.
"""
from __future__ import annotations

import os
import tempfile
from typing import Union

__all__ = ["write_atomic"]


def _umask() -> int:
    try:  # Linux >= 4.7 says it without changing it (os.umask would, for every thread)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Union[str, "os.PathLike[str]"], data: Union[bytes, str], durable: bool = False) -> str:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``
    (a rename within one directory is atomic); on any failure nothing is left behind.

    An error names ``path`` (never the temporary file's random name, so that the same
    failure reads the same each time it happens)."""
    path = os.fspath(path)
    blob = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    folder = os.path.dirname(path) or "."
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".partial-")
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            f.write(blob)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        if durable:
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except OSError as exc:
        raise OSError(exc.errno, "cannot write %s: %s" % (path, exc.strerror or exc)) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return path
