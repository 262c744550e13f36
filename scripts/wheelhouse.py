"""`make wheelhouse`: the wheels a fresh install of openpose-plus needs, per interpreter, ahead of time.

tests/test_wheel.py installs the built wheel into fresh virtualenvs, as a user would, but tests
must not download: it installs with ``--no-index --find-links wheelhouse/cpXY``, and this script
fills those folders (``pip download``, run by each target interpreter so that its markers and
wheel tags decide). The requirements are read from pyproject.toml, never repeated here: the
build system's (the wheel is built from the sdist in an isolated environment) and those of each
target's extras.

    python scripts/wheelhouse.py            # every target whose interpreter is found
    python scripts/wheelhouse.py --list     # the targets, their interpreters, their folders

A target whose interpreter is missing is skipped with a line saying so (the test skips too).
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
from typing import Dict, FrozenSet, List, NamedTuple, Optional

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHEELHOUSE = os.environ.get("OPP_WHEELHOUSE", os.path.join(ROOT, "wheelhouse"))


class Target(NamedTuple):
    """One install the wheel test makes: this Python, these extras' requirements, less ``without``."""
    python: str                 # "3.8"
    extras: List[str]
    without: FrozenSet[str]     # requirement names left out (and not downloaded)
    why: str


# JetPack 5 ships Python 3.8, JetPack 6 Python 3.10: the edge extra on each. The host side on
# its oldest Python, 3.9, with every host requirement but TensorFlow: what is checked there
# (the config reader, the TF-free modules, the commands' table) does not import it, and
# TensorFlow is ~0.5 GB to download and ~1.5 GB to install per run. `calib` is not there:
# it needs onnxruntime>=1.32, which has no wheel for Python < 3.11.
TARGETS = [Target("3.8", ["edge"], frozenset(), "JetPack 5's Python, the edge runtime"),
           Target("3.10", ["edge"], frozenset(), "JetPack 6's Python, the edge runtime"),
           Target("3.9", ["train-cpu", "yaml"], frozenset({"tensorflow", "tensorflow-cpu"}),
                  "the oldest host Python, host requirements less TensorFlow")]


def folder(python: str) -> str:
    """The wheelhouse of one interpreter, e.g. wheelhouse/cp38."""
    return os.path.join(WHEELHOUSE, "cp" + python.replace(".", ""))


def interpreter(python: str) -> Optional[str]:
    """A working ``pythonX.Y``: pyenv's newest X.Y.*, else one on PATH (pyenv shims may not run)."""
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = glob.glob(os.path.join(pyenv, "versions", python + ".*", "bin", "python" + python))
    found.sort(key=lambda p: [int(v) for v in re.findall(r"\d+", p.split("/versions/")[1].split("/")[0])],
               reverse=True)
    on_path = shutil.which("python" + python)
    for exe in found + ([on_path] if on_path else []):
        try:
            out = subprocess.run([exe, "-c", "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=60)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == python:
            return exe
    return None


def name(requirement: str) -> str:
    """The project name a requirement string starts with, normalised (PEP 503)."""
    return re.sub(r"[-_.]+", "-", re.match(r"\s*([A-Za-z0-9._-]+)", requirement).group(1)).lower()


def build_requirements() -> List[str]:
    """What building the wheel from the sdist installs into its isolated environment."""
    return list(_pyproject()["build-system"]["requires"])


def requirements(target: Target) -> List[str]:
    """pyproject's dependencies and the target's extras' requirements, less ``target.without``."""
    project = _pyproject()["project"]
    reqs = list(project.get("dependencies", []))
    optional: Dict[str, List[str]] = project.get("optional-dependencies", {})
    for extra in target.extras:
        if extra not in optional:
            raise SystemExit("wheelhouse: pyproject.toml has no extra %r" % extra)
        reqs += optional[extra]
    return [r for r in reqs if name(r) not in target.without]


def _pyproject() -> dict:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def download(target: Target) -> bool:
    exe = interpreter(target.python)
    if exe is None:
        print("wheelhouse: no Python %s here (pyenv install %s): its wheel test will skip"
              % (target.python, target.python), file=sys.stderr)
        return True
    dest = folder(target.python)
    os.makedirs(dest, exist_ok=True)
    print("wheelhouse: Python %s, %s -> %s" % (target.python, target.why, dest), file=sys.stderr)
    cmd = [exe, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--only-binary=:all:", "-d", dest]
    # Two resolutions: the build's isolated environment and the install are separate ones.
    return all(subprocess.run(cmd + reqs).returncode == 0
               for reqs in (build_requirements(), requirements(target)))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--list", action="store_true", help="print the targets and stop")
    args = parser.parse_args(argv)
    if args.list:
        for t in TARGETS:
            print("%-5s %-16s %-45s %s" % (t.python, "+".join(t.extras), interpreter(t.python) or "(missing)",
                                           folder(t.python)))
        return 0
    ok = [download(t) for t in TARGETS]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
