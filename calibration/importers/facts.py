"""What an imported network is, in its own terms: the facts the importer needs to put it behind
the bundle's contract (uint8 RGB NHWC in, normalisation inside, NCHW heatmaps and PAFs out).

A preset (:mod:`.presets`) fills them in for a known family; a user gives the rest (or overrides
a preset's) on the command line. Everything here is checked before any graph is touched, and a
fact that does not add up is refused with :class:`ImportRefused` naming it.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from openpose_plus.edge.skeleton import BUILTIN, COCO18, Skeleton

__all__ = ["ImportRefused", "NetworkFacts", "LAYOUTS", "COLORS", "CONCAT_ORDERS", "PAF_ORDERS", "load_skeleton"]

LAYOUTS = ("NCHW", "NHWC")
COLORS = ("RGB", "BGR")
CONCAT_ORDERS = ("heatmaps,pafs", "pafs,heatmaps")
PAF_ORDERS = ("xy", "yx")


class ImportRefused(ValueError):
    """A network that cannot be imported as described; the message says which fact does not add up."""


@dataclass(frozen=True)
class NetworkFacts:
    """How the network reads its input and lays out its output.

    * input: ``input_name`` (None: the graph's only input), ``input_layout``, the channel order
      it reads (``color``), and its normalisation ``(x - mean) / std`` on 0..255 pixel values
      in its own channel order (mean 0, std 1 for a network that normalises inside);
      ``input_size`` ``(width, height)`` to import it at (None: the graph's own fixed size).
    * output: ``outputs`` names one tensor (heatmaps and PAFs concatenated along the channel
      axis, in ``concat_order``) or two (heatmaps, PAFs); empty: the graph's own outputs.
      ``output_layout`` NCHW or NHWC; ``stride`` input pixels per map cell (None: measured).
    * channels: heatmaps in ``skeleton`` part order, ending with a background channel when
      ``background`` (else the importer adds one, ``max(0, 1 - max over parts)``, as OpenPose
      trains it); PAF channel pair ``paf_channels[l]`` for limb ``l`` of the skeleton (None: the
      skeleton's own table), each pair (x, y), or (y, x) when ``paf_order`` is ``"yx"``.
    * ``pad_value``: the grey the letterbox pads with (what the network saw around images).
    """

    input_name: Optional[str] = None
    input_layout: str = "NCHW"
    color: str = "RGB"
    mean: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    input_size: Optional[Tuple[int, int]] = None
    stride: Optional[int] = None
    outputs: Tuple[str, ...] = ()
    output_layout: str = "NCHW"
    concat_order: str = "heatmaps,pafs"
    background: bool = True
    skeleton: Skeleton = COCO18
    paf_channels: Optional[Tuple[Tuple[int, int], ...]] = None
    paf_order: str = "xy"
    pad_value: int = 0
    notes: Tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        for name, allowed in (("input_layout", LAYOUTS), ("output_layout", LAYOUTS), ("color", COLORS),
                              ("concat_order", CONCAT_ORDERS), ("paf_order", PAF_ORDERS)):
            if getattr(self, name) not in allowed:
                raise ImportRefused("%s %r is not one of %s" % (name, getattr(self, name), ", ".join(allowed)))
        for name in ("mean", "std"):
            values = tuple(float(v) for v in getattr(self, name))
            if len(values) != 3:
                raise ImportRefused("%s needs 3 values (one per channel), got %r" % (name, getattr(self, name)))
            object.__setattr__(self, name, values)
        if any(v == 0 for v in self.std):
            raise ImportRefused("std %r holds a zero" % (self.std,))
        if self.input_size is not None:
            w, h = (int(v) for v in self.input_size)
            if w <= 0 or h <= 0:
                raise ImportRefused("input size %dx%d is not positive" % (w, h))
            object.__setattr__(self, "input_size", (w, h))
        if self.stride is not None and int(self.stride) <= 0:
            raise ImportRefused("stride %r is not positive" % (self.stride,))
        if len(self.outputs) > 2:
            raise ImportRefused("outputs: one (heatmaps and PAFs concatenated) or two (heatmaps, PAFs), got %d: %s"
                                % (len(self.outputs), ", ".join(self.outputs)))
        if not 0 <= int(self.pad_value) <= 255:
            raise ImportRefused("pad value %r is not 0..255" % (self.pad_value,))
        if self.paf_channels is not None:
            table = tuple((int(a), int(b)) for a, b in self.paf_channels)
            object.__setattr__(self, "paf_channels", table)
        self.network_paf_table()  # checked now, not when the graph is half built

    def replace(self, **changes) -> "NetworkFacts":
        """These facts with ``changes`` (None values are left as they were)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    # -- derived -----------------------------------------------------------------------------
    @property
    def num_heatmaps(self) -> int:
        """Heatmap channels the network writes."""
        return self.skeleton.num_parts + (1 if self.background else 0)

    def network_paf_table(self) -> Tuple[Tuple[int, int], ...]:
        """Per skeleton limb, the network's (x, y) channels inside its PAF block."""
        sk = self.skeleton
        table = self.paf_channels if self.paf_channels is not None else sk.paf_channels
        if len(table) != sk.num_limbs:
            raise ImportRefused("the PAF channel table has %d pairs, skeleton %r has %d limbs"
                                % (len(table), sk.name, sk.num_limbs))
        flat = sorted(c for pair in table for c in pair)
        if flat != list(range(2 * sk.num_limbs)):
            raise ImportRefused("the PAF channel table must use each of 0..%d once, got %s"
                                % (2 * sk.num_limbs - 1, [list(p) for p in table]))
        return tuple((second, first) for first, second in table) if self.paf_order == "yx" else table

    def bundle_skeleton(self) -> Skeleton:
        """The skeleton the bundle declares. A built-in one keeps its own PAF table (the importer
        reorders the channels into it), so a ``coco18`` bundle always means the same channels;
        any other skeleton takes the network's table as it is (no reordering at run time)."""
        if self.is_builtin_skeleton:
            return self.skeleton
        return dataclasses.replace(self.skeleton, paf_channels=self.network_paf_table())

    @property
    def is_builtin_skeleton(self) -> bool:
        return any(self.skeleton == sk for sk in BUILTIN.values())

    def to_dict(self) -> Dict[str, object]:
        """The facts for meta.json's import record."""
        out: Dict[str, object] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "skeleton":
                value = value.name
            elif f.name == "notes":
                continue
            elif isinstance(value, tuple):
                value = json.loads(json.dumps(value))
            out[f.name] = value
        return out


def load_skeleton(spec: str) -> Skeleton:
    """``coco18`` / ``body25``, or a JSON file: a skeleton (``Skeleton.to_dict``) or a COCO
    category (``keypoints`` and 1-based ``skeleton``), as trt_pose's ``human_pose.json``."""
    if spec.lower() in BUILTIN:
        return BUILTIN[spec.lower()]
    try:
        with open(spec) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ImportRefused("skeleton %r is neither built in (%s) nor a file" % (spec, ", ".join(sorted(BUILTIN)))) from None
    except (OSError, ValueError) as exc:
        raise ImportRefused("skeleton file %s: %s" % (spec, exc)) from None
    if isinstance(data, dict) and isinstance(data.get("categories"), list) and data["categories"]:
        data = data["categories"][0]  # a whole COCO annotation file: its (first) category
    try:
        if isinstance(data, dict) and "parts" in data:
            return Skeleton.from_dict(data)
        if isinstance(data, dict):
            return Skeleton.from_coco_category(data)
    except ValueError as exc:
        raise ImportRefused("skeleton file %s: %s" % (spec, exc)) from None
    raise ImportRefused("skeleton file %s is not a skeleton or a COCO category" % spec)


def parse_pairs(text: str) -> Tuple[Tuple[int, int], ...]:
    """``"12,13 20,21 ..."`` or a JSON list of pairs -> PAF channel pairs."""
    text = text.strip()
    try:
        if text.startswith("["):
            pairs: Sequence[Sequence[int]] = json.loads(text)
        else:
            pairs = [tuple(int(v) for v in item.split(",")) for item in text.replace(";", " ").split()]
        out: List[Tuple[int, int]] = []
        for p in pairs:
            a, b = p
            out.append((int(a), int(b)))
        return tuple(out)
    except (ValueError, TypeError) as exc:
        raise ImportRefused("PAF channel table %r: %s (want pairs like \"12,13 20,21\")" % (text[:40], exc)) from None
