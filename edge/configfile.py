"""One config reader for the whole project: TOML (or YAML) files into typed dataclasses.

Training (``host_training/config.py``) and the daemon (``edge/service/config.py``) both
describe their config as dataclasses and read it here, so both sides get the same rules:

* a file is TOML, or YAML when its name ends in ``.yaml``/``.yml`` (needs pyyaml);
  ``tomllib`` from Python 3.11, the same parser as ``tomli`` on 3.8-3.10;
* the top-level dataclass's fields are the sections (a field's ``key`` metadata is its name
  in files, e.g. ``DATA`` for ``data``; section names match whatever their case); a
  section's fields are its keys, and a field that is itself a dataclass is a nested table;
* every value is checked against its field's type (``bool``, ``int``, ``float``, ``str``,
  ``List[...]``, ``Dict[...]``, ``Any``) and its ``check``; an unknown section or key is
  refused by name, with the known ones listed: ``sinks.http.prot: unknown key (known: ...)``;
* a field ``List[SomeDataclass]`` is an array of tables (``[[sources]]``), each built and
  checked like a section, its keys named with the index: ``sources[1].uri: required``;
* ``--set SECTION.key=VALUE`` overrides apply on top of the file; the value is a TOML literal
  (``16``, ``true``, ``"a b"``, ``[1, 2]``, ``{name = "flip"}``), or else the text itself;
  ``sources.1.uri=...`` reaches into an array of tables by index.

Every error is a :class:`ConfigError` whose message starts with the key and ends with the
file: ``TRAIN.batch_size: must be a positive integer, got -1 (in train.toml)``.

    @dataclass
    class Server:
        port: int = option(8080, between(0, 65535), "TCP port")

    @dataclass
    class Settings:
        server: Server = section(Server)

    cfg = load(Settings, "app.toml", ["server.port=9000"])
"""
from __future__ import annotations

import copy
import dataclasses
import importlib
import math
import os
import typing
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Type, TypeVar

__all__ = ["ConfigError", "option", "section", "one_of", "positive", "non_negative", "fraction", "between",
           "toml_module", "read_document", "parse_value", "apply_override", "build", "from_document", "load",
           "as_document", "add_arguments"]

T = TypeVar("T")
Check = Callable[[Any], Optional[str]]


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message starts with the key."""


# -- describing fields ----------------------------------------------------------------------

def option(default: Any, check: Optional[Check] = None, doc: str = "") -> Any:
    """A key with its default, an optional ``check`` (returns an error text or None) and a doc line."""
    meta = {"check": check, "doc": doc}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def section(cls: Any, key: Optional[str] = None, doc: str = "", check: Optional[Check] = None) -> Any:
    """A nested table (a dataclass, or ``dict`` for a free table); ``key`` is its name in files."""
    return dataclasses.field(default_factory=cls, metadata={"key": key, "doc": doc, "check": check})


def one_of(*choices: str) -> Check:
    def check(v: Any) -> Optional[str]:
        return None if v in choices else "must be one of %s, got %r" % (" | ".join(choices), v)
    return check


def positive(v: Any) -> Optional[str]:
    if v > 0:
        return None
    return "must be a positive %s, got %r" % ("integer" if isinstance(v, int) else "number", v)


def non_negative(v: Any) -> Optional[str]:
    return None if v >= 0 else "must be zero or more, got %r" % (v,)


def fraction(v: Any) -> Optional[str]:
    return None if 0.0 <= v <= 1.0 else "must be between 0 and 1, got %r" % (v,)


def between(low: float, high: float) -> Check:
    def check(v: Any) -> Optional[str]:
        return None if low <= v <= high else "must be %s..%s, got %r" % (low, high, v)
    return check


def _file_key(f: dataclasses.Field) -> str:
    return f.metadata.get("key") or f.name


# -- reading files --------------------------------------------------------------------------

def toml_module():
    """``tomllib`` (Python 3.11+) or ``tomli`` (the same parser, for 3.8-3.10)."""
    for name in ("tomllib", "tomli"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ConfigError("reading TOML needs tomli on Python < 3.11 (pip install tomli)")


def read_document(path: "os.PathLike[str] | str") -> Dict[str, Any]:
    """A config file as nested dicts: TOML, or YAML by suffix."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigError("%s: cannot read config file: %s" % (path, exc.strerror or exc)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("%s: not UTF-8 text: %s" % (path, exc)) from None
    if path.lower().endswith((".yaml", ".yml")):
        try:
            import yaml  # optional: only YAML configs need it
        except ImportError:
            raise ConfigError("%s: reading YAML needs pyyaml (pip install pyyaml), or use TOML" % path) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError("%s: not valid YAML: %s" % (path, exc)) from None
        data = {} if data is None else data
    else:
        toml = toml_module()
        try:
            data = toml.loads(text)
        except toml.TOMLDecodeError as exc:
            raise ConfigError("%s: not valid TOML: %s" % (path, exc)) from None
    if not isinstance(data, dict):
        raise ConfigError("%s: must hold a table of sections" % path)
    return data


# -- overrides ------------------------------------------------------------------------------

def parse_value(text: str) -> Any:
    """A TOML literal (``16``, ``true``, ``"x"``, ``[1, 2]``), else the text itself."""
    toml = toml_module()
    try:
        return toml.loads("v = " + text)["v"]
    except toml.TOMLDecodeError:
        return text


def apply_override(doc: Dict[str, Any], item: str) -> None:
    """Apply one ``SECTION.key[.sub]=value`` to the nested dict ``doc`` in place.

    The section is found whatever its case in the file; whether it and the key exist is
    checked when the document is built, with the same messages as a file's keys.
    """
    if "=" not in item:
        raise ConfigError("%s: an override must look like SECTION.key=value" % (item,))
    path, _, text = item.partition("=")
    parts = [p.strip() for p in path.strip().split(".")]
    if len(parts) < 2 or not all(parts):
        raise ConfigError("%s: an override must look like SECTION.key=value" % (path.strip(),))
    name = next((k for k in doc if str(k).lower() == parts[0].lower()), parts[0])
    node: Any = doc
    for depth, p in enumerate([name] + parts[1:-1], 1):
        if isinstance(node, list):  # an array of tables, by index
            if not p.isdigit() or int(p) >= len(node):
                raise ConfigError("%s: no table %s in %s (it has %d)"
                                  % (".".join(parts[:depth]), p, ".".join(parts[:depth - 1]), len(node)))
            node = node[int(p)]
        else:
            node = node.setdefault(p, {})
        if not isinstance(node, (dict, list)):
            raise ConfigError("%s: is not a table" % ".".join(parts[:depth]))
    if isinstance(node, list):
        raise ConfigError("%s: is an array of tables; name one by its index" % ".".join(parts[:-1]))
    node[parts[-1]] = parse_value(text.strip())


# -- building dataclasses -------------------------------------------------------------------

def _type_text(tp: Any) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def _coerce(key: str, tp: Any, value: Any) -> Any:
    """``value`` as type ``tp``, or ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError("%s: must be a finite number, got %r" % (key, value))
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, os.PathLike):
            return os.fspath(value)
    elif origin is list:
        if isinstance(value, (list, tuple)):
            return list(value)
        raise ConfigError("%s: must be a list, got %r" % (key, value))
    elif origin is dict or tp is dict:
        if isinstance(value, Mapping):
            return dict(value)
        raise ConfigError("%s: must be a table, got %r" % (key, value))
    else:  # pragma: no cover - a field type this reader does not know is a programming error
        raise ConfigError("%s: unsupported field type %r" % (key, tp))
    raise ConfigError("%s: must be %s, got %r" % (key, _type_text(tp), value))


def _table_type(tp: Any) -> Optional[type]:
    """The dataclass of a ``List[SomeDataclass]`` field (an array of tables), else None."""
    if typing.get_origin(tp) is list:
        args = typing.get_args(tp)
        if args and dataclasses.is_dataclass(args[0]):
            return args[0]
    return None


def build(cls: Type[T], raw: Any, where: str = "") -> T:
    """A ``cls`` from the mapping ``raw``; ``where`` is its key (``""`` for the whole config,
    whose keys are sections and match whatever their case)."""
    if not isinstance(raw, Mapping):
        raise ConfigError("%s: must be a table of keys, got %r" % (where or "config", raw))
    hints = typing.get_type_hints(cls)
    fields = {_file_key(f): f for f in dataclasses.fields(cls)}
    folded = {k.lower(): f for k, f in fields.items()}
    values: Dict[str, Any] = {}
    for name, value in raw.items():
        f = fields.get(name) if where else folded.get(str(name).lower())
        if f is None:
            known = ", ".join(fields if not where else sorted(fields))
            if not where:
                raise ConfigError("%s: unknown section (known: %s)" % (name, known))
            raise ConfigError("%s.%s: unknown key (known: %s)" % (where, name, known))
        key = "%s.%s" % (where, name) if where else _file_key(f)
        if f.name in values:
            raise ConfigError("%s: given twice" % (key,))
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            values[f.name] = build(tp, value, key)
            continue
        item = _table_type(tp)
        if item is not None:  # an array of tables: each one built like a section
            if not isinstance(value, (list, tuple)):
                raise ConfigError("%s: must be an array of tables ([[%s]]), got %r" % (key, key, value))
            value = [build(item, v, "%s[%d]" % (key, i)) for i, v in enumerate(value)]
        value = _coerce(key, tp, value)
        check = f.metadata.get("check")
        problem = check(value) if check is not None else None
        if problem:
            raise ConfigError("%s: %s" % (key, problem))
        values[f.name] = value
    return cls(**values)


def from_document(cls: Type[T], doc: Mapping[str, Any], where: Optional[str] = None,
                  check: Optional[Callable[[T], None]] = None) -> T:
    """``build`` then the whole-config ``check`` (rules joining several keys); errors end with
    ``(in WHERE)`` when ``where`` (the file) is given."""
    try:
        cfg = build(cls, doc)
        if check is not None:
            check(cfg)
        return cfg
    except ConfigError as exc:
        if where is not None and not str(exc).startswith(str(where)):
            raise ConfigError("%s (in %s)" % (exc, where)) from None
        raise


def load(cls: Type[T], path: "Optional[os.PathLike[str] | str]" = None, overrides: Iterable[str] = (),
         check: Optional[Callable[[T], None]] = None) -> T:
    """Defaults, then the file (if any), then ``--set`` overrides, checked key by key."""
    doc: Dict[str, Any] = read_document(path) if path is not None else {}
    for item in overrides:
        apply_override(doc, item)
    return from_document(cls, doc, os.fspath(path) if path is not None else None, check)


def as_document(cfg: Any) -> Dict[str, Any]:
    """A config as nested dicts keyed by the names files use (what :func:`build` reads back)."""
    out: Dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out[_file_key(f)] = as_document(value)
        elif isinstance(value, list) and value and all(dataclasses.is_dataclass(v) for v in value):
            out[_file_key(f)] = [as_document(v) for v in value]
        else:
            out[_file_key(f)] = copy.deepcopy(value)
    return out


# -- the command line -----------------------------------------------------------------------

def add_arguments(parser: Any, example: str, config_default: Optional[str] = None,
                  config_help: str = "TOML (or YAML) config; defaults when omitted") -> None:
    """``--config FILE`` and repeatable ``--set SECTION.key=VALUE`` (into ``args.overrides``)."""
    if config_default is not None:
        config_help += " (default: %(default)s)"
    parser.add_argument("--config", metavar="FILE", default=config_default, help=config_help)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.key=VALUE",
                        help="override one key, e.g. --set %s (repeatable)" % example)
