"""Cut a stand-in down to exactly one generation's surface, as the conformance table lists it.

The table (api_table.json, written by scripts/api_table.py from the real bindings) says which
qualified names (``BuilderFlag.FP16``, ``IBuilderConfig.int8_calibrator``) each generation
exposes. A stand-in implements what this project uses; :func:`restrict` builds the module for
one column, where a name the column lacks is not there: reading or setting it raises
AttributeError, as the real pybind11 object does, and ``hasattr`` says False.
"""
from __future__ import annotations

import functools
import json
import os
import types
from typing import Dict, Iterable, Set

TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "api_table.json")


@functools.lru_cache(maxsize=None)
def table() -> Dict[str, dict]:
    with open(TABLE) as f:
        return json.load(f)["libraries"]


def columns(library: str):
    return list(table()[library]["columns"])


@functools.lru_cache(maxsize=None)
def names(library: str, column: str) -> frozenset:
    lib = table()[library]
    if column not in lib["columns"]:
        raise KeyError("%s has no column %r (it has %s)" % (library, column, lib["columns"]))
    return frozenset(n for n, cols in lib["names"].items() if cols == "*" or column in cols.split())


@functools.lru_cache(maxsize=None)
def union(library: str) -> frozenset:
    return frozenset(table()[library]["names"])


class Absent:
    """A name this generation does not have: AttributeError on read and on write."""

    def __init__(self, qualname: str, column: str) -> None:
        self.qualname, self.column = qualname, column

    def __get__(self, obj, owner=None):
        raise AttributeError("%s: no attribute %r in this generation (%s)"
                             % (self.qualname.rsplit(".", 1)[0], self.qualname.rsplit(".", 1)[-1], self.column))

    def __set__(self, obj, value) -> None:
        self.__get__(obj)


def public_members(cls: type) -> Iterable[str]:
    seen = set()
    for klass in cls.__mro__:
        if klass.__module__ == "builtins":  # object, bytearray, Exception: not the library's surface
            continue
        for attr in vars(klass):
            if attr in seen or attr.startswith("_"):
                continue
            seen.add(attr)
            yield attr


def restrict_class(impl: type, qualname: str, have: Set[str], column: str, module: str) -> type:
    ns = {}
    for attr in public_members(impl):
        full = qualname + "." + attr
        value = getattr(impl, attr, None)
        if full not in have:
            ns[attr] = Absent(full, column)
        elif isinstance(value, type) and value.__name__ == attr:  # a nested class (Logger.Severity)
            ns[attr] = restrict_class(value, full, have, column, module)
    if not ns:
        return impl  # nothing to hide: the class itself (exceptions stay catchable as raised)
    ns["__module__"] = module
    out = type(impl.__name__, (impl,), ns)
    out.__qualname__ = qualname
    return out


def restrict(name: str, library: str, column: str, impl: Dict[str, object], exports: Iterable[str]) -> types.ModuleType:
    """Module ``name`` holding those of ``exports`` (taken from ``impl``) that ``column`` has."""
    have = names(library, column)
    mod = types.ModuleType(name, impl.get("__doc__") if isinstance(impl.get("__doc__"), str) else None)
    for attr in exports:
        if attr not in have:
            continue
        value = impl[attr]
        if isinstance(value, type):
            value = restrict_class(value, attr, have, column, name)
        setattr(mod, attr, value)
    return mod


def invented(library: str, impl: Dict[str, object], exports: Iterable[str]) -> Set[str]:
    """Names a stand-in implements that no generation of the real library has (must be none)."""
    every = union(library)
    out = set()

    def walk(qual: str, value: object) -> None:
        if qual not in every:
            out.add(qual)
        if isinstance(value, type):
            for attr in public_members(value):
                sub = getattr(value, attr, None)
                full = qual + "." + attr
                if isinstance(sub, type) and sub.__name__ == attr:
                    walk(full, sub)
                elif full not in every:
                    out.add(full)

    for attr in exports:
        walk(attr, impl[attr])
    return out
