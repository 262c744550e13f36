"""Which TensorRT generation is running, and the convention that says which code serves which.

TensorRT's Python API changed under this project's feet: 8.5/8.6 (JetPack 5, 6.0) need the
EXPLICIT_BATCH flag and have no progress monitor; 10.x (JetPack 6.1/6.2: 10.3; JetPack 7.0/7.1)
adds strongly typed networks and deprecates calibrators (10.1) and the FP16/INT8 builder flags
(10.12); 11.x (JetPack 7.2.2+: 11.4.1) removes the calibrators, those flags and
``platform_has_fast_*``: every network is strongly typed.

The conformance table (tests/standins/api_table.json, written by scripts/api_table.py from the
real bindings) has one column per generation: ``8.5``, ``8.6``, ``10.3`` (standing for
10.0-10.7), ``10.13`` (10.8-10.x) and ``11.4`` (11.x). A test walks this package's code and
fails where a name is used on a path serving a column that lacks it. Its convention:

- the libraries are reached through the names ``trt`` (tensorrt), ``cuda`` (pycuda.driver)
  and ``jetson_utils`` (also as ``self._trt``/``self._cuda``), or through names annotated with
  one of their types (``config: "trt.IBuilderConfig" = ...``, ``self.engine: "trt.ICudaEngine"``);
  a value taken from them is bound to an annotated name before its own attributes are used;
- a function serves every column unless decorated ``@serves("10.3", "10.13", "11.4")``;
- ``if gen.at_least("10.0"):`` / ``gen.below(...)`` narrow a branch to the columns on either
  side (the version must be a column's floor, see :data:`FLOORS`), and
  ``if hasattr(trt, "IProgressMonitor"):`` to the columns that have the name; a branch that
  ends in ``return``/``raise`` narrows what follows it.

Standard library only: the edge imports it on machines without TensorRT.
"""
from __future__ import annotations

import re
from typing import Callable, Dict, Tuple, TypeVar

__all__ = ["GENERATIONS", "FLOORS", "Generation", "serves", "version_tuple", "version_code"]

# Table column -> the oldest release it stands for.
FLOORS: Dict[str, Tuple[int, int]] = {"8.5": (8, 5), "8.6": (8, 6), "10.3": (10, 0), "10.13": (10, 8), "11.4": (11, 0)}
GENERATIONS = tuple(FLOORS)

F = TypeVar("F", bound=Callable)


def serves(*columns: str) -> Callable[[F], F]:
    """Mark a function as serving only these table columns (read by the conformance test;
    no effect at run time beyond recording them)."""
    unknown = [c for c in columns if c not in FLOORS]
    if unknown or not columns:
        raise ValueError("serves(): unknown TensorRT columns %s (known: %s)" % (unknown, ", ".join(GENERATIONS)))

    def mark(fn: F) -> F:
        fn.__trt_serves__ = tuple(columns)  # type: ignore[attr-defined]
        return fn

    return mark


def version_tuple(version: str) -> Tuple[int, int, int]:
    """(major, minor, patch) of ``"8.5.2.2"``, ``"10.3.0"``, pip's ``"10.13.3.9.post1"``."""
    m = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?", str(version))
    if not m:
        raise ValueError("cannot read a TensorRT version from %r" % (version,))
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def version_code(version: str) -> int:
    """NV_TENSORRT_VERSION, which calibration cache headers carry: 8.6.1 -> 8601 (major*1000 up to
    8.x), 10.3.0 -> 100300 (major*10000 from 10.0)."""
    major, minor, patch = version_tuple(version)
    return major * (10000 if major >= 10 else 1000) + minor * 100 + patch


class Generation:
    """The running TensorRT's version, its table column and the facts the builder decides by."""

    def __init__(self, version: str) -> None:
        self.version = str(version)
        self.major, self.minor, self.patch = version_tuple(version)
        if (self.major, self.minor) < (8, 5):
            raise ValueError("TensorRT %s is too old: this runtime needs 8.5 (JetPack 5) or newer" % version)
        if self.major == 9:
            raise ValueError("TensorRT %s: 9.x shipped on no JetPack and is not supported; use 8.5+, 10.x or 11.x"
                             % version)
        self.column = [c for c, floor in FLOORS.items() if (self.major, self.minor) >= floor][-1]

    def at_least(self, version: str) -> bool:
        return (self.major, self.minor) >= version_tuple(version)[:2]

    def below(self, version: str) -> bool:
        return not self.at_least(version)

    # -- facts (NVIDIA's release notes; the stand-ins encode the same) -------------------------
    @property
    def strongly_typed_only(self) -> bool:
        """11.x: no weak typing, no FP16/INT8 flags, no calibrators."""
        return self.major >= 11

    @property
    def has_calibrators(self) -> bool:
        return self.major < 11

    @property
    def has_dla(self) -> bool:
        """DLA support in this release (10.8-11.3 have none; 11.4 on AGX Orin only, which the
        builder's ``num_DLA_cores`` then says)."""
        return self.major < 10 or (self.major == 10 and self.minor < 8) or (self.major, self.minor) >= (11, 4)

    @property
    def code(self) -> int:
        return version_code(self.version)

    def __repr__(self) -> str:
        return "Generation(%r, column %s)" % (self.version, self.column)
