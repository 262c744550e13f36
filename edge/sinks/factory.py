"""Sinks from their config: the one place ``openpose-plus run`` and the daemon build them.

The daemon reads :class:`SinksConfig` from the ``[sinks.*]`` tables of its config file;
``run`` fills the same dataclass from its flags (:func:`sinks_config`). Either way
:func:`build_sinks` makes the sinks, in one order: OpenPose JSON, JSON lines, video, HTTP, MQTT.

With several named streams, :func:`build_stream_sinks` makes each stream its own OpenPose JSON
folder (``DIR/NAME/``) and video (``clip-NAME.mp4``), and one JSON lines, HTTP and MQTT sink
that all streams share (their records carry the ``stream`` field; MQTT publishes each stream
to its own topic, ``PREFIX/NAME/poses``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from openpose_plus.edge.configfile import between, option, section

from .base import Sink

__all__ = ["SinksConfig", "OpenPoseJsonConfig", "JsonLinesConfig", "VideoConfig", "HttpConfig", "MqttConfig",
           "build_sinks", "build_stream_sinks", "sinks_config", "parse_address", "parse_broker"]


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


def _qos(v: Any) -> Optional[str]:
    return None if v in (0, 1, 2) else "must be 0, 1 or 2, got %r" % (v,)


@dataclass
class MqttConfig:
    host: str = option("", doc="broker host ('': off)")
    port: int = option(1883, between(1, 65535), "1883, or 8883 with TLS")
    topic_prefix: str = option("openpose-plus", doc="topics: PREFIX/STREAM/poses, and the retained PREFIX/status")
    qos: int = option(1, _qos, "0: at most once; 1: at least once (kept until the broker has it); 2: exactly once")
    retain: bool = option(False, doc="the broker keeps each stream's last message for new subscribers")
    client_id: str = option("", doc="'': the library makes one")
    username: str = ""
    password_file: str = option("", doc="a file holding the password (never the password itself here)")
    tls_ca: str = option("", doc="CA file: TLS on (with tls_cert/tls_key: a client certificate too)")
    tls_cert: str = ""
    tls_key: str = ""
    keepalive: int = option(30, between(1, 65535), "seconds")
    max_queued: int = option(1000, between(1, 1000000), "messages waiting for the broker before new ones are dropped")
    reconnect_min: float = option(0.5, between(0.01, 3600), "seconds before the first retry; doubles up to "
                                                            "reconnect_max")
    reconnect_max: float = option(30.0, between(0.01, 3600))
    connect_wait: float = option(0.0, between(0, 60),
                                 "seconds the start waits for the broker (0: none; frames before it is reached are "
                                 "dropped and counted)")


@dataclass
class SinksConfig:
    openpose_json: OpenPoseJsonConfig = section(OpenPoseJsonConfig)
    jsonl: JsonLinesConfig = section(JsonLinesConfig)
    video: VideoConfig = section(VideoConfig)
    http: HttpConfig = section(HttpConfig)
    mqtt: MqttConfig = section(MqttConfig)


def parse_address(text: str) -> Tuple[str, int]:
    """``ADDR:PORT`` (or ``:PORT`` for 127.0.0.1) as ``(address, port)``; ValueError otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError("an HTTP address is ADDR:PORT, got %r" % (text,))
    return host or "127.0.0.1", int(port)


def parse_broker(text: str) -> Tuple[str, int]:
    """``HOST[:PORT]`` (port 1883 by default; ``[v6]:PORT`` for an IPv6 address) as ``(host, port)``."""
    host, port = text.strip(), 1883
    if host.startswith("["):
        addr, _, rest = host[1:].partition("]")
        host, tail = addr, rest
        if tail and not tail.startswith(":"):
            raise ValueError("an MQTT broker is HOST[:PORT], got %r" % (text,))
        tail = tail[1:]
    elif host.count(":") == 1:
        host, _, tail = host.partition(":")
    else:
        tail = ""
    if tail:
        if not tail.isdigit() or not 0 < int(tail) <= 65535:
            raise ValueError("an MQTT broker is HOST[:PORT], got %r" % (text,))
        port = int(tail)
    if not host:
        raise ValueError("an MQTT broker is HOST[:PORT], got %r" % (text,))
    return host, port


def sinks_config(write_json: Optional[str] = None, jsonl: Optional[str] = None, video: Optional[str] = None,
                 fps: float = 30.0, http: Optional[str] = None, mqtt: Optional[str] = None) -> SinksConfig:
    """The config of the sinks ``run``'s flags ask for (``http`` is ``ADDR:PORT``, ``mqtt``
    ``HOST[:PORT]``; the rest of MQTT's settings come from a config file, never flags)."""
    cfg = SinksConfig(OpenPoseJsonConfig(write_json or ""), JsonLinesConfig(jsonl or ""), VideoConfig(video or "", fps))
    if http:
        address, port = parse_address(http)
        cfg.http = HttpConfig(True, address, port)
    if mqtt:
        host, port = parse_broker(mqtt)
        cfg.mqtt = MqttConfig(host=host, port=port)
    return cfg


def _mqtt(cfg: MqttConfig, stream: str = "default") -> Sink:
    from .mqtt import MqttSink  # paho-mqtt only when a broker is configured

    return MqttSink(cfg.host, cfg.port, cfg.topic_prefix, stream=stream, qos=cfg.qos, retain=cfg.retain,
                    client_id=cfg.client_id, username=cfg.username, password_file=cfg.password_file,
                    tls_ca=cfg.tls_ca, tls_cert=cfg.tls_cert, tls_key=cfg.tls_key, keepalive=cfg.keepalive,
                    max_queued=cfg.max_queued, reconnect_min=cfg.reconnect_min, reconnect_max=cfg.reconnect_max,
                    connect_wait=cfg.connect_wait)


def _per_stream_path(path: str, name: str) -> str:
    stem, ext = os.path.splitext(path)
    return "%s-%s%s" % (stem, name, ext)


def build_stream_sinks(cfg: SinksConfig, names: Sequence[str], registry: Any = None,
                       health: Optional[Callable[[], Tuple[bool, str]]] = None,
                       own_folders: bool = True) -> Tuple[List[Sink], Dict[str, List[Sink]]]:
    """``(shared, {stream: its own})`` for the streams ``names``. ``own_folders``: each stream
    writes OpenPose JSON into ``DIR/NAME/`` and video to ``clip-NAME.ext`` (False for the one
    stream of a single ``[source]``: ``DIR`` and ``clip.ext`` themselves, as before)."""
    from . import OpenPoseJsonSink, VideoSink

    own: Dict[str, List[Sink]] = {n: [] for n in names}
    for name in names:
        if cfg.openpose_json.directory:
            folder = os.path.join(cfg.openpose_json.directory, name) if own_folders else cfg.openpose_json.directory
            own[name].append(OpenPoseJsonSink(folder, cfg.openpose_json.prefix))
        if cfg.video.path:
            path = _per_stream_path(cfg.video.path, name) if own_folders else cfg.video.path
            own[name].append(VideoSink(path, cfg.video.fps))
    shared = [s for s in build_sinks(cfg, registry, health, stream=names[0] if len(names) == 1 else "default")
              if s.name not in ("openpose_json", "video")]
    return shared, own


def build_sinks(cfg: SinksConfig, registry: Any = None,
                health: Optional[Callable[[], Tuple[bool, str]]] = None, stream: str = "default") -> List[Sink]:
    """The sinks ``cfg`` turns on; ``registry`` (Prometheus) and ``health`` feed the HTTP endpoint;
    ``stream`` names the stream of results that carry none (MQTT's topic)."""
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
    if cfg.mqtt.host:
        sinks.append(_mqtt(cfg.mqtt, stream))
    return sinks
