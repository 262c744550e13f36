"""Arguments several verbs share are declared once (commands/_options.py), with the runtime's names."""
import argparse
import os
import re

import pytest

from openpose_plus.commands import _options, load_verb, verbs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_names_are_the_runtimes():
    from openpose_plus.edge.backends import BACKENDS
    from openpose_plus.edge.bundle import PRECISIONS

    assert _options.PRECISIONS == PRECISIONS and _options.BACKENDS == BACKENDS


def test_precision_is_declared_only_by_the_helper():
    found = []
    for folder in ("commands", "benches", "calibration", "edge", "host_training"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
            for name in files:
                if name.endswith(".py") and name != "_options.py":
                    text = open(os.path.join(dirpath, name), encoding="utf-8").read()
                    if re.search(r"add_argument\(\s*\"--(precision|backend)\"", text):
                        found.append(os.path.join(dirpath, name))
    assert found == []


@pytest.mark.parametrize("verb, argv, want", [
    ("run", ["synthetic://", "--bundle", "b"], "auto"),
    ("build-engine", ["b"], "fp16"),
    ("evaluate", ["b"], "fp32"),
    ("calibrate", ["b", "--images", "i", "--precision", "int8"], "int8"),
])
def test_each_verb_keeps_its_choices_and_default(verb, argv, want):
    parser = argparse.ArgumentParser()
    load_verb(verb).add_arguments(parser)
    assert parser.parse_args(argv).precision == want
    with pytest.raises(SystemExit):
        parser.parse_args(argv + ["--precision", "fp8"])


def test_calibrate_requires_it_and_evaluate_refuses_fp16(capsys):
    for verb, argv in (("calibrate", ["b", "--images", "i"]), ("evaluate", ["b", "--precision", "fp16"])):
        parser = argparse.ArgumentParser()
        load_verb(verb).add_arguments(parser)
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
    assert "--precision" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown precision"):
        _options.add_precision(argparse.ArgumentParser(), choices=("fp8",))
    assert "_options" not in [v.replace("-", "_") for v in verbs()]  # a helper, not a verb


def test_one_gstreamer_probe_for_sources_and_info():
    pytest.importorskip("cv2")
    from openpose_plus.commands.info import _opencv
    from openpose_plus.edge import environment as env
    from openpose_plus.edge.sources import availability

    gst = env.opencv_has_gstreamer()
    assert ("(GStreamer)" in _opencv().detail) == gst
    csi = {s.name: s for s in availability()}["csi://"]
    assert csi.ok or ("GStreamer" in csi.detail and not gst)


@pytest.mark.parametrize("text, kwargs, want", [
    ("640x480", {}, (640, 480)),
    ("368X368", {"multiple": 8}, (368, 368)),
    ("10x10", {"minimum": 32}, "at least 32x32"),
    ("100x64", {"multiple": 8}, "multiples of 8"),
    ("640x", {}, "must look like 640x480"),
    ("1x2x3", {}, "must look like 640x480"),
])
def test_one_size_parser(text, kwargs, want):
    if isinstance(want, tuple):
        assert _options.parse_size(text, **kwargs) == want
    else:
        with pytest.raises(ValueError, match=want):
            _options.parse_size(text, **kwargs)
        with pytest.raises(argparse.ArgumentTypeError, match=want):
            _options.size_type(**kwargs)(text)


def test_counts_are_refused_at_parsing_with_the_rule(capsys):
    # One argparse type for every verb's counts (_options.at_least): a bad one exits 2
    # (argparse's usage error) before any work starts, and says the rule it breaks.
    from openpose_plus.commands import main

    for argv, said in ((["tune-grouping", "b", "--rounds", "0"], "--rounds: must be 1 or more, got '0'"),
                       (["bench", "group", "--max-images", "-1"], "--max-images: must be 0 or more"),
                       (["bench", "soak", "--minutes", "0"], "--minutes: must be more than 0"),
                       (["bench", "train", "--stages", "x"], "--stages: must be a number, 0 or more")):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2 and said in capsys.readouterr().err, argv
    assert _options.at_least(0, float)("0.5") == 0.5 and _options.at_least(1)("3") == 3
