"""Where the IDs go: OpenPose JSON person_id, JSON lines id, drawing, the estimator, the
pipeline (track stage, metrics), the daemon's [tracking] config and ``run --no-track``."""
import json
import pathlib

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from openpose_plus.edge.draw import draw_poses, id_colour
from openpose_plus.edge.openpose_json import to_openpose_json
from openpose_plus.edge.poses import Poses
from openpose_plus.edge.service.config import ConfigError, parse_config, tracking_option
from openpose_plus.edge.sinks import JsonLinesSink, Result
from openpose_plus.edge.skeleton import COCO18

REPO = pathlib.Path(__file__).resolve().parents[1]
DEMO = REPO / "models" / "demo"
needs_demo = pytest.mark.skipif(not (DEMO / "meta.json").is_file(),
                                reason="no shipped demo bundle at models/demo/ (`make demo-model` trains one)")


def tracked(ids=(7, -1)):
    kp = np.zeros((len(ids), 18, 3), np.float32)
    for n in range(len(ids)):
        kp[n, :, 0] = np.linspace(40, 60, 18) + 80 * n
        kp[n, :, 1] = np.linspace(20, 100, 18)
        kp[n, :, 2] = 0.9
    return Poses(kp, np.full(len(ids), 0.8, np.float32), COCO18, ids=np.array(ids))


def test_poses_ids_are_checked_and_carried():
    p = tracked()
    assert p.ids.dtype == np.int32 and "ids=[7, -1]" in repr(p)
    assert Poses(p.keypoints, p.scores, COCO18).ids is None
    with pytest.raises(ValueError, match="ids"):
        Poses(p.keypoints, p.scores, COCO18, ids=np.array([1]))
    with pytest.raises(ValueError, match="ids"):
        Poses(p.keypoints, p.scores, COCO18, ids=np.array([1.5, 2.0]))
    from openpose_plus.edge.geometry import Letterbox

    moved = p.to_image(Letterbox.fit(320, 240, 160, 120), 8)
    assert moved.ids.tolist() == [7, -1]


def test_openpose_json_person_id():
    people = to_openpose_json(tracked())["people"]
    assert [q["person_id"] for q in people] == [[7], [-1]]
    untracked = Poses(tracked().keypoints, tracked().scores, COCO18)
    assert [q["person_id"] for q in to_openpose_json(untracked)["people"]] == [[-1], [-1]]


def test_json_lines_carry_the_id(tmp_path):
    path = tmp_path / "out.jsonl"
    sink = JsonLinesSink(str(path))
    sink.open()
    sink.handle(Result(0, 1.0, tracked(), None, COCO18))
    sink.handle(Result(1, 2.0, Poses(tracked().keypoints, tracked().scores, COCO18), None, COCO18))
    sink.close()
    first, second = [json.loads(line) for line in path.read_text().splitlines()]
    assert [q["id"] for q in first["people"]] == [7, -1]
    assert "id" not in second["people"][0]  # untracked poses say nothing about IDs


def test_drawing_colours_each_id_and_writes_it():
    img = np.zeros((120, 200, 3), np.uint8)
    draw_poses(img, tracked(ids=(3, 4)), COCO18, thickness=2)
    for tid in (3, 4):
        assert (img.reshape(-1, 3) == id_colour(tid)).all(axis=1).sum() > 30
    assert id_colour(3) != id_colour(4)
    bgr = np.zeros_like(img)
    draw_poses(bgr, tracked(ids=(3, 4)), COCO18, thickness=2, bgr=True)
    assert (bgr.reshape(-1, 3) == id_colour(3)[::-1]).all(axis=1).sum() > 30
    # The label: dark box, text in the ID's colour, above the head (topmost part at y=20).
    assert (img[:20] == id_colour(3)).all(axis=-1).any()
    far = tracked(ids=(1,))
    far.keypoints[0, :, :2] = 1e9  # far outside: drawn nowhere, no crash
    draw_poses(np.zeros((50, 50, 3), np.uint8), far, COCO18)


def test_config_tracking_section():
    base = {"model": {"bundle": "b"}, "source": {"uri": "synthetic://"}}
    assert tracking_option(parse_config(base)) == {}  # on, with the defaults
    cfg = parse_config(dict(base, tracking={"enabled": True, "max_age": 2.0}))
    assert tracking_option(cfg) == {"max_age": 2.0}
    assert tracking_option(parse_config(dict(base, tracking={"enabled": False}))) is False
    for bad, why in (({"max_agee": 1}, "tracking.max_agee: unknown key"), ({"enabled": "no"}, "tracking.enabled"),
                     ({"max_age": -1.0}, "max_age"), ("on", "tracking: must be a table")):
        with pytest.raises(ConfigError, match=why):
            parse_config(dict(base, tracking=bad))


@needs_demo
def test_the_estimator_tracks_when_asked():
    from openpose_plus.edge.estimator import PoseEstimator
    from openpose_plus.edge.synthetic.scene import MovingScene

    scene = MovingScene(320, 240, 2, seed=5)
    with PoseEstimator(str(DEMO), backend="onnxruntime", threads=1, track=True) as est:
        ids = [est.infer(scene.frame(i)[0], timestamp=i / 30).ids for i in range(8)]
        assert ids[-1] is not None and (ids[-1] >= 1).any()
        frame_ids = [poses.ids for _, poses in est.stream("synthetic://320x240?people=2&seed=5&frames=5")]
        assert len(frame_ids) == 5 and all(i is not None for i in frame_ids)
    with PoseEstimator(str(DEMO), backend="onnxruntime", threads=1) as est:
        assert est.tracker is None and est.infer(scene.frame(0)[0]).ids is None


@needs_demo
def test_the_pipeline_tracks_in_order_and_counts_tracks():
    from openpose_plus.edge.estimator import PoseEstimator
    from openpose_plus.edge.pipeline import STAGES, Pipeline
    from openpose_plus.edge.service.metrics import PipelineMetrics
    from openpose_plus.edge.sources import open_source

    with PoseEstimator(str(DEMO), backend="onnxruntime", threads=1) as est:
        seen = []
        p = Pipeline(est, open_source("synthetic://320x240?people=2&seed=5&frames=30"), [], mode="pipelined",
                     infer_workers=2, track=True, on_frame=lambda r: seen.append((r.index, r.poses.ids, r.timings)))
        p.run()
        assert [i for i, _, _ in seen] == list(range(30))
        assert all(ids is not None for _, ids, _ in seen) and (seen[-1][1] >= 1).any()
        assert "track" in STAGES and "track" in seen[-1][2] and p.summary()["ms"]["track"] > 0
        stats = p.tracker.stats()
        assert stats.births >= 1 and stats.frames == 30
        metrics = {s.name: s.value for f in text_string_to_metric_families(
            __import__("prometheus_client").generate_latest(PipelineMetrics(lambda: p).registry).decode())
            for s in f.samples}
        assert metrics["openpose_plus_tracks"] == stats.live
        assert metrics["openpose_plus_track_births_total"] == stats.births
        assert metrics["openpose_plus_track_deaths_total"] == stats.deaths
        # the shipped model's keypoints scatter more than kappa allows for: the falloff widened
        assert metrics["openpose_plus_track_falloff"] == pytest.approx(stats.falloff) and stats.falloff > 0.1
        plain = Pipeline(est, open_source("synthetic://320x240?people=2&seed=5&frames=3"), [], mode="sequential",
                         on_frame=lambda r: seen.append((r.index, r.poses.ids, r.timings)))
        plain.run()
        assert plain.tracker is None and seen[-1][1] is None


@needs_demo
def test_run_tracks_by_default_and_no_track_turns_it_off(tmp_path):
    from openpose_plus.commands import main

    for flag, expect_ids in (([], True), (["--no-track"], False)):
        out = tmp_path / ("on" if expect_ids else "off")
        rc = main(["run", "synthetic://320x240?people=2&seed=5", "--bundle", str(DEMO), "--frames", "10",
                   "--write-json", str(out), "--quiet"] + flag)
        assert rc == 0
        last = json.loads(sorted(out.iterdir())[-1].read_text())
        ids = [q["person_id"][0] for q in last["people"]]
        assert ids and (any(i >= 1 for i in ids) if expect_ids else all(i == -1 for i in ids))
