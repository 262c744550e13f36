"""The map in docs/architecture.md, enforced: which part may import which.

Every module of every part is read (its AST, lazy imports inside functions included) and each
``openpose_plus`` import it makes is checked against the table below, which is the table of
docs/architecture.md; a test checks that the two say the same.
"""
from __future__ import annotations

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PARTS = {"edge": "edge", "evaluation": "evaluation", "calibration": "calibration",
         "host_training": "host_training", "benches": "benches", "commands": "commands"}
# part -> the parts it may import (itself always)
MAY_IMPORT = {
    "edge": set(),
    "evaluation": {"edge"},
    "calibration": {"edge", "evaluation"},
    "host_training": {"edge", "evaluation"},
    "benches": {"edge", "evaluation", "calibration", "host_training", "commands"},
    "commands": {"edge", "evaluation", "calibration", "host_training", "benches"},
}
# Libraries a part must never import, anywhere in it (lazily included)...
NEVER = {"edge": {"tensorflow", "keras", "tf_keras", "horovod", "tf2onnx", "pycocotools"},
         "evaluation": {"tensorflow", "keras", "tf_keras", "horovod"}}
# ... and libraries it may import only inside a function (where the verb that needs them runs).
NOT_AT_TOP = {"calibration": {"tensorflow", "tf2onnx", "keras", "horovod"},
              "commands": {"tensorflow", "keras", "horovod", "onnx", "onnxruntime", "cv2", "pycocotools"},
              "benches": {"tensorflow", "keras", "horovod"}}


def _modules():
    for part, folder in PARTS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield part, path


def _package_of(part: str, path: pathlib.Path) -> list:
    rel = path.relative_to(ROOT / PARTS[part]).with_suffix("").parts
    pkg = ["openpose_plus", part] + list(rel[:-1])
    return pkg if rel[-1] != "__init__" else pkg


def _imports(part: str, path: pathlib.Path):
    """(module, top_level?) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, id(node) in top
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(part, path)
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            yield mod, id(node) in top


CASES = list(_modules())


@pytest.mark.parametrize("part, path", CASES, ids=[str(p.relative_to(ROOT)) for _, p in CASES])
def test_module_imports_only_what_the_map_allows(part, path):
    bad = []
    for mod, at_top in _imports(part, path):
        head = mod.split(".")
        if head[0] == "openpose_plus" and len(head) > 1:
            other = head[1]
            if other != part and other not in MAY_IMPORT[part]:
                bad.append("%s (the map: %s may import %s)" % (mod, part, sorted(MAY_IMPORT[part]) or "nothing else"))
        elif head[0] in NEVER.get(part, ()):
            bad.append("%s (never in %s)" % (mod, part))
        elif at_top and head[0] in NOT_AT_TOP.get(part, ()):
            bad.append("%s at the top of the module (import it where it is needed)" % mod)
    assert not bad, "%s imports %s" % (path.relative_to(ROOT), "; ".join(bad))


def test_the_architecture_doc_states_the_same_rules():
    text = (ROOT / "docs" / "architecture.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)/` \|[^|]*\|[^|]*\| ([^|]*) \|$", text, re.M))
    assert set(rows) == set(PARTS), sorted(rows)
    for part, allowed in MAY_IMPORT.items():
        stated = set(re.findall(r"`(\w+)`", rows[part]))
        assert stated == allowed, (part, stated, allowed)


def test_verbs_and_a_runs_bookkeeping_load_no_tensorflow():
    # `evaluate BUNDLE` asks host_training.checkpoints whether a path is a training run;
    # that question, and listing the verbs, must work on a machine without TensorFlow.
    import subprocess
    import sys

    code = ("import sys\n"
            "import openpose_plus.commands as c\n"
            "for v in c.verbs(): c.load_verb(v)\n"
            "import openpose_plus.host_training.checkpoints, openpose_plus.host_training.config\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'horovod')]\n"
            "assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
