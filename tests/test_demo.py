"""``openpose-plus demo``: with a bundle (the network through the real pipeline) and without."""
import json
import os

import pytest

from edge_fixtures import make_bundle
from openpose_plus.commands import main

pytest.importorskip("onnxruntime")


def _outputs(out, frames):
    names = sorted(os.listdir(out / "json"))
    assert len(names) == frames
    for n in names:
        assert "people" in json.loads((out / "json" / n).read_text())
    assert (out / "demo.png").stat().st_size > 0 and (out / "demo.mp4").stat().st_size > 0


def test_without_a_model_ground_truth_maps_stand_in_and_people_are_recovered(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "--no-model", "--frames", "8", "--size", "320x240", "--people", "2", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    _outputs(out, 8)
    assert "ground-truth maps stand in" in text
    line = next(l for l in text.splitlines() if l.startswith("recovered"))
    assert float(line.split()[1]) >= 50.0  # two walkers, mostly in view, from exact maps


def test_with_a_bundle_the_pipeline_runs_and_reports_stages_and_accuracy(tmp_path, capsys):
    bundle = make_bundle(tmp_path)
    out = tmp_path / "demo"
    rc = main(["demo", "--bundle", bundle, "--frames", "6", "--size", "192x128", "--people", "2",
               "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    _outputs(out, 6)
    assert "onnxruntime" in text and "input 96x64" in text
    ms = next(l for l in text.splitlines() if l.startswith("ms per frame"))
    for stage in ("capture", "preprocess", "infer", "group", "sinks"):
        assert stage in ms
    assert any(l.startswith("recovered") for l in text.splitlines())


def test_a_bad_bundle_is_refused_with_the_reason(tmp_path, capsys):
    rc = main(["demo", "--bundle", str(tmp_path / "missing"), "--frames", "2", "--out", str(tmp_path / "o")])
    assert rc == 1 and "missing" in capsys.readouterr().out


def test_a_bad_height_range_is_refused(tmp_path, capsys):
    rc = main(["demo", "--no-model", "--height", "0.9", "0.3", "--frames", "2", "--out", str(tmp_path / "o")])
    assert rc == 2 and "--height" in capsys.readouterr().out
