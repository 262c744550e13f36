"""Can this config's outputs work on this machine, now? Asked by ``serve --check`` and before a reload.

A config can be valid and still not run here: a JSON folder that cannot be made, a ``udp://``
host that does not resolve, an HTTP address that is not on this machine, a port or a folder
another process holds. :func:`preflight` finds those without changing anything (no folder is
made, no file is written, no lock taken: /proc/locks says who holds a folder; a socket is
bound and closed at once).

``held`` names what the running daemon holds itself (:func:`resources`): a reload into the
same port or folder is not "in use". With ``strict=False`` (``--check``, which an operator
runs while the service is up) "in use" is a warning: the holder may be the service itself.
"""
from __future__ import annotations

import errno
import os
import socket
from typing import FrozenSet, List, Tuple

from openpose_plus.edge.sinks.files import flock_holder, udp_address

from .config import EdgeConfig

__all__ = ["preflight", "resources"]

Resource = Tuple[str, ...]


def json_folders(cfg: EdgeConfig) -> List[str]:
    """The OpenPose JSON folders ``cfg`` writes: the one folder, or (``[[sources]]``) one per stream in it."""
    folder = cfg.sinks.openpose_json.directory
    if not folder:
        return []
    if not cfg.multi_stream:
        return [folder]
    return [os.path.join(folder, st.name) for st in cfg.streams()]


def resources(cfg: EdgeConfig) -> FrozenSet[Resource]:
    """What a daemon running ``cfg`` holds: its HTTP port, its JSON folder(s)."""
    s = cfg.sinks
    out = set()
    if s.http.enabled:
        out.add(("http", str(s.http.port)))
    for folder in json_folders(cfg):
        out.add(("json", os.path.realpath(folder)))
    return frozenset(out)


def _creatable(path: str) -> str:
    """'' if a folder ``path`` exists and is writable or can be made, else why not."""
    probe = os.path.abspath(path)
    while not os.path.lexists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        return "cannot create %s: %s is not a folder" % (path, probe)
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "cannot write in %s" % path if probe == os.path.abspath(path) else "cannot create %s" % path
        return "%s: %s is not writable" % (what, probe)
    return ""


def _bind_problem(address: str, port: int) -> Tuple[str, bool]:
    """(why ``address:port`` cannot be listened on, whether only because it is in use); ('', False) if it can."""
    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return "cannot resolve %r: %s" % (address, exc.strerror or exc), False
    family, kind, proto, _, where = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the HTTP sink binds
        try:
            s.bind(where)
        except OSError as exc:
            return ("cannot listen on %s:%d: %s" % (address, port, exc.strerror or exc),
                    exc.errno == errno.EADDRINUSE)
    return "", False


def preflight(cfg: EdgeConfig, held: FrozenSet[Resource] = frozenset(),
              strict: bool = True) -> Tuple[List[str], List[str]]:
    """``(errors, warnings)`` for ``cfg``'s outputs here; each message starts with its key."""
    errors: List[str] = []
    warnings: List[str] = []
    s = cfg.sinks
    for folder in json_folders(cfg):
        problem = _creatable(folder)
        if problem:
            errors.append("sinks.openpose_json.directory: " + problem)
        elif ("json", os.path.realpath(folder)) not in held:
            holder = flock_holder(folder) if os.path.isdir(folder) else ""
            if holder and holder != "process %d" % os.getpid():
                msg = "sinks.openpose_json.directory: %s is in use by %s" % (folder, holder)
                (errors if strict else warnings).append(msg + ("" if strict else " (the running service?)"))
    target = s.jsonl.target
    if target.startswith("udp://"):
        try:
            host, port = udp_address(target)
            socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except ValueError as exc:
            errors.append("sinks.jsonl.target: %s" % (exc,))
        except socket.gaierror as exc:
            errors.append("sinks.jsonl.target: cannot resolve %s: %s" % (target, exc.strerror or exc))
    elif target and target != "-":
        if os.path.isdir(target):
            errors.append("sinks.jsonl.target: %s is a folder" % target)
        elif os.path.exists(target):
            if not os.access(target, os.W_OK):
                errors.append("sinks.jsonl.target: %s is not writable" % target)
        else:
            problem = _creatable(os.path.dirname(os.path.abspath(target)))
            if problem:
                errors.append("sinks.jsonl.target: " + problem)
    if s.video.path:
        problem = _creatable(os.path.dirname(os.path.abspath(s.video.path)))
        if problem:
            errors.append("sinks.video.path: " + problem)
    if s.mqtt.host:  # the broker itself may come and go (the sink reconnects); its files must be here
        for key in ("password_file", "tls_ca", "tls_cert", "tls_key"):
            path = getattr(s.mqtt, key)
            if path and not os.access(path, os.R_OK):
                errors.append("sinks.mqtt.%s: cannot read %s" % (key, path))
    if s.http.enabled:
        problem, in_use = _bind_problem(s.http.address, s.http.port)
        if problem and in_use and ("http", str(s.http.port)) in held:
            problem = ""  # our own port (the address may change): free once the old pipeline stops
        if problem:
            if in_use and not strict:
                warnings.append("sinks.http.port: %s (the running service?)" % problem)
            else:
                errors.append("sinks.http.address: " + problem)
    return errors, warnings
