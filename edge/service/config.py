"""The daemon's configuration: dataclasses read by :mod:`openpose_plus.edge.configfile`.

An unknown key, a wrong type or a bad value is refused at start with the key named
(``sinks.http.prot: unknown key (known: address, enabled, port, preview_fps)``), so a typo
never silently turns a feature off; ``--set section.key=VALUE`` overrides a key of the file.
Every number has a range (nan and inf are never in one), and a source URI that can never
open (an unknown scheme, an unknown ``synthetic://`` option) is refused here too. Whether
the outputs can work on this machine (a folder that can be made, an address that can be
listened on) is :mod:`.preflight`'s question. Relative paths in the file (the bundle, the
engine cache, the sinks' files and folders) are relative to the file; given by ``--set``,
to the current directory. See ``systemd/edge.toml`` for a commented example.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from openpose_plus.edge import configfile
from openpose_plus.edge.configfile import ConfigError, between, one_of, option, section
from openpose_plus.edge.sinks.factory import SinksConfig

__all__ = ["ConfigError", "EdgeConfig", "StreamConfig", "load_config", "parse_config", "add_config_arguments",
           "STREAM_NAME", "DEFAULT_STREAM", "tracking_option"]

# A stream's name is a directory, an MQTT topic level and a Prometheus label value.
STREAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_STREAM = "default"  # the one stream of a config with a single [source]


def _workers(v: Any) -> Optional[str]:
    if v == "auto":
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        return "must be \"auto\" or an integer, got %r" % (v,)
    return between(1, 64)(v)


# Bounds: what a device can use, not what a typo can ask for (queue_size = 1000000 held
# 9.5 GB of frames; stop_timeout = 1e300 overflowed at stop).
SECONDS = between(0.1, 3600)


@dataclass
class ModelConfig:
    bundle: str = option("", doc="model bundle directory or .tar (required; relative: from the config file)")
    backend: str = option("auto", one_of("auto", "tensorrt", "onnxruntime"))
    precision: str = option("auto", one_of("auto", "fp32", "fp16", "int8"))
    threads: int = option(0, between(0, 256),
                          "onnxruntime intra-op threads per session (0: all cores / inference workers)")
    cache_dir: str = option("", doc="TensorRT engine cache (default: $CACHE_DIRECTORY/engines)")
    dla_core: int = option(-1, between(-1, 15), "-1: GPU only")


@dataclass
class SourceConfig:
    uri: str = option("", doc="csi://0, /dev/video0, rtsp://..., a file, synthetic:// (required)")
    reconnect_min: float = option(0.5, between(0.01, 3600), "seconds before the second attempt; doubles up to "
                                                            "reconnect_max")
    reconnect_max: float = option(30.0, between(0.01, 3600))
    reopen_on_end: bool = option(True, doc="a source that ends (file, lost stream) is reopened")
    prefer: str = option("auto", one_of("auto", "jetson_utils", "opencv"))


def _stream_name(v: Any) -> Optional[str]:
    return None if v == "" or STREAM_NAME.match(v) else \
        "must be 1-64 letters, digits, '_', '.' or '-' (it names a folder, a topic and a label), got %r" % (v,)


@dataclass
class StreamConfig(SourceConfig):
    """One ``[[sources]]`` table: a named stream with its own source options."""

    name: str = option("", _stream_name, doc="the stream's name: its JSON folder, MQTT topic level and metrics label (required)")


@dataclass
class PipelineConfig:
    mode: str = option("pipelined", one_of("pipelined", "sequential"))
    queue_size: int = option(2, between(1, 32))
    infer_workers: Any = option("auto", _workers, "\"auto\" (one per core on the CPU backend, 1 on TensorRT) "
                                                  "or a number")
    sink_queue: int = option(4, between(1, 64))
    max_batch: int = option(0, between(0, 1024),
                            "frames per network call with several streams: 0 (auto) is the number of streams, "
                            "at most a dynamic bundle's checked size; a fixed-batch bundle runs its own size")
    batch_wait_ms: float = option(10.0, between(0, 1000),
                                  "longest a batch waits for more streams' frames after its first one (only "
                                  "while every inference worker is busy)")


@dataclass
class DaemonConfig:
    status_interval: float = option(5.0, SECONDS, "seconds between STATUS= updates")
    stall_seconds: float = option(10.0, between(0.5, 3600),
                                  "no frame (and no reconnect attempt) for this long: stop WATCHDOG=1")
    stop_timeout: float = option(20.0, SECONDS,
                                 "on stop, wait this long for frames in flight (keep < TimeoutStopSec)")
    log_level: str = option("info", one_of("debug", "info", "warning", "error"))


@dataclass
class EdgeConfig:
    model: ModelConfig = section(ModelConfig)
    source: SourceConfig = section(SourceConfig)
    sources: List[StreamConfig] = option([], doc="[[sources]]: several named streams (instead of [source])")
    pipeline: PipelineConfig = section(PipelineConfig)
    grouping: Dict[str, Any] = section(dict, doc="GroupParams fields over the bundle's own")
    tracking: Dict[str, Any] = section(dict, doc="enabled (default true) and TrackParams fields")
    sinks: SinksConfig = section(SinksConfig)
    daemon: DaemonConfig = section(DaemonConfig)

    @property
    def multi_stream(self) -> bool:
        """Configured with ``[[sources]]`` (named streams: per-stream folders, labels, topics)."""
        return bool(self.sources)

    def streams(self) -> List[StreamConfig]:
        """The streams to watch: the ``[[sources]]``, or the one ``[source]`` named ``default``."""
        if self.sources:
            return list(self.sources)
        fields = {f.name: getattr(self.source, f.name) for f in dataclasses.fields(SourceConfig)}
        return [StreamConfig(name=DEFAULT_STREAM, **fields)]


def _check(cfg: EdgeConfig) -> None:
    """Rules that join several keys, and the grouping table against GroupParams."""
    if not cfg.model.bundle:
        raise ConfigError("model.bundle: required (the model bundle directory or .tar)")
    if cfg.sources:
        if cfg.source.uri:
            raise ConfigError("source: give one [source] or several [[sources]], not both")
        seen: Dict[str, int] = {}
        for i, st in enumerate(cfg.sources):
            where = "sources[%d]" % i
            if not st.name:
                raise ConfigError("%s.name: required (it names the stream's folder, topic and label)" % where)
            if st.name in seen:
                raise ConfigError("%s.name: %r is already the name of sources[%d]" % (where, st.name, seen[st.name]))
            seen[st.name] = i
            _check_source(st, where)
    else:
        if not cfg.source.uri:
            raise ConfigError("source.uri: required (csi://0, /dev/video0, rtsp://..., synthetic://), "
                              "or several [[sources]]")
        _check_source(cfg.source, "source")
    mq = cfg.sinks.mqtt
    if mq.host:
        if bool(mq.tls_cert) != bool(mq.tls_key):
            raise ConfigError("sinks.mqtt.tls_cert: tls_cert and tls_key go together")
        if mq.password_file and not mq.username:
            raise ConfigError("sinks.mqtt.password_file: needs sinks.mqtt.username")
        if mq.reconnect_min > mq.reconnect_max:
            raise ConfigError("sinks.mqtt.reconnect_min: must be at most sinks.mqtt.reconnect_max (%r), got %r"
                              % (mq.reconnect_max, mq.reconnect_min))
    if cfg.grouping:
        from openpose_plus.edge.grouping import GroupParams

        known = [f.name for f in dataclasses.fields(GroupParams)]
        unknown = sorted(set(cfg.grouping) - set(known))
        if unknown:
            raise ConfigError("grouping.%s: unknown key (known: %s)" % (unknown[0], ", ".join(sorted(known))))
        try:
            GroupParams(**cfg.grouping)
        except (TypeError, ValueError) as exc:
            raise ConfigError("grouping: %s" % (exc,)) from None
    if cfg.tracking:
        track = dict(cfg.tracking)
        if not isinstance(track.pop("enabled", True), bool):
            raise ConfigError("tracking.enabled: must be true or false, got %r" % (cfg.tracking["enabled"],))
        from openpose_plus.edge.tracking import TrackParams

        known = {f.name for f in dataclasses.fields(TrackParams)} | {"enabled"}
        unknown = sorted(set(track) - known)
        if unknown:
            raise ConfigError("tracking.%s: unknown key (known: %s)" % (unknown[0], ", ".join(sorted(known))))
        try:
            TrackParams(**track)
        except (TypeError, ValueError) as exc:
            raise ConfigError("tracking: %s" % (exc,)) from None


def tracking_option(cfg: EdgeConfig):
    """What ``Pipeline(track=...)`` gets from ``[tracking]``: False when ``enabled = false``,
    else the table's TrackParams fields (an empty dict: the defaults). On by default."""
    track = dict(cfg.tracking)
    return track if track.pop("enabled", True) else False


def _check_source(src: SourceConfig, where: str) -> None:
    if not src.uri:
        raise ConfigError("%s.uri: required (csi://0, /dev/video0, rtsp://..., synthetic://)" % where)
    if src.reconnect_min > src.reconnect_max:
        raise ConfigError("%s.reconnect_min: must be at most %s.reconnect_max (%r), got %r"
                          % (where, where, src.reconnect_max, src.reconnect_min))
    from openpose_plus.edge.sources import SourceError, make_source

    try:  # made, not opened: a URI no provider can ever open is refused now, not retried forever
        make_source(src.uri, prefer=src.prefer)
    except SourceError as exc:
        raise ConfigError("%s.uri: %s" % (where, exc)) from None


def parse_config(data: Mapping[str, Any], where: Optional[str] = None) -> EdgeConfig:
    """Check a parsed document and turn it into an :class:`EdgeConfig`."""
    return configfile.from_document(EdgeConfig, data, where, _check)


# The keys that name files or folders: relative ones are resolved after reading.
PATH_KEYS = (("model", "bundle"), ("model", "cache_dir"), ("sinks", "openpose_json", "directory"),
             ("sinks", "jsonl", "target"), ("sinks", "video", "path"), ("sinks", "mqtt", "password_file"),
             ("sinks", "mqtt", "tls_ca"), ("sinks", "mqtt", "tls_cert"), ("sinks", "mqtt", "tls_key"))


def _doc_value(doc: Mapping[str, Any], keys: Sequence[str]) -> Any:
    node: Any = doc
    for depth, key in enumerate(keys):
        if not isinstance(node, Mapping):
            return None
        # sections match whatever their case, as the reader matches them; keys are exact
        node = next((v for k, v in node.items() if str(k).lower() == key), None) if depth == 0 else node.get(key)
    return node


def _is_path(value: str) -> bool:
    return bool(value) and value != "-" and "://" not in value


def load_config(path: str, overrides: Iterable[str] = ()) -> EdgeConfig:
    """Read and check a config file, then ``--set`` overrides; :class:`ConfigError` names the key and the file.

    A relative path from the file (``model.bundle``, a sink's file or folder) is relative to the
    file, not to wherever the daemon started (``/`` under systemd); one given by an override is
    relative to the current directory.
    """
    doc = configfile.read_document(path)
    in_file = {keys: _doc_value(doc, keys) for keys in PATH_KEYS}
    for item in overrides:
        configfile.apply_override(doc, item)
    cfg = parse_config(doc, path)
    here = os.path.dirname(os.path.abspath(path))
    for keys in PATH_KEYS:
        owner = cfg
        for key in keys[:-1]:
            owner = getattr(owner, key)
        value = getattr(owner, keys[-1])
        if _is_path(value):  # an absolute path stays as it is
            setattr(owner, keys[-1], os.path.join(here if value == in_file[keys] else os.getcwd(), value))
    return cfg


def add_config_arguments(parser: Any, config_default: str) -> None:
    """``--config FILE`` (default ``config_default``) and repeatable ``--set section.key=VALUE``."""
    configfile.add_arguments(parser, example="sinks.http.port=9000", config_default=config_default,
                             config_help="TOML (or YAML) config")
