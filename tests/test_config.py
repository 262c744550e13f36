"""Config: TOML/YAML files, --set overrides, errors that name the key, round trips, digest."""
import importlib.util
import re

import pytest

from openpose_plus.host_training.config import (Config, ConfigError, DEFAULT_AUGMENT_STEPS, add_config_arguments,
                                                config_from_args, load_config)


def test_defaults_without_a_file():
    cfg = load_config()
    assert isinstance(cfg, Config)
    assert (cfg.model.input_height, cfg.model.input_width, cfg.model.stride) == (368, 368, 8)
    assert (cfg.map_height, cfg.map_width) == (46, 46)
    assert cfg.data.train_data == "coco" and cfg.data.coco_dir == "dataset/coco17"
    assert cfg.model.name == "vgg" and cfg.train.train_mode == "single"
    assert cfg.targets.heatmap_sigma == pytest.approx(7.0 / 8.0)
    assert [s["name"] for s in cfg.augment.steps] == [s["name"] for s in DEFAULT_AUGMENT_STEPS]


def test_file_then_overrides(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text("""
[DATA]
train_data = "custom"
your_images = "data/img"
your_annotations = "data/ann.json"
custom_ratio = 0.25

[MODEL]
name = "mobilenet"
input_height = 256
input_width = 320

[TRAIN]
batch_size = 4
mixed_precision = true

[TRAIN.lr_schedule]
kind = "cosine"
warmup_steps = 10

[[AUGMENT.steps]]
name = "flip"
prob = 1.0
""")
    cfg = load_config(path, ["TRAIN.batch_size=16", "MODEL.name=vggtiny", "TRAIN.lr_schedule.decay_steps=500",
                             'TRAIN.output_dir="runs/a b"', "DATA.coco_dir=elsewhere/coco"])
    assert cfg.train.batch_size == 16                      # the override wins over the file
    assert cfg.model.name == "vggtiny"                     # a bare word is taken as a string
    assert cfg.model.input_width == 320 and cfg.map_width == 40
    assert cfg.data.custom_ratio == 0.25 and cfg.data.train_data == "custom"
    assert cfg.train.mixed_precision is True
    assert cfg.train.lr_schedule.kind == "cosine" and cfg.train.lr_schedule.warmup_steps == 10
    assert cfg.train.lr_schedule.decay_steps == 500
    assert cfg.train.output_dir == "runs/a b" and cfg.data.coco_dir == "elsewhere/coco"
    assert cfg.augment.steps == [{"name": "flip", "prob": 1.0}]


def test_override_sets_lists_of_tables():
    cfg = load_config(None, ['AUGMENT.steps=[{name = "flip"}, {name = "blur", prob = 1.0}]'])
    assert [s["name"] for s in cfg.augment.steps] == ["flip", "blur"]
    assert load_config(None, ["AUGMENT.steps=[]"]).augment.steps == []


@pytest.mark.parametrize("override, message", [
    ("TRAIN.batch_size=-1", "TRAIN.batch_size: must be a positive integer, got -1"),
    ("TRAIN.batch_size=0", "TRAIN.batch_size: must be a positive integer, got 0"),
    ("TRAIN.batch_size=2.5", "TRAIN.batch_size: must be an integer"),
    ("TRAIN.batch_size=many", "TRAIN.batch_size: must be an integer, got 'many'"),
    ("TRAIN.bogus=1", "TRAIN.bogus: unknown key"),
    ("NOPE.key=1", "NOPE: unknown section"),
    ("MODEL.name=resnet", "MODEL.name: must be one of vgg | vggtiny | mobilenet, got 'resnet'"),
    ("DATA.train_data=imagenet", "DATA.train_data: must be one of coco | custom | coco_and_custom | synthetic"),
    ("TRAIN.train_mode=mpi", "TRAIN.train_mode: must be one of single | parallel"),
    ("DATA.bad_sample=ignore", "DATA.bad_sample: must be one of skip | error"),
    ("DATA.custom_ratio=1.5", "DATA.custom_ratio: must be between 0 and 1"),
    ("TRAIN.mixed_precision=1", "TRAIN.mixed_precision: must be true or false"),
    ("TRAIN.learning_rate=nan", "TRAIN.learning_rate: must be a finite number"),
    ("TRAIN.lr_schedule.kind=linear", "TRAIN.lr_schedule.kind: must be one of constant | step | cosine"),
    ("TRAIN.lr_schedule.oops=1", "TRAIN.lr_schedule.oops: unknown key"),
    ("MODEL.input_height=370", "MODEL.input_height: must be a multiple of MODEL.stride (8), got 370"),
    ("DATA.train_data=custom", "DATA.your_images: required when DATA.train_data is 'custom'"),
    ('AUGMENT.steps=[{name = "twirl"}]', "AUGMENT.steps[0]: unknown step 'twirl'"),
    ('AUGMENT.steps=[{name = "flip", probability = 1.0}]', "AUGMENT.steps[0]: flip: unknown parameter 'probability'"),
    ('AUGMENT.steps=[{name = "flip", prob = 2.0}]', "AUGMENT.steps[0]: flip: prob must be between 0 and 1"),
    ('AUGMENT.steps=[{name = "random_scale", min_scale = 2.0, max_scale = 1.0}]',
     "AUGMENT.steps[0]: random_scale: needs 0 < min_scale <= max_scale"),
    ('AUGMENT.steps=[{name = "crop_pad", center = "left"}]', "AUGMENT.steps[0]: crop_pad: center must be"),
    ('AUGMENT.steps=["flip"]', "AUGMENT.steps[0]: must be a table"),
    ("DATA.synthetic_height=[0.9, 0.4]", "DATA.synthetic_height: must be [min, max] with 0 < min <= max"),
    ("DATA.synthetic_height=[0.5]", "DATA.synthetic_height: must be [min, max]"),
    ("TRAIN.batch_size", "must look like SECTION.key=value"),
    ("batch_size=3", "must look like SECTION.key=value"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("text, message", [
    ("[TRAIN]\nbatch_size = -3\n", r"TRAIN.batch_size: must be a positive integer, got -3 \(in .*c.toml\)"),
    ("[TRAIN]\nbatch_size = \n", "c.toml: not valid TOML"),
    ("[DATA]\nunknown_thing = 1\n", "DATA.unknown_thing: unknown key"),
    ("DATA = 3\n", "DATA: must be a table"),
    (None, "missing.toml: cannot read config file"),
])
def test_file_errors_name_the_key_and_the_file(tmp_path, text, message):
    path = tmp_path / ("missing.toml" if text is None else "c.toml")
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_round_trip_and_digest(tmp_path):
    cfg = load_config(None, ['TRAIN.output_dir="weird \\"quoted\\" dir"', "TRAIN.seed=7", "EVAL.group={threshold = 0.1}",
                             'AUGMENT.steps=[{name = "random_rotate", max_degrees = 12.5}, {name = "flip"}]'])
    path = tmp_path / "resolved.toml"
    path.write_text(cfg.to_toml())
    again = load_config(path)
    assert again == cfg
    assert again.digest() == cfg.digest()
    assert re.fullmatch(r"[0-9a-f]{64}", cfg.digest())  # sha256 hex
    for key in ("TRAIN.lr_schedule.warmup_steps=3", 'AUGMENT.steps=[{name = "flip"}]', "EVAL.group={threshold = 0.2}"):
        assert cfg.replace([key]).digest() != cfg.digest(), "%s left the digest unchanged" % key  # nested keys count
    assert load_config(None, ["TRAIN.seed=8"]).digest() != load_config(None, ["TRAIN.seed=7"]).digest()
    assert load_config().digest() == load_config().digest()


def test_replace_applies_overrides_to_a_loaded_config():
    cfg = load_config(None, ["TRAIN.batch_size=3"])
    other = cfg.replace(["TRAIN.steps=5"])
    assert (other.train.batch_size, other.train.steps) == (3, 5)
    assert cfg.train.steps != 5  # the original is untouched


def test_argparse_helpers(tmp_path):
    import argparse

    path = tmp_path / "c.toml"
    path.write_text("[MODEL]\nname = \"mobilenet\"\n")
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(["--config", str(path), "--set", "TRAIN.batch_size=2", "--set", "MODEL.stride=4"])
    cfg = config_from_args(args)
    assert (cfg.model.name, cfg.train.batch_size, cfg.model.stride, cfg.map_height) == ("mobilenet", 2, 4, 92)


def test_yaml_needs_pyyaml_or_reads_it(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("TRAIN:\n  batch_size: 5\nMODEL:\n  name: mobilenet\n")
    if importlib.util.find_spec("yaml") is None:
        with pytest.raises(ConfigError, match="reading YAML needs pyyaml"):
            load_config(path)
    else:
        cfg = load_config(path)
        assert (cfg.train.batch_size, cfg.model.name) == (5, "mobilenet")
