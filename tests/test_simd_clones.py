"""paf.c's SIMD clones: the AVX2 build of its hot loops gives the baseline's results bit for bit.

On x86-64 Linux with GCC the installed core carries an AVX2 and a baseline (SSE2) version
of its vectorising functions and picks one at load time. Here a baseline-only build
(``-DOPP_NO_SIMD_CLONES``) is compiled with cffi into a temp dir, and both cores group the
same scenes (clean, noisy, overlapping; greedy and optimal; default and unusual params):
keypoints, scores, status codes and every limb's score matrix must be identical. On a CPU
without AVX2 both run the baseline and the comparison still holds.
"""
from __future__ import annotations

import importlib.util
import platform
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from openpose_plus.edge import _paf, grouping
from openpose_plus.edge.grouping import GroupParams, Grouper
from openpose_plus.edge.skeleton import COCO18
from openpose_plus.edge.synthetic.figures import random_scene, smooth_noise
from openpose_plus.edge.targets import render_targets

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cffi_build"))
from build_paf import make_builder  # noqa: E402

pytestmark = pytest.mark.toolchain  # compiles the core again, with the C compiler


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    out = tmp_path_factory.mktemp("baseline")
    path = make_builder("_paf_baseline", ["-DOPP_NO_SIMD_CLONES"]).compile(tmpdir=str(out))
    spec = importlib.util.spec_from_file_location("_paf_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cpu_has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return " avx2" in f.read()
    except OSError:
        return False


class Core:
    """A Grouper's C skeleton, params and buffers, driven through one build of the core: its
    grouping, its peaks and every limb's score matrix. (The Grouper's cdata belong to the
    installed module's ffi; each build takes their addresses through its own.)"""

    def __init__(self, module, params: GroupParams, height: int, width: int):
        self.ffi, self.lib = module.ffi, module.lib
        self.g = Grouper(COCO18, height, width, params)
        self.skeleton = self._cast("opp_skeleton *", self.g._skeleton)
        self.params = self._cast("opp_params *", self.g._params)
        self.workspace = self._ptr("void *", self.g._workspace)
        m = params.max_peaks
        self.matrix = np.zeros((m, m), np.float32)

    def _cast(self, kind: str, cdata):
        return self.ffi.cast(kind, int(grouping.ffi.cast("uintptr_t", cdata)))

    def _ptr(self, kind: str, array: np.ndarray):
        return self.ffi.cast(kind, array.ctypes.data)

    def run(self, heat: np.ndarray, paf: np.ndarray):
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
        for limb, (a, b) in enumerate(COCO18.limbs):
            self.matrix[...] = 0.0
            assert self.lib.opp_score_limb(pp, paf.shape[0], g.height, g.width, self.skeleton, self.params, limb,
                                           peaks, counts, self._ptr("float *", self.matrix), self.workspace,
                                           size) == 0
            out.append(self.matrix[:g._peak_counts[a], :g._peak_counts[b]].tobytes())
        return out


PARAMS = [
    GroupParams(),
    GroupParams(assignment="optimal"),
    GroupParams(paf_samples=21, min_sample_fraction=0.6, peak_threshold=0.05),  # longer sample runs
    GroupParams(paf_samples=5, nms_radius=2, min_parts=1, max_peaks=8),         # short runs, truncation
]


@pytest.mark.parametrize("params", PARAMS, ids=["default", "optimal", "many-samples", "few-samples"])
def test_avx2_clones_match_the_baseline_bit_for_bit(baseline, params):
    rng = np.random.default_rng(7)
    for height, width in ((46, 54), (60, 80)):
        installed, base = Core(_paf, params, height, width), Core(baseline, params, height, width)
        for people in (1, 5, 10, 20):
            for overlap in (False, True):
                truth = random_scene(rng, people, width, height, overlap=overlap)
                heat, paf = render_targets(truth, COCO18, height, width, 1.0, 1.0)
                for noise in (0.0, 0.05):
                    h = heat + smooth_noise(rng, heat.shape, noise) if noise else heat
                    p = paf + smooth_noise(rng, paf.shape, noise) if noise else paf
                    h, p = np.ascontiguousarray(h, np.float32), np.ascontiguousarray(p, np.float32)
                    assert installed.run(h, p) == base.run(h, p), (height, width, people, overlap, noise)


@pytest.mark.skipif(not (platform.machine() == "x86_64" and sys.platform.startswith("linux")
                         and "gcc" in (sysconfig.get_config_var("CC") or "") and shutil.which("nm")),
                    reason="the clones are built on x86-64 Linux by GCC only (nm needed to look)")
def test_the_installed_core_has_its_avx2_clones():
    symbols = subprocess.run(["nm", _paf.__file__], capture_output=True, text=True, check=True).stdout
    clones = {line.split()[-1] for line in symbols.splitlines() if line.endswith(".avx2")}
    assert {"find_peaks.avx2", "build_off.avx2", "score_row.avx2", "limb_score.avx2"} <= clones, clones
    if not _cpu_has_avx2():
        pytest.skip("this CPU has no AVX2: the baseline runs (the clones are there)")
