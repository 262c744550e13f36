"""The edge runs on a Jetson: Python 3.8 (JetPack 5), and never TensorFlow (what it may import
at all is checked with the rest of the map in test_layout.py)."""
import pathlib
import shutil
import subprocess
import sys

import pytest

EDGE = pathlib.Path(__file__).resolve().parent.parent / "edge"
EDGE_FILES = sorted(EDGE.rglob("*.py"))


def test_edge_source_runs_on_python_3_8():
    vermin = shutil.which("vermin") or str(pathlib.Path(sys.executable).parent / "vermin")
    if not pathlib.Path(vermin).exists():
        pytest.skip("vermin is not installed (make setup installs it)")
    # --eval-annotations off: `from __future__ import annotations` keeps them unevaluated.
    proc = subprocess.run([vermin, "--target=3.8-", "--violations", "--no-tips",
                           "--backport", "typing", "--no-parse-comments", *map(str, EDGE_FILES)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_importing_every_edge_module_loads_no_tensorflow():
    modules = ["openpose_plus.edge." + ".".join(p.relative_to(EDGE).with_suffix("").parts)
               for p in EDGE_FILES if p.name != "__init__.py"]
    code = ("import importlib, sys\n"
            "for m in %r:\n"
            "    importlib.import_module(m)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'horovod')]\n"
            "assert not bad, bad\n" % modules)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
