"""Write a file so that readers see the old one or the whole new one, never half of it."""
from __future__ import annotations

import os
import tempfile
from typing import Union

__all__ = ["write_atomic"]


def write_atomic(path: Union[str, "os.PathLike[str]"], data: Union[bytes, str]) -> str:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``
    (a rename within one directory is atomic); on any failure nothing is left behind."""
    path = os.fspath(path)
    blob = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".partial-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
