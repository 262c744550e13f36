"""The daemon's configuration: dataclasses read from TOML, every key checked.

An unknown key, a wrong type or a bad value is refused at start with the key named
(``sinks.http.prot: unknown key (known: address, port, preview_fps)``), so a typo never
silently turns a feature off. See ``systemd/edge.toml`` for a commented example.
"""
from __future__ import annotations

import dataclasses
import importlib
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

__all__ = ["ConfigError", "EdgeConfig", "load_config", "parse_config", "tracking_option"]


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and the key."""


@dataclass
class ModelConfig:
    bundle: str = ""
    backend: str = "auto"          # auto | tensorrt | onnxruntime
    precision: str = "auto"        # auto | fp32 | fp16 | int8
    threads: int = 0               # onnxruntime intra-op threads per session (0: all cores / inference workers)
    cache_dir: str = ""            # TensorRT engine cache (default: $CACHE_DIRECTORY/engines)
    dla_core: int = -1             # -1: GPU only


@dataclass
class SourceConfig:
    uri: str = ""
    reconnect_min: float = 0.5     # seconds before the second attempt; doubles up to reconnect_max
    reconnect_max: float = 30.0
    reopen_on_end: bool = True     # a source that ends (file, lost stream) is reopened
    prefer: str = "auto"           # auto | jetson_utils | opencv


@dataclass
class PipelineConfig:
    mode: str = "pipelined"        # pipelined | sequential
    queue_size: int = 2
    infer_workers: Any = "auto"    # "auto" (one per core on the CPU backend, 1 on TensorRT) or a number
    sink_queue: int = 4


@dataclass
class OpenPoseJsonConfig:
    directory: str = ""
    prefix: str = ""


@dataclass
class JsonLinesConfig:
    target: str = ""               # "-" (stdout), a file, or udp://host:port


@dataclass
class VideoConfig:
    path: str = ""
    fps: float = 30.0


@dataclass
class HttpConfig:
    enabled: bool = False
    address: str = "127.0.0.1"
    port: int = 8080
    preview_fps: float = 10.0


@dataclass
class SinksConfig:
    openpose_json: OpenPoseJsonConfig = field(default_factory=OpenPoseJsonConfig)
    jsonl: JsonLinesConfig = field(default_factory=JsonLinesConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    http: HttpConfig = field(default_factory=HttpConfig)


@dataclass
class DaemonConfig:
    status_interval: float = 5.0   # seconds between STATUS= updates
    stall_seconds: float = 10.0    # no frame (and no reconnect attempt) for this long: stop WATCHDOG=1
    stop_timeout: float = 20.0     # on stop, wait this long for frames in flight (keep < TimeoutStopSec)
    log_level: str = "info"


@dataclass
class EdgeConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    grouping: Dict[str, Any] = field(default_factory=dict)  # GroupParams fields
    tracking: Dict[str, Any] = field(default_factory=dict)  # enabled (default true) and TrackParams fields
    sinks: SinksConfig = field(default_factory=SinksConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)


_CHOICES = {
    "model.backend": ("auto", "tensorrt", "onnxruntime"),
    "model.precision": ("auto", "fp32", "fp16", "int8"),
    "source.prefer": ("auto", "jetson_utils", "opencv"),
    "pipeline.mode": ("pipelined", "sequential"),
    "daemon.log_level": ("debug", "info", "warning", "error"),
}


def _build(cls, data: Mapping[str, Any], where: str):
    if not isinstance(data, Mapping):
        raise ConfigError("%s: should be a table, got %r" % (where, data))
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError("%s.%s: unknown key (known: %s)" % (where, unknown[0], ", ".join(sorted(fields))))
    values = {}
    for name, f in fields.items():
        key = "%s.%s" % (where, name)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]
        if name not in data:
            values[name] = default
            continue
        value = data[name]
        if dataclasses.is_dataclass(default):
            values[name] = _build(type(default), value, key)
        elif isinstance(default, dict):
            if not isinstance(value, Mapping):
                raise ConfigError("%s: should be a table, got %r" % (key, value))
            values[name] = dict(value)
        else:
            values[name] = _coerce(value, default, key)
    return cls(**values)


def _coerce(value: Any, default: Any, key: str) -> Any:
    kind = type(default)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError("%s: should be true or false, got %r" % (key, value))
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError("%s: should be an integer, got %r" % (key, value))
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError("%s: should be a number, got %r" % (key, value))
        value = float(value)
    elif key == "pipeline.infer_workers":
        if value != "auto" and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError("%s: should be \"auto\" or an integer, got %r" % (key, value))
        return value
    elif kind is str and not isinstance(value, str):
        raise ConfigError("%s: should be a string, got %r" % (key, value))
    choices = _CHOICES.get(key)
    if choices and value not in choices:
        raise ConfigError("%s: %r is not one of %s" % (key, value, ", ".join(choices)))
    return value


def _check(cfg: EdgeConfig, where: str) -> EdgeConfig:
    if not cfg.model.bundle:
        raise ConfigError("%s: model.bundle is required (the model bundle directory or .tar)" % where)
    if not cfg.source.uri:
        raise ConfigError("%s: source.uri is required (csi://0, /dev/video0, rtsp://..., synthetic://)" % where)
    s = cfg.source
    if not 0 < s.reconnect_min <= s.reconnect_max:
        raise ConfigError("%s: source.reconnect_min must be > 0 and <= source.reconnect_max" % where)
    p = cfg.pipeline
    for name in ("queue_size", "infer_workers", "sink_queue"):
        if getattr(p, name) != "auto" and getattr(p, name) < 1:
            raise ConfigError("%s: pipeline.%s must be at least 1" % (where, name))
    h = cfg.sinks.http
    if not 0 <= h.port <= 65535:
        raise ConfigError("%s: sinks.http.port %d is not 0..65535" % (where, h.port))
    if cfg.sinks.video.path and cfg.sinks.video.fps <= 0:
        raise ConfigError("%s: sinks.video.fps must be positive" % where)
    for name in ("status_interval", "stall_seconds", "stop_timeout"):
        if getattr(cfg.daemon, name) <= 0:
            raise ConfigError("%s: daemon.%s must be positive" % (where, name))
    if cfg.tracking:
        track = dict(cfg.tracking)
        if not isinstance(track.pop("enabled", True), bool):
            raise ConfigError("%s: tracking.enabled: should be true or false, got %r" % (where, cfg.tracking["enabled"]))
        from openpose_plus.edge.tracking import TrackParams

        known = {f.name for f in dataclasses.fields(TrackParams)} | {"enabled"}
        unknown = sorted(set(track) - known)
        if unknown:
            raise ConfigError("%s: tracking.%s: unknown key (known: %s)" % (where, unknown[0], ", ".join(sorted(known))))
        try:
            TrackParams(**track)
        except (TypeError, ValueError) as exc:
            raise ConfigError("%s: tracking: %s" % (where, exc)) from None
    if cfg.grouping:
        from openpose_plus.edge.grouping import GroupParams

        known = {f.name for f in dataclasses.fields(GroupParams)}
        unknown = sorted(set(cfg.grouping) - known)
        if unknown:
            raise ConfigError("%s: grouping.%s: unknown key (known: %s)" % (where, unknown[0], ", ".join(sorted(known))))
        try:
            GroupParams(**cfg.grouping)
        except (TypeError, ValueError) as exc:
            raise ConfigError("%s: grouping: %s" % (where, exc)) from None
    return cfg


def parse_config(data: Mapping[str, Any], where: str = "config") -> EdgeConfig:
    """Check a parsed TOML document and turn it into an :class:`EdgeConfig`."""
    return _check(_build_top(data, where), where)


def _build_top(data: Mapping[str, Any], where: str) -> EdgeConfig:
    if not isinstance(data, Mapping):
        raise ConfigError("%s: not a table" % where)
    fields = {f.name for f in dataclasses.fields(EdgeConfig)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError("%s: %s: unknown section (known: %s)" % (where, unknown[0], ", ".join(sorted(fields))))
    try:
        return EdgeConfig(**{name: (_build(type(getattr(EdgeConfig(), name)), data[name], name)
                                    if name not in ("grouping", "tracking") else _grouping(data[name], name))
                             for name in fields if name in data})
    except ConfigError as exc:
        raise ConfigError("%s: %s" % (where, exc)) from None


def _grouping(value: Any, name: str = "grouping") -> Dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError("%s: should be a table, got %r" % (name, value))
    return dict(value)


def tracking_option(cfg: EdgeConfig):
    """What ``Pipeline(track=...)`` gets from ``[tracking]``: False when ``enabled = false``,
    else the table's TrackParams fields (an empty dict: the defaults). On by default."""
    track = dict(cfg.tracking)
    return track if track.pop("enabled", True) else False


def _toml():
    # tomllib is the standard library's from 3.11; tomli is the same parser for 3.8-3.10.
    for name in ("tomllib", "tomli"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ConfigError("reading the config needs tomli on Python < 3.11 (pip install tomli)")


def load_config(path: str) -> EdgeConfig:
    """Read and check a TOML config file; :class:`ConfigError` names the file and the key."""
    toml = _toml()
    try:
        with open(path, "rb") as f:
            data = toml.load(f)
    except FileNotFoundError:
        raise ConfigError("%s: no such config file" % path) from None
    except OSError as exc:
        raise ConfigError("%s: cannot read it: %s" % (path, exc)) from None
    except toml.TOMLDecodeError as exc:
        raise ConfigError("%s: not valid TOML: %s" % (path, exc)) from None
    cfg = parse_config(data, path)
    base = os.path.dirname(os.path.abspath(path))
    # Relative paths in the file are relative to the file, not to wherever the daemon started.
    if not os.path.isabs(cfg.model.bundle):
        cfg.model.bundle = os.path.join(base, cfg.model.bundle)
    return cfg
