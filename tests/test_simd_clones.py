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

from openpose_plus.edge import _paf
from openpose_plus.edge.skeleton import COCO18
from openpose_plus.edge.synthetic import random_scene, smooth_noise
from openpose_plus.edge.targets import render_targets

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cffi_build"))
from build_paf import make_builder  # noqa: E402


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
    """One build of the core, driven through its own ffi: grouping and per-limb scores."""

    def __init__(self, module, params: dict, height: int, width: int):
        self.ffi, self.lib = module.ffi, module.lib
        self.h, self.w = height, width
        skeleton = COCO18
        self.limb_parts = self.ffi.new("int[]", [p for limb in skeleton.limbs for p in limb])
        self.limb_pafs = self.ffi.new("int[]", [c for pair in skeleton.paf_channels for c in pair])
        self.skeleton = self.ffi.new("opp_skeleton *", {
            "num_parts": skeleton.num_parts, "num_limbs": skeleton.num_limbs,
            "limb_parts": self.limb_parts, "limb_pafs": self.limb_pafs})
        self.params = self.ffi.new("opp_params *")
        self.lib.opp_default_params(self.params)
        for name, value in params.items():
            setattr(self.params, name, value)
        size = self.ffi.new("size_t *")
        assert self.lib.opp_workspace_size(self.skeleton, self.params, height, width, size) == 0
        self.workspace = np.zeros(size[0], np.uint8)
        m = self.params.max_peaks
        self.keypoints = np.zeros((self.params.max_people, skeleton.num_parts, 3), np.float32)
        self.scores = np.zeros(self.params.max_people, np.float32)
        self.peaks = np.zeros((skeleton.num_parts, m, 3), np.float32)
        self.counts = np.zeros(skeleton.num_parts, np.intc)
        self.matrix = np.zeros((m, m), np.float32)

    def _ptr(self, kind: str, array: np.ndarray):
        return self.ffi.cast(kind, array.ctypes.data)

    def run(self, heat: np.ndarray, paf: np.ndarray):
        n = self.ffi.new("int *")
        f = self._ptr("float *", heat), self._ptr("float *", paf)
        ws = self._ptr("void *", self.workspace)
        rc = self.lib.opp_group(f[0], heat.shape[0], f[1], paf.shape[0], self.h, self.w, self.skeleton,
                                self.params, ws, self.workspace.nbytes, self._ptr("float *", self.keypoints),
                                self._ptr("float *", self.scores), n)
        out = [rc, n[0], self.keypoints[:n[0]].tobytes(), self.scores[:n[0]].tobytes()]
        assert self.lib.opp_find_peaks(f[0], heat.shape[0], self.h, self.w, self.skeleton, self.params,
                                       self._ptr("opp_peak *", self.peaks), self._ptr("int *", self.counts)) >= 0
        out.append(self.peaks.tobytes())
        for limb, (a, b) in enumerate(COCO18.limbs):
            self.matrix[...] = 0.0
            assert self.lib.opp_score_limb(f[1], paf.shape[0], self.h, self.w, self.skeleton, self.params, limb,
                                           self._ptr("opp_peak *", self.peaks), self._ptr("int *", self.counts),
                                           self._ptr("float *", self.matrix), ws, self.workspace.nbytes) == 0
            out.append(self.matrix[:self.counts[a], :self.counts[b]].tobytes())
        return out


PARAMS = [
    {},                                                           # the defaults
    {"assignment": 1},                                            # optimal
    {"paf_samples": 21, "min_sample_fraction": 0.6, "peak_threshold": 0.05},  # longer sample runs
    {"paf_samples": 5, "nms_radius": 2, "min_parts": 1, "max_peaks": 8},      # short runs, truncation
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
