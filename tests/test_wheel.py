"""The install a user is told to run, tried as a user would, away from the source tree.

Every other test runs on the editable install, which maps folders and hides a package that the
wheel leaves out. Here the sdist is built from a copy of this tree (only the files git would
commit), a wheel is built from that sdist by each target interpreter (so the sdist must hold
everything the build needs), the wheel's contents are checked against the tree, and the wheel
is installed into a fresh virtualenv and run from an empty folder:

- the edge extra on Python 3.8 and 3.10 (JetPack 5 and 6): ``openpose-plus --help`` (every verb
  module imports), ``info``, ``run synthetic:// --bundle models/demo --frames 30 --write-json``
  and the public API import;
- the host requirements less TensorFlow on Python 3.9: the config reader on models/demo.toml
  (a TOML file on a Python without ``tomllib``) and the TF-free modules. TensorFlow is left out
  because nothing checked here imports it and it would add ~0.5 GB to the wheelhouse and
  ~1.5 GB and a minute to every run; that it resolves with the rest is TensorFlow's business
  and ``make setup``'s.

Nothing is downloaded: builds and installs use ``--no-index --find-links wheelhouse/cpXY``,
filled ahead of time by ``make wheelhouse`` (scripts/wheelhouse.py). A target whose interpreter
or wheelhouse is missing skips and says which.
"""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import wheelhouse  # noqa: E402  (scripts/wheelhouse.py: the targets and their folders)

pytestmark = [pytest.mark.slow, pytest.mark.toolchain]  # minutes; other Pythons, a C compiler


def _parts() -> dict:
    """setup.py's folder -> import name table, read without running setup()."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PARTS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no PARTS table")


def _clean_env(**extra) -> dict:
    """No pip configuration, no PYTHONPATH, no active virtualenv: only what the command says."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV", "CONDA"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1")
    env.update(extra)
    return env


def _run(cmd, cwd, timeout=600, **env) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], cwd=str(cwd), env=_clean_env(**env), capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, "%s failed (%d):\n%s\n%s" % (
        " ".join(map(str, cmd)), result.returncode, result.stdout[-3000:], result.stderr[-3000:])
    return result


def _source_files() -> list:
    """The files git would commit (tracked, or new and not ignored), relative to the root."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=str(ROOT),
                             capture_output=True, check=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the files a release would hold are unknown")
    return sorted(p for p in out.split("\0") if p and (ROOT / p).is_file())


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    """The sdist, built from a copy of the tree by setuptools' own hook (no isolation, no network)."""
    src = tmp_path_factory.mktemp("src")
    files = _source_files()
    for rel in files:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(str(ROOT / rel), str(src / rel))
    dist = tmp_path_factory.mktemp("sdist")
    _run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; print(b.build_sdist(sys.argv[1]))",
          dist], cwd=src)
    (path,) = dist.glob("*.tar.gz")
    with tarfile.open(str(path)) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    # What building needs, and every file under a package folder, is in it.
    needed = {"setup.py", "pyproject.toml", "README.md"} | {f for f in files if f.startswith("cffi_build/")}
    needed |= {f for f in files if f.split("/")[0] in _parts()}
    assert not needed - names, "the sdist lacks %s" % sorted(needed - names)
    return path, files


def _check_wheel(whl: Path, files: list) -> None:
    """Every package, every file under a package folder, the C extension and the command."""
    with zipfile.ZipFile(str(whl)) as z:
        names = set(z.namelist())
        meta = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = z.read(meta).decode()
    missing = []
    for folder, package in _parts().items():
        base = package.replace(".", "/")
        for rel in files:
            top, _, inner = rel.partition("/")
            if top == folder and not rel.endswith(".pyc"):
                if "%s/%s" % (base, inner) not in names:
                    missing.append(rel)
    assert not missing, "the wheel lacks %s" % missing
    ext = [n for n in names if n.startswith("openpose_plus/edge/_paf.") and n.endswith(".so")]
    assert ext, "the wheel has no C extension (openpose_plus/edge/_paf*.so)"
    assert "openpose-plus = openpose_plus.commands:main" in entry_points


def _interpreter_and_wheelhouse(target):
    exe = wheelhouse.interpreter(target.python)
    if exe is None:
        pytest.skip("no Python %s on this machine (pyenv install %s)" % (target.python, target.python))
    wh = Path(wheelhouse.folder(target.python))
    if not wh.is_dir() or not any(wh.glob("*.whl")):
        pytest.skip("%s is empty: make wheelhouse downloads what the install needs" % wh)
    return exe, wh


def _install(target, sdist, tmp_path):
    """Build the wheel from the sdist with the target's Python, install it into a fresh venv."""
    exe, wh = _interpreter_and_wheelhouse(target)
    path, files = sdist
    offline = ["--no-index", "--find-links", wh, "--no-cache-dir"]
    _run([exe, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "dist"] + offline + [path], cwd=tmp_path)
    (whl,) = (tmp_path / "dist").glob("openpose_plus-*.whl")
    assert "-cp%s-" % target.python.replace(".", "") in whl.name, whl.name
    _check_wheel(whl, files)
    # The venv gets no pip of its own (ensurepip costs ~10 s): the interpreter's pip installs
    # into it, and skips byte-compiling (sympy alone is ~10 s of it); neither is under test.
    venv = tmp_path / "venv"
    _run([exe, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    if target.without:  # the requirements themselves, less those left out (scripts/wheelhouse.py)
        reqs = [str(whl)] + wheelhouse.requirements(target)
    else:
        reqs = ["%s[%s]" % (whl, ",".join(target.extras))]
    _run([exe, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", "--no-compile"] + offline + reqs,
         cwd=tmp_path)
    away = tmp_path / "elsewhere"  # no source tree in the working directory or on the path
    away.mkdir()
    return venv / "bin", away


EDGE = [t for t in wheelhouse.TARGETS if t.extras == ["edge"]]
HOST = [t for t in wheelhouse.TARGETS if t.extras != ["edge"]]


@pytest.mark.parametrize("target", EDGE, ids=["py" + t.python for t in EDGE])
def test_the_edge_wheel_installs_and_runs(target, sdist, tmp_path):
    bin_, away = _install(target, sdist, tmp_path)
    where = _run([bin_ / "python", "-c", "import openpose_plus.edge as e; from openpose_plus.edge import "
                  "PoseEstimator, group; print(e.__file__)"], cwd=away).stdout.strip()
    assert where.startswith(str(tmp_path / "venv")), "imported from %s, not the installed wheel" % where
    verbs = _run([bin_ / "openpose-plus", "--help"], cwd=away).stdout
    for verb in ("run", "serve", "info", "build-engine", "train"):
        assert verb in verbs
    info = _run([bin_ / "openpose-plus", "info"], cwd=away).stdout
    assert "onnxruntime" in info
    out = tmp_path / "json"
    _run([bin_ / "openpose-plus", "run", "synthetic://", "--bundle", ROOT / "models" / "demo", "--frames", "30",
          "--write-json", out, "--quiet"], cwd=away)
    frames = sorted(out.glob("*_keypoints.json"))
    assert len(frames) == 30
    people = [len(json.loads(f.read_text())["people"]) for f in frames]
    assert sum(people) > 0, "30 frames of synthetic people and nobody found"


@pytest.mark.parametrize("target", HOST, ids=["py" + t.python for t in HOST])
def test_the_host_wheel_reads_its_config_and_imports(target, sdist, tmp_path):
    bin_, away = _install(target, sdist, tmp_path)
    code = ("import sys\n"
            "from openpose_plus.host_training.config import load_config\n"
            "cfg = load_config(sys.argv[1], overrides=['TRAIN.batch_size=3'])\n"
            "assert cfg.model.name == 'mobilenet' and cfg.train.batch_size == 3, cfg\n"
            "import openpose_plus.evaluation.coco, openpose_plus.host_training.data.download\n"
            "try:\n"
            "    import tensorflow\n"
            "except ImportError:\n"
            "    pass\n"
            "else:\n"
            "    raise SystemExit('tensorflow is installed: this check claims to run without it')\n"
            "print(cfg.digest())\n")
    digest = _run([bin_ / "python", "-c", code, ROOT / "models" / "demo.toml"], cwd=away).stdout.strip()
    assert len(digest) == 64 and int(digest, 16) != 0
    verbs = _run([bin_ / "openpose-plus", "--help"], cwd=away).stdout
    for verb in ("train", "export", "evaluate", "calibrate", "synth-data"):
        assert verb in verbs
