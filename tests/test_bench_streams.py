"""``openpose-plus bench streams``: its figures exist and hold together (on a tiny model, briefly)."""
from __future__ import annotations

import json

import pytest

from edge_fixtures import make_bundle

pytest.importorskip("onnx")


@pytest.mark.slow
def test_bench_streams_reports_batched_separate_and_the_limit(tmp_path, capsys):
    from openpose_plus.commands import main

    bundle = make_bundle(tmp_path)  # batch 1: the bench makes its dynamic copy
    assert main(["bench", "streams", bundle, "--streams", "1", "2", "--frames", "12", "--seconds", "0.6",
                 "--rate", "10", "--repeat", "1", "--source", "synthetic://96x64?people=1", "--distinct", "2",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bundle"].startswith("a dynamic-batch copy made here")
    two = out["results"]["2"]
    assert two["limit"][0]["fps"] > 0 and two["limit"][0]["cpu_ms"] > 0
    flat = two["batched"][0]
    assert flat["frames"] == 12 and flat["dropped"] == 0 and 1.0 <= flat["mean_batch"] <= 2.0
    assert flat["vs_limit"] > 0 and flat["vs_separate_cpu"] > 0
    assert two["separate"][0]["frames"] == 12
    paced = two["batched_rate"][0]
    assert paced["frames"] + paced["dropped"] == 12 and 0 < paced["p50_ms"] <= paced["p99_ms"]
    assert two["separate_rate"][0]["p99_ms"] > 0
    assert any(v.startswith("N=2: batched") for v in out["verdicts"])


def test_bench_streams_refuses_a_fixed_batch_and_bad_counts(tmp_path, capsys):
    import numpy as np

    from edge_fixtures import tiny_pose_onnx
    from openpose_plus.commands import main
    from openpose_plus.edge.batch import BatchSpec, batched_model
    from openpose_plus.edge.bundle import write_bundle

    assert main(["bench", "streams", make_bundle(tmp_path), "--streams", "0"]) == 2
    assert "must be positive" in capsys.readouterr().err
    spec = BatchSpec(3, False)
    fixed = write_bundle(str(tmp_path / "fixed"), batched_model(tiny_pose_onnx(), spec, "image",
                                                                [np.zeros((64, 96, 3), np.uint8)])[0],
                         input_size=(96, 64), stride=8, batch=spec)
    assert main(["bench", "streams", fixed, "--source", "synthetic://96x64", "--distinct", "1"]) == 1
    assert "has a fixed batch of 3" in capsys.readouterr().err
