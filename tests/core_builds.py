"""Other builds of the C grouping core, and a driver that runs one through a Grouper's buffers.

``build_core(name, flags)`` compiles the core's own sources (cffi_build/build_paf.py)
with extra compiler flags under another module name, e.g. ``-DOPP_NO_SIMD_CLONES`` (the
baseline of the SIMD clones) or ``-DOPP_PLAIN_LOOPS`` (the steps without their fast paths),
and loads it. A build is kept under build/test-cores/, named by the hash of everything that
goes into it (the sources, the builder, the flags, the compiler, cffi, the interpreter): a run
after a change to the C core compiles again (and drops the older build), a run after none
(the usual ``make test-fast``) does not. :class:`Core` groups maps through such a build and returns everything it
wrote, as bytes, so two builds compare bit for bit.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import List, Sequence

import cffi
import numpy as np

from openpose_plus.edge import grouping
from openpose_plus.edge.grouping import GroupParams, Grouper
from openpose_plus.edge.skeleton import COCO18

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "cffi_build"))
import build_paf  # noqa: E402
from build_paf import make_builder  # noqa: E402

CACHE = ROOT / "build" / "test-cores"


def _compiler() -> str:
    """The C compiler distutils will use, as it names itself (another version may round otherwise)."""
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    try:
        return subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return " ".join(cc)


def _build_key(name: str, flags: Sequence[str]) -> str:
    h = hashlib.sha256()
    for text in (name, *flags, sys.version, sysconfig.get_config_var("EXT_SUFFIX") or "", cffi.__version__,
                 _compiler(), os.environ.get("CC", ""), os.environ.get("CFLAGS", "")):
        h.update(text.encode() + b"\0")
    for path in (*build_paf.SOURCES, *build_paf.HEADERS, build_paf.__file__):
        h.update(Path(path).read_bytes())
    return h.hexdigest()[:16]


def build_core(name: str, flags: Sequence[str]) -> object:
    """The core compiled with ``flags`` as module ``name`` (once for these sources), loaded."""
    where = CACHE / ("%s-%s" % (name, _build_key(name, flags)))
    if not where.is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".%s-" % name, dir=str(CACHE))
        try:
            make_builder(name, list(flags)).compile(tmpdir=staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        try:
            os.rename(staging, str(where))  # whole or not at all
        except OSError:  # another test worker finished the same build first: use its
            shutil.rmtree(staging, ignore_errors=True)
        for old in CACHE.glob(name + "-*"):  # builds of sources that are no more
            if old != where:
                shutil.rmtree(old, ignore_errors=True)
    path = next(where.glob(name + ".*.so"))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Core:
    """A Grouper's C skeleton, params and buffers, driven through one build of the core: its
    grouping, its peaks and every limb's score matrix. (The Grouper's cdata belong to the
    installed module's ffi; each build takes their addresses through its own.)"""

    def __init__(self, module, params: GroupParams, height: int, width: int, skeleton=COCO18):
        self.ffi, self.lib = module.ffi, module.lib
        self.g = Grouper(skeleton, height, width, params)
        self.skeleton = self._cast("opp_skeleton *", self.g._skeleton)
        self.params = self._cast("opp_params *", self.g._params)
        self.workspace = self._ptr("void *", self.g._workspace)
        m = params.max_peaks
        self.matrix = np.zeros((m, m), np.float32)

    def _cast(self, kind: str, cdata):
        return self.ffi.cast(kind, int(grouping.ffi.cast("uintptr_t", cdata)))

    def _ptr(self, kind: str, array: np.ndarray):
        return self.ffi.cast(kind, array.ctypes.data)

    def run(self, heat: np.ndarray, paf: np.ndarray) -> List[object]:
        g, n = self.g, self.ffi.new("int *")
        hp, pp = self._ptr("float *", heat), self._ptr("float *", paf)
        size = g._workspace.nbytes
        rc = self.lib.opp_group(hp, heat.shape[0], pp, paf.shape[0], g.height, g.width, self.skeleton, self.params,
                                self.workspace, size, self._ptr("float *", g._keypoints),
                                self._ptr("float *", g._scores), n)
        out = [rc, n[0], g._keypoints[:n[0]].tobytes(), g._scores[:n[0]].tobytes()]
        peaks, counts = self._ptr("opp_peak *", g._peaks), self._ptr("int *", g._peak_counts)
        assert self.lib.opp_find_peaks(hp, heat.shape[0], g.height, g.width, self.skeleton, self.params,
                                       peaks, counts) >= 0
        out += [g._peaks[part, :count].tobytes() for part, count in enumerate(g._peak_counts)]
        for limb, (a, b) in enumerate(g.skeleton.limbs):
            self.matrix[...] = 0.0
            assert self.lib.opp_score_limb(pp, paf.shape[0], g.height, g.width, self.skeleton, self.params, limb,
                                           peaks, counts, self._ptr("float *", self.matrix), self.workspace,
                                           size) == 0
            out.append(self.matrix[:g._peak_counts[a], :g._peak_counts[b]].tobytes())
        return out
