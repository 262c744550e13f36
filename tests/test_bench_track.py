"""``bench track``'s scoring (what IDF1, MOTA and switches it reports for known answers) and
the command itself, small."""
import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("motmetrics", reason="motmetrics is not installed (the dev extra)")

from openpose_plus.benches import track as bt  # noqa: E402
from openpose_plus.edge.poses import Poses  # noqa: E402
from openpose_plus.edge.skeleton import COCO18  # noqa: E402
from openpose_plus.edge.synthetic.scene import MovingScene  # noqa: E402


def scene_frames(frames=20):
    scene = MovingScene(640, 360, 3, seed=2, crossing=True)
    return [scene.frame(i)[1] for i in range(frames)], [scene.ids(i) for i in range(frames)]


def as_output(kp, ids):
    return Poses(kp, np.ones(len(kp), np.float32), COCO18, ids=np.asarray(ids))


def test_oks_over_the_unhidden_parts():
    truth = MovingScene(640, 360, 1, seed=1).keypoints(0)[0]
    assert bt.oks(truth, truth) == pytest.approx(1.0)
    hidden = truth.copy()
    hidden[:9, 2] = 1  # hidden parts are not asked for
    guess = truth.copy()
    guess[:9, 2] = 0
    assert bt.oks(hidden, guess) == pytest.approx(1.0) and bt.oks(truth, guess) == pytest.approx(0.5)
    far = truth.copy()
    far[:, :2] += 1000
    assert bt.oks(truth, far) < 1e-6


def test_scores_of_known_answers():
    truths, ids = scene_frames()
    perfect = [as_output(kp, i + 1) for kp, i in zip(truths, ids)]
    r = bt.mot_scores(truths, ids, perfect, 640, 360, 6)
    assert r["idf1"] == pytest.approx(1.0) and r["mota"] == pytest.approx(1.0) and r["num_switches"] == 0
    swapped = [as_output(kp, (i + 1) if f < 10 else (i + 1)[::-1]) for f, (kp, i) in enumerate(zip(truths, ids))]
    r = bt.mot_scores(truths, ids, swapped, 640, 360, 6)
    assert r["num_switches"] >= 2 and r["idf1"] < 0.8
    listed = bt.switches(truths, ids, swapped, 640, 360, 6)
    assert len(listed) == r["num_switches"] and {e["frame"] for e in listed} == {10}
    assert {e["cause"] for e in listed} == {"swap"} and all(e["from"] != e["to"] for e in listed)
    reborn = [as_output(kp, (i + 1) if f < 10 else (i + 100)) for f, (kp, i) in enumerate(zip(truths, ids))]
    assert {e["cause"] for e in bt.switches(truths, ids, reborn, 640, 360, 6)} == {"reborn"}
    unborn = [as_output(kp, -np.ones(len(kp), int)) for kp in truths]
    assert bt.mot_scores(truths, ids, unborn, 640, 360, 6)["mota"] == pytest.approx(0.0)


def test_jitter_and_lag_of_known_answers():
    scene = MovingScene(640, 360, 1, seed=2, crossing=True)  # stays in view for the 40 frames
    truths = [scene.keypoints(i) for i in range(40)]
    same = [as_output(kp, [1]) for kp in truths]
    late = [as_output(truths[max(i - 2, 0)], [1]) for i in range(40)]  # two frames behind
    assert bt.lag_and_error(same, truths, 5) == (pytest.approx(0.0, abs=1e-6), pytest.approx(0.0, abs=1e-4))
    assert bt.lag_and_error(late, truths, 5)[0] == pytest.approx(2.0, abs=0.1)
    still = [as_output(truths[0] + np.float32([[[0.5 * (-1) ** i, 0, 0]]]), [1]) for i in range(40)]
    assert bt.jitter(still, 5) == pytest.approx(0.5, abs=1e-3)


def test_ground_truth_maps_of_the_unhidden_parts_or_of_all():
    # The default maps draw the hidden parts too, as the training targets draw a part COCO
    # labels hidden (v = 1); --in-view-only holds only what is in view.
    truth = MovingScene(640, 360, 1, seed=1).keypoints(0).copy()
    truth[0, 8:14, 2] = 1  # the legs hidden behind someone
    found = {}
    for hidden in (False, True):
        poses = bt.MapPoses(640, 360, 0.0, 0, hidden=hidden)(truth)
        best = int(np.argmax((poses.keypoints[..., 2] > 0).sum(1)))
        found[hidden] = set(np.flatnonzero(poses.keypoints[best, :, 2] > 0).tolist())
    assert found[True] == set(range(COCO18.num_parts))
    assert found[False] == set(range(COCO18.num_parts)) - set(range(8, 14))


@pytest.mark.slow
def test_the_command_runs_and_writes_json(tmp_path):
    out = tmp_path / "track.json"
    strip = tmp_path / "strip.png"
    proc = subprocess.run([sys.executable, "-m", "openpose_plus.commands", "bench", "track", "--frames", "24",
                           "--seeds", "1", "--model-frames", "16", "--repeat", "1", "--json", str(out),
                           "--strip", str(strip)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "| ground-truth maps + noise" in proc.stdout and "per 1,000 person-frames" in proc.stdout
    report = json.loads(out.read_text())
    assert {"identity_maps", "smoothing_maps", "ms_per_frame", "ms_per_frame_with_image",
            "ms_per_frame_with_image_warm"} <= set(report)
    assert report["ms_per_frame"]["20"] > 0 and report["ms_per_frame_with_image"]["20"] > 0
    assert report["ms_per_frame_with_image_warm"]["20"] > 0 and strip.stat().st_size > 1000
