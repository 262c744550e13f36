"""The bundle: written by the host, checked by the device before anything trusts it."""
import dataclasses
import json
import os
import shutil
import tarfile

import pytest

from edge_fixtures import make_bundle, tiny_pose_onnx
from openpose_plus.edge.bundle import (FORMAT_VERSION, BundleError, load_bundle, sha256_file,
                                       write_bundle)
from openpose_plus.edge.skeleton import COCO18, Skeleton


@pytest.fixture(scope="module")
def model_bytes():
    return tiny_pose_onnx(96, 64)


def _write(tmp_path, model_bytes, **kw):
    args = dict(input_size=(96, 64), stride=8, skeleton=COCO18, training_config={"lr": 1e-3},
                accuracy={"fp32": {"ap": 0.61}, "int8": {"ap": 0.6}})
    args.update(kw)
    return write_bundle(tmp_path / "b", model_bytes, **args)


def test_directory_round_trip_keeps_every_field(tmp_path, model_bytes):
    path = _write(tmp_path, model_bytes, int8_model=model_bytes, calibration_cache=b"TRT-8601-EntropyCalibration2\n")
    b = load_bundle(path)
    assert (b.input_width, b.input_height, b.stride) == (96, 64, 8)
    assert (b.map_width, b.map_height) == (12, 8)
    assert b.skeleton == COCO18
    assert (b.heatmaps_name, b.pafs_name, b.input_name) == ("heatmaps", "pafs", "image")
    assert b.meta["format_version"] == FORMAT_VERSION
    assert b.meta["normalisation"]["in_graph"] is True
    assert b.accuracy == {"fp32": {"ap": 0.61}, "int8": {"ap": 0.6}}
    assert len(b.training_config_digest) == 64
    assert b.precisions == ("fp32", "fp16", "int8")
    assert b.model_path("int8").endswith("model.int8.onnx")
    assert b.model_path("fp16").endswith("model.onnx")
    assert b.model_sha256("fp32") == sha256_file(os.path.join(path, "model.onnx"))
    assert open(b.calibration_cache_path, "rb").read().startswith(b"TRT-")
    assert oct(os.stat(path).st_mode & 0o777) == "0o755"


def test_tar_round_trip(tmp_path, model_bytes):
    path = _write(tmp_path, model_bytes, tar=True)
    assert path.endswith(".tar") and os.path.isfile(path)
    b = load_bundle(path)
    assert b.skeleton == COCO18 and b.source == path
    assert open(b.model_path(), "rb").read() == model_bytes


def test_custom_skeleton_round_trips(tmp_path):
    sk = Skeleton("hand3", ("wrist", "knuckle", "tip"), ((0, 1), (1, 2)))
    path = make_bundle(tmp_path, skeleton=sk)
    assert load_bundle(path).skeleton == sk


def test_newer_format_is_refused_with_a_clear_message(tmp_path, model_bytes):
    path = _write(tmp_path, model_bytes)
    meta_path = os.path.join(path, "meta.json")
    meta = json.load(open(meta_path))
    meta["format_version"] = FORMAT_VERSION + 1
    json.dump(meta, open(meta_path, "w"))
    with pytest.raises(BundleError, match="newer than this runtime"):
        load_bundle(path)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.pop("stride"), "missing 'stride'"),
    (lambda m: m["input"].update(width=100), "not a multiple of stride"),
    (lambda m: m["input"].update(dtype="float32"), "input dtype"),
    (lambda m: m["outputs"].pop("pafs"), "missing 'pafs'"),
    (lambda m: m["normalisation"].update(std=[1, 2]), "normalisation std"),
    (lambda m: m.update(skeleton={"name": "x"}), "skeleton"),
    (lambda m: m.update(format="something-else"), "not an openpose-plus bundle"),
    (lambda m: m["accuracy"].update(fp64={"ap": 1}), "accuracy entry 'fp64'"),
    (lambda m: m.pop("training_config_digest"), "training_config_digest"),
    (lambda m: m["models"].update(int8="model.int8.onnx"), "model.int8.onnx is referenced"),
    (lambda m: m.update(grouping=[0.1]), "'grouping' should be a table"),
    (lambda m: m.update(grouping={"source": "x"}), "grouping 'params' should be a table"),
    (lambda m: m.update(grouping={"params": {"min_parts": [3]}}), "grouping parameter 'min_parts' = \\[3\\]"),
])
def test_bad_meta_fields_are_named(tmp_path, model_bytes, edit, message):
    path = _write(tmp_path, model_bytes)
    meta_path = os.path.join(path, "meta.json")
    meta = json.load(open(meta_path))
    edit(meta)
    json.dump(meta, open(meta_path, "w"))
    with pytest.raises(BundleError, match=message):
        load_bundle(path)


def test_altered_file_fails_its_checksum(tmp_path, model_bytes):
    path = _write(tmp_path, model_bytes)
    model = os.path.join(path, "model.onnx")
    data = bytearray(open(model, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(model, "wb").write(bytes(data))
    with pytest.raises(BundleError, match="model.onnx checksum mismatch"):
        load_bundle(path)
    assert load_bundle(path, verify=False)  # sizes agree: only the checksum sees it


def test_truncated_and_missing_files_are_named(tmp_path, model_bytes):
    path = _write(tmp_path, model_bytes)
    model = os.path.join(path, "model.onnx")
    with open(model, "r+b") as f:
        f.truncate(100)
    with pytest.raises(BundleError, match="model.onnx is 100 bytes.*truncated"):
        load_bundle(path)
    os.unlink(model)
    with pytest.raises(BundleError, match="model.onnx is missing"):
        load_bundle(path)
    os.unlink(os.path.join(path, "meta.json"))
    with pytest.raises(BundleError, match="no meta.json"):
        load_bundle(path)


def test_corrupt_meta_json(tmp_path, model_bytes):
    path = _write(tmp_path, model_bytes)
    open(os.path.join(path, "meta.json"), "w").write("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(path)


def test_truncated_tar_is_a_clear_error(tmp_path, model_bytes):
    path = _write(tmp_path, model_bytes, tar=True)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(BundleError, match="(not a readable tar|truncated|missing)"):
        load_bundle(path)


def test_tar_with_paths_outside_the_bundle_is_refused(tmp_path, model_bytes):
    good = _write(tmp_path, model_bytes)
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as t:
        for name in os.listdir(good):
            t.add(os.path.join(good, name), arcname=name)
        t.add(os.path.join(good, "meta.json"), arcname="../escape.json")
    with pytest.raises(BundleError, match="unexpected member"):
        load_bundle(str(evil))
    assert not (tmp_path / "escape.json").exists()


def test_missing_bundle_and_bad_arguments(tmp_path, model_bytes):
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nothing")
    with pytest.raises(BundleError, match="multiples of the stride"):
        write_bundle(tmp_path / "x", model_bytes, input_size=(100, 64), stride=8)
    with pytest.raises(BundleError, match="unknown precision"):
        write_bundle(tmp_path / "x", model_bytes, input_size=(96, 64), stride=8, accuracy={"fp8": {}})
    assert not (tmp_path / "x").exists()


def test_rewriting_a_bundle_replaces_it_whole(tmp_path, model_bytes):
    path = _write(tmp_path, model_bytes, int8_model=model_bytes)
    path2 = _write(tmp_path, model_bytes)
    assert path == path2 and not os.path.exists(os.path.join(path, "model.int8.onnx"))
    assert [p for p in os.listdir(tmp_path) if p.startswith(".bundle-")] == []
    shutil.rmtree(path)


def test_grouping_parameters_travel_with_the_bundle(tmp_path, model_bytes):
    from openpose_plus.edge.grouping import GroupParams

    path = _write(tmp_path, model_bytes)
    assert load_bundle(path).group_params() == GroupParams()  # none stored: the defaults
    record = {"params": dataclasses.asdict(GroupParams(peak_threshold=0.05, min_parts=4)), "source": "tune-grouping",
              "AP": 0.18}
    path = write_bundle(tmp_path / "g", model_bytes, input_size=(96, 64), stride=8, grouping=record)
    b = load_bundle(path)
    assert b.grouping == record
    assert b.group_params() == GroupParams(peak_threshold=0.05, min_parts=4)
    assert b.group_params({"min_parts": 2}) == GroupParams(peak_threshold=0.05, min_parts=2)
    with pytest.raises(ValueError, match="unknown grouping parameter 'min_part'"):
        b.group_params({"min_part": 2})
    # A bundle from a runtime with a field this one lacks is not grouped as if it had none.
    meta = json.load(open(os.path.join(path, "meta.json")))
    meta["grouping"]["params"]["merge_fragments"] = 1
    json.dump(meta, open(os.path.join(path, "meta.json"), "w"))
    with pytest.raises(BundleError, match="grouping parameter 'merge_fragments' is unknown to this runtime"):
        load_bundle(path).group_params()
    meta["grouping"]["params"] = {"min_parts": 0}
    json.dump(meta, open(os.path.join(path, "meta.json"), "w"))
    with pytest.raises(BundleError, match="GroupParams.min_parts must be an integer"):
        load_bundle(path).group_params()


def test_a_table_written_before_a_field_existed_groups_as_it_was_scored(tmp_path, model_bytes):
    # The core 0.1's fields only (min_person_score on the mean, as then): the fields added
    # since take what grouping did without them, not today's defaults.
    from openpose_plus.edge.grouping import BEFORE_FIELD, GroupParams

    old = {k: v for k, v in dataclasses.asdict(GroupParams(peak_threshold=0.05, min_parts=4, min_person_score=0.2)).items()
           if k not in BEFORE_FIELD}
    path = write_bundle(tmp_path / "old", model_bytes, input_size=(96, 64), stride=8,
                        grouping={"params": old, "source": "import preset tf-pose"})
    params = load_bundle(path).group_params()
    assert params == GroupParams(**dict(old, person_score="mean", peak_weight=0.0, merge_radius=0.0))
    assert load_bundle(path).group_params({"person_score": "evidence"}).person_score == "evidence"


def test_the_estimator_groups_with_the_bundles_parameters_unless_told(tmp_path):
    pytest.importorskip("onnxruntime")
    from openpose_plus.calibration.report import rewrite_bundle
    from openpose_plus.edge.estimator import PoseEstimator
    from openpose_plus.edge.grouping import GroupParams

    path = make_bundle(tmp_path)
    tuned = GroupParams(peak_threshold=0.3, min_parts=5)
    path = rewrite_bundle(load_bundle(path), {}, None, grouping={"params": dataclasses.asdict(tuned)})
    assert load_bundle(path).accuracy == {"fp32": {"ap": 0.0}}  # the rest of meta.json is kept
    with PoseEstimator(path, backend="onnxruntime") as est:
        assert est.params == tuned and est.grouper.params == tuned
        assert est.workers(1)[0].grouper.params == tuned
    with PoseEstimator(path, backend="onnxruntime", params={"min_parts": 2}) as est:
        assert est.params == GroupParams(peak_threshold=0.3, min_parts=2)
    with PoseEstimator(path, backend="onnxruntime", params=GroupParams()) as est:
        assert est.params == GroupParams()
