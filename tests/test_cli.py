import json
import subprocess
import sys

from openpose_plus.edge import cli


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "openpose_plus.edge.cli", *args],
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


def test_commands_table_points_at_modules_with_the_protocol():
    import importlib
    import importlib.util

    for name, module, _ in cli.COMMANDS:
        if importlib.util.find_spec(module) is None:
            continue  # a part that a later issue adds
        mod = importlib.import_module(module)
        assert callable(mod.add_arguments) and callable(mod.run), name
