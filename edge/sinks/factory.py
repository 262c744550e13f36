"""Sinks from their config: the one place ``openpose-plus run`` and the daemon build them.

The daemon reads :class:`SinksConfig` from the ``[sinks.*]`` tables of its config file;
``run`` fills the same dataclass from its flags (:func:`sinks_config`). Either way
:func:`build_sinks` makes the sinks, in one order: OpenPose JSON, JSON lines, video, HTTP.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple

from openpose_plus.edge.configfile import between, option, section

from .base import Sink

__all__ = ["SinksConfig", "OpenPoseJsonConfig", "JsonLinesConfig", "VideoConfig", "HttpConfig",
           "build_sinks", "sinks_config", "parse_address"]


def _file_prefix(v: str) -> Optional[str]:
    if "/" in v or "\0" in v or v.startswith("."):
        return "must be a plain file-name prefix (no '/', not starting with '.'), got %r" % (v,)
    return None


@dataclass
class OpenPoseJsonConfig:
    directory: str = option("", doc="one OpenPose JSON per frame into this folder ('': off)")
    prefix: str = option("", _file_prefix, "file names start with it (a stream's name, e.g. cam0_)")


@dataclass
class JsonLinesConfig:
    target: str = option("", doc="\"-\" (stdout), a file, or udp://host:port ('': off)")


@dataclass
class VideoConfig:
    path: str = option("", doc="annotated video file ('': off)")
    fps: float = option(30.0, between(0.1, 1000))


@dataclass
class HttpConfig:
    enabled: bool = False
    address: str = "127.0.0.1"
    port: int = option(8080, between(0, 65535))
    preview_fps: float = option(10.0, between(0.1, 120))


@dataclass
class SinksConfig:
    openpose_json: OpenPoseJsonConfig = section(OpenPoseJsonConfig)
    jsonl: JsonLinesConfig = section(JsonLinesConfig)
    video: VideoConfig = section(VideoConfig)
    http: HttpConfig = section(HttpConfig)


def parse_address(text: str) -> Tuple[str, int]:
    """``ADDR:PORT`` (or ``:PORT`` for 127.0.0.1) as ``(address, port)``; ValueError otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError("an HTTP address is ADDR:PORT, got %r" % (text,))
    return host or "127.0.0.1", int(port)


def sinks_config(write_json: Optional[str] = None, jsonl: Optional[str] = None, video: Optional[str] = None,
                 fps: float = 30.0, http: Optional[str] = None) -> SinksConfig:
    """The config of the sinks ``run``'s flags ask for (``http`` is ``ADDR:PORT``)."""
    cfg = SinksConfig(OpenPoseJsonConfig(write_json or ""), JsonLinesConfig(jsonl or ""), VideoConfig(video or "", fps))
    if http:
        address, port = parse_address(http)
        cfg.http = HttpConfig(True, address, port)
    return cfg


def build_sinks(cfg: SinksConfig, registry: Any = None,
                health: Optional[Callable[[], Tuple[bool, str]]] = None) -> List[Sink]:
    """The sinks ``cfg`` turns on; ``registry`` (Prometheus) and ``health`` feed the HTTP endpoint."""
    from . import JsonLinesSink, OpenPoseJsonSink, VideoSink

    sinks: List[Sink] = []
    if cfg.openpose_json.directory:
        sinks.append(OpenPoseJsonSink(cfg.openpose_json.directory, cfg.openpose_json.prefix))
    if cfg.jsonl.target:
        sinks.append(JsonLinesSink(cfg.jsonl.target))
    if cfg.video.path:
        sinks.append(VideoSink(cfg.video.path, cfg.video.fps))
    if cfg.http.enabled:
        from .http import HttpSink  # http.server only when the endpoint is wanted

        sinks.append(HttpSink(cfg.http.address, cfg.http.port, registry=registry, health=health,
                              preview_fps=cfg.http.preview_fps))
    return sinks
