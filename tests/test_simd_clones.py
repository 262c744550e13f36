"""The C core's SIMD clones: the AVX2 build of its hot loops gives the baseline's results bit for bit.

On x86-64 Linux with GCC the installed core carries an AVX2 and a baseline (SSE2) version
of its vectorising functions and picks one at load time. Here a baseline-only build
(``-DOPP_NO_SIMD_CLONES``) is compiled with cffi into a temp dir, and both cores group the
same scenes (clean, noisy, overlapping; greedy and optimal; default and unusual params):
keypoints, scores, status codes and every limb's score matrix must be identical. On a CPU
without AVX2 both run the baseline and the comparison still holds.
"""
from __future__ import annotations

import platform
import shutil
import subprocess
import sys
import sysconfig

import numpy as np
import pytest

from core_builds import Core, build_core
from openpose_plus.edge import _paf
from openpose_plus.edge.grouping import GroupParams
from openpose_plus.edge.skeleton import COCO18
from openpose_plus.edge.synthetic.figures import random_scene, smooth_noise
from openpose_plus.edge.targets import render_targets

pytestmark = pytest.mark.toolchain  # compiles the core again, with the C compiler


@pytest.fixture(scope="module")
def baseline():
    return build_core("_paf_baseline", ["-DOPP_NO_SIMD_CLONES"])


def _cpu_has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return " avx2" in f.read()
    except OSError:
        return False


PARAMS = [
    GroupParams(),
    GroupParams(assignment="optimal"),
    GroupParams(paf_samples=21, min_sample_fraction=0.6, peak_weight=0.3),       # longer sample runs, powf
    GroupParams(paf_samples=5, nms_radius=2, min_parts=1, max_peaks=8),         # short runs, truncation
    GroupParams(peak_threshold=0.15, min_parts=3, min_person_score=0.2, person_score="mean",
                peak_weight=0.0, merge_radius=0.0),                             # the defaults before 0.2
]


@pytest.mark.parametrize("params", PARAMS, ids=["default", "optimal", "many-samples", "few-samples", "before-0.2"])
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
    assert {"scan_plane.avx2", "build_off.avx2", "score_row.avx2", "limb_score.avx2"} <= clones, clones
    if not _cpu_has_avx2():
        pytest.skip("this CPU has no AVX2: the baseline runs (the clones are there)")
