import json
import subprocess
import sys

from openpose_plus import benches, commands
from openpose_plus.commands import bench


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "openpose_plus.commands", *args],
                          capture_output=True, text=True, timeout=120)


def test_help_lists_the_subcommands():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for name in ("info", "bench"):
        assert name in proc.stdout


def test_no_command_prints_help_and_fails():
    proc = run_cli()
    assert proc.returncode == 2 and "COMMAND" in proc.stdout


def test_unknown_command_is_an_error():
    proc = run_cli("frobnicate")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_info_reports_backends_and_why_not():
    proc = run_cli("info", "--json")
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    assert facts["libraries"]["paf C core"]["ok"] is True
    assert facts["backends"]["onnxruntime"]["ok"] is True
    trt = facts["backends"]["tensorrt"]
    assert trt["ok"] is False and trt["detail"]  # says why, on this GPU-less machine
    assert facts["sources"]["synthetic://"]["ok"] is True
    text = run_cli("info")
    assert text.returncode == 0 and "backends" in text.stdout and "tensorrt" in text.stdout


EXPECTED_VERBS = {"bench", "build-engine", "calibrate", "demo", "download-coco", "evaluate", "export", "import",
                  "info", "run", "serve", "synth-data", "train", "tune-grouping"}


def test_every_verb_module_imports_and_has_the_protocol():
    # No table to mistype: the verbs are the package's modules, and each must import here
    # (with only the standard library at its top) and offer HELP, add_arguments and run.
    names = commands.verbs()
    assert EXPECTED_VERBS <= set(names), sorted(EXPECTED_VERBS - set(names))
    for name in names:
        mod = commands.load_verb(name)
        assert isinstance(mod.HELP, str) and mod.HELP, name
        assert callable(mod.add_arguments) and callable(mod.run), name


def test_a_keyword_verb_lives_in_a_module_with_a_trailing_underscore():
    # `import` is a Python keyword: its module is import_.py, and the verb is still `import`.
    assert "import" in commands.verbs() and "import-" not in commands.verbs()
    assert commands.load_verb("import").__name__ == "openpose_plus.commands.import_"
    proc = run_cli("import", "--help")
    assert proc.returncode == 0 and "--preset" in proc.stdout, proc.stderr


def test_help_lists_every_verb():
    proc = run_cli("--help")
    listed = proc.stdout.split("options:")[0]
    for name in commands.verbs():
        assert name in listed, name


def test_every_bench_module_has_the_protocol():
    assert {"group", "pipeline", "backend", "data", "train"} <= set(bench.kinds())
    import importlib

    for kind in bench.kinds():
        try:
            mod = importlib.import_module("openpose_plus.benches." + kind)
        except ModuleNotFoundError as exc:  # a host bench on a machine without TensorFlow
            assert exc.name.split(".")[0] != "openpose_plus", exc
            continue
        assert mod.HELP and callable(mod.add_arguments) and callable(mod.run), kind
    assert benches.__doc__
