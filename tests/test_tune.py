"""Grouping parameters searched on a val set: the search, its bound, and the bundle keeping the winner.

The maps are the val set's ground truth rendered as a network would answer (test_evaluate's
perfect map function): with sound parameters they score AP 1.0, so a search started from bad
ones must find its way back.
"""
from __future__ import annotations

import dataclasses
import json

import pytest

pytest.importorskip("pycocotools")

from openpose_plus.edge.grouping import GroupParams  # noqa: E402
from openpose_plus.evaluation.coco import EvalSettings, load_coco  # noqa: E402
from openpose_plus.evaluation.tune import SEARCH_SPACE, collect_maps, search, tune  # noqa: E402
from test_evaluate import SETTINGS, perfect_map_fn, write_val_set  # noqa: E402


def test_every_searched_field_is_a_group_param_with_valid_candidates():
    fields = {f.name for f in dataclasses.fields(GroupParams)}
    for name, candidates in SEARCH_SPACE:
        assert name in fields, name
        for value in candidates:
            dataclasses.replace(GroupParams(), **{name: value})  # each one a valid setting


def test_the_search_recovers_from_bad_parameters_within_its_bound(tmp_path):
    ann = write_val_set(tmp_path, n_images=3, seed=2)
    settings = EvalSettings(**SETTINGS)
    bad = GroupParams(min_parts=18, peak_threshold=0.95)  # nobody has all 18 parts visible
    result = tune(ann, tmp_path / "val2017", perfect_map_fn(ann, tmp_path / "val2017", settings), settings,
                  start=bad, rounds=2, show_progress=False)
    assert result.start_ap < 0.5 and result.ap == pytest.approx(1.0)
    assert result.params.min_parts < 18 and result.changes()["min_parts"] == result.params.min_parts
    bound = 2 * sum(len(c) for _, c in SEARCH_SPACE)
    assert len(result.trials) <= bound + 1 and result.images == 3
    assert result.network_ms > 0 and result.group_ms > 0
    record = result.record(val="person_keypoints_val2017.json")
    assert record["params"] == dataclasses.asdict(result.params) and record["AP"] == result.ap
    assert record["source"] == "tune-grouping" and record["AP_before"] == result.start_ap


def test_a_new_field_is_one_line_and_an_unknown_one_is_named(tmp_path):
    ann = write_val_set(tmp_path, n_images=2, seed=4)
    settings = EvalSettings(**SETTINGS)
    coco = load_coco(ann)
    records, _ = collect_maps(coco, tmp_path / "val2017", perfect_map_fn(ann, tmp_path / "val2017", settings),
                              settings, show_progress=False)
    seen = []
    result = search(records, coco, settings, GroupParams(min_parts=18), space=[("min_parts", (3, 18))], rounds=3,
                    show_progress=False, on_trial=seen.append)
    # 18 is where it starts (scored already); round 2 meets only settings scored before and ends the search.
    assert [t.changes for t in seen] == [{"min_parts": 3}]
    assert result.params.min_parts == 3 and len(result.trials) == 2
    with pytest.raises(ValueError, match="'min_partz' is not a GroupParams field"):
        search(records, coco, settings, GroupParams(), space=[("min_partz", (3,))], show_progress=False)


def test_too_many_maps_to_keep_are_refused_with_the_way_out(tmp_path):
    from openpose_plus.evaluation.coco import EvalError

    ann = write_val_set(tmp_path, n_images=2)
    settings = EvalSettings(**SETTINGS)
    with pytest.raises(EvalError, match=r"keeping the maps of 2 images takes .* tune on fewer images \(--max-images 1\)"):
        collect_maps(load_coco(ann), tmp_path / "val2017", lambda b: None, settings, show_progress=False,
                     max_bytes=300_000)


def test_tune_grouping_command_writes_the_winner_into_the_bundle(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from edge_fixtures import make_bundle

    from openpose_plus.commands import main
    from openpose_plus.edge.bundle import load_bundle

    write_val_set(tmp_path / "data", n_images=2)
    bundle = make_bundle(tmp_path, width=96, height=64)
    rc = main(["tune-grouping", bundle, "--data", str(tmp_path / "data"), "--rounds", "1", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 2 and out["trials"] >= 1 and out["bundle"] == bundle
    b = load_bundle(bundle)
    assert b.grouping["source"] == "tune-grouping" and b.grouping["AP"] == pytest.approx(out["AP"], abs=1e-4)
    assert b.group_params() == GroupParams(**b.grouping["params"])
    assert b.meta["training_config_digest"] and b.accuracy == {"fp32": {"ap": 0.0}}  # the rest kept
    assert main(["tune-grouping", bundle, "--quiet"]) == 2
    assert "give the val set" in capsys.readouterr().err
    rc = main(["evaluate", bundle, "--data", str(tmp_path / "data"), "--quiet", "--group", "min_parts=5",
               "--out", str(tmp_path / "eval")])
    assert rc == 0
    text = capsys.readouterr().out
    summary = json.loads(text[: text.rindex("}") + 1])
    assert summary["grouping"]["min_parts"] == 5  # told otherwise
    assert summary["grouping"]["peak_threshold"] == b.group_params().peak_threshold  # the bundle's own
    assert summary["ms_per_image"] > 0
    assert main(["evaluate", bundle, "--data", str(tmp_path / "data"), "--group", "min_parts"]) == 1
    assert "want FIELD=VALUE" in capsys.readouterr().err
