"""Networks from other projects, in the form each publishes them, made into checked bundles.

One module per format turns the published files into an ONNX graph of the network as it is
(:mod:`.onnx_format`, :mod:`.tensorflow_format` via tf2onnx, :mod:`.caffe` from prototxt and
caffemodel); :mod:`.facts` says how that network reads and writes, :mod:`.presets` fills the
facts in for the known families; :mod:`.wrap` puts the graph behind the bundle's contract and
:mod:`.check` holds the result against the network before :func:`import_network` writes it.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple

from .facts import ImportRefused, NetworkFacts
from .presets import PRESETS, Preset, get_preset

__all__ = ["ImportRefused", "NetworkFacts", "PRESETS", "Preset", "ImportResult", "import_network",
           "detect_format", "FORMATS"]

FORMATS = ("onnx", "tensorflow", "caffe")


@dataclass
class ImportResult:
    bundle: str
    format: str
    preset: Optional[str]
    input_size: Tuple[int, int]
    stride: int
    skeleton: str
    max_abs_diff: Tuple[float, float]   # heatmaps, pafs: the bundle's maps vs the network's (relative)
    grouping: Dict[str, object]
    batch: str = "fixed 1"              # images per network call (see openpose_plus.edge.batch)


def detect_format(paths: Sequence[str]) -> str:
    suffixes = sorted(Path(p).suffix.lower() for p in paths)
    if suffixes == [".onnx"]:
        return "onnx"
    if suffixes == [".pb"]:
        return "tensorflow"
    if suffixes == [".caffemodel", ".prototxt"]:
        return "caffe"
    raise ImportRefused("cannot tell the format of %s (.onnx; a frozen TensorFlow .pb; a Caffe .prototxt with its "
                        ".caffemodel): name it with --format or a --preset" % ", ".join(map(str, paths)))


def _load(fmt: str, paths: Sequence[str], facts: NetworkFacts):
    if fmt == "onnx":
        from . import onnx_format as module
    elif fmt == "tensorflow":
        from . import tensorflow_format as module  # type: ignore[no-redef]
    elif fmt == "caffe":
        from . import caffe as module  # type: ignore[no-redef]
    else:
        raise ImportRefused("unknown format %r (known: %s)" % (fmt, ", ".join(FORMATS)))
    return module.load(paths, facts)


def _file_record(path: str) -> Dict[str, object]:
    from openpose_plus.edge.bundle import sha256_file

    return {"name": os.path.basename(path), "sha256": sha256_file(path), "size": os.path.getsize(path)}


def _grouping_record(preset: Optional[Preset], grouping: Optional[Mapping[str, object]]) -> Dict[str, object]:
    """meta.json's grouping table: the preset's thresholds (or the caller's) on top of the defaults."""
    from openpose_plus.edge.grouping import GroupParams

    values = dict(preset.grouping) if preset else {}
    values.update(grouping or {})
    if not values:
        return {}
    try:
        params = GroupParams(**values)
    except (TypeError, ValueError) as exc:
        raise ImportRefused("grouping parameters: %s" % exc) from None
    source = "import preset %s" % preset.name if preset and not grouping else "import"
    return {"params": dataclasses.asdict(params), "source": source}


def check_before_writing(model) -> None:
    """Every wrapped graph passes here before its bundle is written: onnx's checker and an
    onnxruntime session (:func:`.check.check_graph`), then the rules TensorRT's ONNX parser
    holds a graph to, for every generation from 8.5 (:mod:`openpose_plus.edge.backends.onnx_rules`)."""
    from openpose_plus.edge.backends.onnx_rules import TrtImportError, require_importable

    from .check import check_graph

    check_graph(model)
    try:
        require_importable(model, "the imported graph")
    except TrtImportError as exc:
        raise ImportRefused(str(exc)) from None


def import_network(paths: Sequence[str], out: str, *, preset: Optional[str] = None, fmt: Optional[str] = None,
                   facts: Optional[NetworkFacts] = None, licence: Optional[str] = None,
                   grouping: Optional[Mapping[str, object]] = None, tar: bool = False,
                   batch=None) -> ImportResult:
    """A checked bundle at ``out`` from the network in ``paths``.

    ``facts`` are the network's (default: the preset's); ``fmt`` its format (default: the
    preset's, else told by the file names). ``licence`` is the licence text recorded in
    meta.json; ``grouping`` GroupParams fields stored with the model (default: the preset's).
    ``batch`` (a :class:`~openpose_plus.edge.batch.BatchSpec`; default one image per call): the
    wrapped graph gets that batch dimension and must run several images at once as it runs each
    alone (a network that hard-codes batch 1 is refused, saying where).
    Raises :class:`ImportRefused` naming what does not add up.
    """
    from openpose_plus.edge.batch import ONE, BatchError, batched_model
    from openpose_plus.edge.bundle import load_bundle, write_bundle

    from .check import check_image, compare, network_feed, run_once
    from .wrap import HEATMAPS, INPUT, PAFS, opset_of, plan_outputs, prepare, wrap

    paths = [os.fspath(p) for p in paths]
    for p in paths:
        if not os.path.isfile(p):
            raise ImportRefused("%s does not exist" % p)
    chosen = get_preset(preset) if preset else None
    facts = facts or (chosen.facts if chosen else NetworkFacts())
    fmt = fmt or (chosen.format if chosen else detect_format(paths))
    raw, graph_facts, tools = _load(fmt, paths, facts)
    model, net_in, size, renamed = prepare(raw, graph_facts)
    if renamed and graph_facts.outputs:  # an output the bundle's names pushed aside keeps its meaning
        graph_facts = graph_facts.replace(outputs=tuple(renamed.get(o, o) for o in graph_facts.outputs))
    image = check_image(*size)
    raw_out = run_once(model, network_feed(model, net_in, image, graph_facts))
    shapes = {k: tuple(v.shape) for k, v in raw_out.items()}
    plan = plan_outputs(graph_facts, shapes, [o.name for o in model.graph.output], size)
    wrapped = wrap(model, net_in, size, graph_facts, plan)
    check_before_writing(wrapped)
    diff = compare(wrapped, raw_out, plan, image)
    batch = batch or ONE
    try:
        model_bytes, batch_diff = batched_model(wrapped.SerializeToString(), batch, INPUT, [image])
    except BatchError as exc:
        raise ImportRefused("batch %s: %s" % (batch.describe(), exc)) from None
    import onnx
    import onnxruntime

    tools.update({"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__})
    record = {"format": fmt, "preset": chosen.name if chosen else None,
              "files": [_file_record(p) for p in paths],
              "licence": licence, "licence_name": chosen.licence if chosen else None,
              "facts": facts.to_dict(), "opset": opset_of(wrapped), "tools": tools,
              "check": {"max_abs_diff_relative": {"heatmaps": diff[0], "pafs": diff[1]},
                        "image": "synthetic people, %dx%d" % size}}
    if batch_diff is not None:
        record["check"]["batch"] = {"batch": batch.describe(), "max_diff_vs_one_at_a_time": batch_diff}
    mean, std = list(facts.mean), list(facts.std)
    if facts.color == "BGR":  # meta.json states the normalisation per RGB channel
        mean, std = mean[::-1], std[::-1]
    group = _grouping_record(chosen, grouping)
    path = write_bundle(out, model_bytes, input_size=size, stride=plan.stride, batch=batch,
                        skeleton=graph_facts.bundle_skeleton(), input_name=INPUT, output_names=(HEATMAPS, PAFS),
                        mean=mean, std=std, pad_value=facts.pad_value, extra={"import": record}, tar=tar,
                        grouping=group or None)
    load_bundle(path)  # what the device will check, checked now
    return ImportResult(path, fmt, record["preset"], size, plan.stride, graph_facts.bundle_skeleton().name,  # type: ignore[arg-type]
                        diff, group, batch.describe())
