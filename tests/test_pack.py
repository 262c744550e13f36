"""`make pack`: the C grouping core as a shared and a static library, for C and C++ programs.

The pack is built with the real fragment (cffi_build/pack.mk) into a temp dir, installed with
DESTDIR into a temp root, and the two example programs (cffi_build/examples/) are compiled with
the system gcc/g++ through pkg-config against the installed .pc file, linked both dynamically
and statically. They read maps this test renders and writes, and must print the people that
the Python API's group() finds.
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from openpose_plus.edge.grouping import GroupParams, group
from openpose_plus.edge.skeleton import COCO18, Skeleton
from openpose_plus.edge.synthetic.figures import random_scene, smooth_noise
from openpose_plus.edge.targets import render_targets

ROOT = Path(__file__).resolve().parents[1]
CFFI = ROOT / "cffi_build"
HEADER = CFFI / "openpose_plus_paf.h"
EXAMPLES = CFFI / "examples"
PREFIX = "/opt/openpose-plus"
PC = "openpose_plus_paf"

_missing = [tool for tool in ("make", "gcc", "g++", "pkg-config", "nm", "readelf") if not shutil.which(tool)]
pytestmark = [pytest.mark.toolchain,
              pytest.mark.skipif(bool(_missing), reason="needs the system toolchain: %s not found" % ", ".join(_missing))]


# ------------------------------------------------------------------ the map file the examples read

MAGIC = b"OPPMAPS1"


def write_maps(path, heatmaps: np.ndarray, pafs: np.ndarray, skeleton: Skeleton) -> None:
    """The map file of cffi_build/examples/group_file.c: magic, 5 int32 sizes, the limb
    table, then the float32 maps, all little-endian."""
    k, limbs = skeleton.num_parts, skeleton.num_limbs
    h, w = heatmaps.shape[1:]
    with open(path, "wb") as f:
        f.write(MAGIC + struct.pack("<5i", k, heatmaps.shape[0], limbs, h, w))
        f.write(np.asarray(skeleton.limbs, "<i4").reshape(-1).tobytes())
        f.write(np.asarray(skeleton.paf_channels, "<i4").reshape(-1).tobytes())
        f.write(np.ascontiguousarray(heatmaps, "<f4").tobytes())
        f.write(np.ascontiguousarray(pafs, "<f4").tobytes())


def parse_people(text: str, num_parts: int):
    """The examples' stdout -> (keypoints (N, K, 3), scores (N,)); strict about the format."""
    lines = text.splitlines()
    n = int(re.fullmatch(r"people (\d+)", lines[0]).group(1))
    assert len(lines) == 1 + n * (1 + num_parts), text
    keypoints = np.zeros((n, num_parts, 3), np.float64)
    scores = np.zeros(n, np.float64)
    it = iter(lines[1:])
    for i in range(n):
        m = re.fullmatch(r"person (\d+) score (\S+)", next(it))
        assert m and int(m.group(1)) == i
        scores[i] = float(m.group(2))
        for k in range(num_parts):
            fields = next(it).split()
            assert fields[0] == "part" and int(fields[1]) == k
            keypoints[i, k] = [float(v) for v in fields[2:]]
    return keypoints, scores


def header_version():
    text = HEADER.read_text()
    parts = [int(re.search(r"#define OPP_VERSION_%s (\d+)" % name, text).group(1))
             for name in ("MAJOR", "MINOR", "PATCH")]
    encoded = int(re.search(r"#define OPP_VERSION (\d+)", text).group(1))
    return parts, encoded


def abi_version() -> str:
    """What the SONAME carries: MAJOR, or 0.MINOR while MAJOR is 0 (a 0.x minor may break)."""
    (major, minor, _), _ = header_version()
    return "%d.%d" % (major, minor) if major == 0 else "%d" % major


def header_functions():
    """Names of the functions the public header declares (its CFFI region)."""
    text = HEADER.read_text()
    region = re.search(r"/\* CFFI_BEGIN \*/(.*)/\* CFFI_END \*/", text, re.S).group(1)
    region = re.sub(r"/\*.*?\*/", "", region, flags=re.S)
    return set(re.findall(r"\b(opp_\w+)\s*\(", region))


# ------------------------------------------------------------------ build, install, compile once

def run(cmd, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, "%s failed (%d):\n%s\n%s" % (cmd, result.returncode, result.stdout,
                                                              result.stderr)
    return result


class Pack:
    def __init__(self, base: Path):
        self.base = base
        self.build = base / "build"
        self.destdir = base / "root"
        self.installed = self.destdir / PREFIX.lstrip("/")
        self.bin = base / "bin"
        self.bin.mkdir()
        # A staged install is used the way packagers use one: the .pc file names the real
        # PREFIX, and pkg-config's sysroot puts DESTDIR in front of its -I and -L paths.
        self.pc_env = dict(os.environ, PKG_CONFIG_PATH=str(self.installed / "lib" / "pkgconfig"),
                           PKG_CONFIG_SYSROOT_DIR=str(self.destdir))
        self.run_env = dict(os.environ, LD_LIBRARY_PATH=str(self.installed / "lib"))

    def make(self, *targets, **variables):
        variables = dict({"PACK_DIR": str(self.build), "PREFIX": PREFIX}, **variables)
        args = ["make", "--no-print-directory", "-f", str(CFFI / "pack.mk"), *targets]
        args += ["%s=%s" % kv for kv in variables.items()]
        return run(args, cwd=str(self.base))

    def pkg_config(self, *args, sysroot=True):
        """pkg-config's answer; ``sysroot=False`` for the paths as installed (pkgconf also puts
        the sysroot in front of --variable answers, pkg-config does not)."""
        env = self.pc_env if sysroot else dict(self.pc_env, PKG_CONFIG_SYSROOT_DIR="")
        return run(["pkg-config", *args, PC], env=env).stdout.split()

    def compile(self):
        cflags = self.pkg_config("--cflags")
        libs = self.pkg_config("--libs")
        # Static: the archive itself, plus what it needs (Libs.private: -lm).
        archive = str(self.destdir) + self.pkg_config("--variable=libdir", sysroot=False)[0] \
            + "/libopenpose_plus_paf.a"
        private = [f for f in self.pkg_config("--static", "--libs") if f.startswith("-l") and "openpose" not in f]
        self.binaries = {}
        for lang, compiler, std, source in (("c", "gcc", "-std=c99", "group_file.c"),
                                            ("cpp", "g++", "-std=c++11", "group_file.cpp")):
            strict = [std, "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]
            for link, link_args in (("shared", libs), ("static", [archive] + private)):
                out = self.bin / ("group_file_%s_%s" % (lang, link))
                run([compiler, *strict, *cflags, str(EXAMPLES / source), "-o", str(out), *link_args])
                self.binaries[lang, link] = out
        self.track = self.bin / "track_stdin"  # the tracker's example
        run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", *cflags,
             str(EXAMPLES / "track_stdin.c"), "-o", str(self.track), *libs])

    def group_file(self, binary, *args):
        return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True,
                              env=self.run_env, timeout=60)


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    p = Pack(tmp_path_factory.mktemp("pack"))
    p.make("pack")
    p.make("install-pack", DESTDIR=str(p.destdir))
    p.compile()
    return p


# ------------------------------------------------------------------ the library itself

def test_pack_builds_versioned_shared_and_static_libraries(pack):
    (major, minor, patch), _ = header_version()
    real = "libopenpose_plus_paf.so.%d.%d.%d" % (major, minor, patch)
    soname = "libopenpose_plus_paf.so." + abi_version()
    for lib in (pack.build / "lib", pack.installed / "lib"):
        assert (lib / real).is_file() and not (lib / real).is_symlink()
        assert os.readlink(str(lib / soname)) == real
        assert os.readlink(str(lib / "libopenpose_plus_paf.so")) == soname
        assert (lib / "libopenpose_plus_paf.a").is_file()
        dynamic = run(["readelf", "-d", str(lib / real)]).stdout
        assert "Library soname: [%s]" % soname in dynamic
    # The header cffi reads is the header C programs get, byte for byte.
    for include in (pack.build / "include", pack.installed / "include"):
        assert (include / "openpose_plus_paf.h").read_bytes() == HEADER.read_bytes()


def test_pkg_config_file_names_the_prefix_and_version(pack):
    (major, minor, patch), _ = header_version()
    assert pack.pkg_config("--modversion") == ["%d.%d.%d" % (major, minor, patch)]
    assert pack.pkg_config("--variable=prefix", sysroot=False) == [PREFIX]
    assert pack.pkg_config("--variable=libdir", sysroot=False) == [PREFIX + "/lib"]
    assert pack.pkg_config("--cflags") == ["-I%s%s/include" % (pack.destdir, PREFIX)]
    assert "-lm" in pack.pkg_config("--static", "--libs")
    # The build tree's copy is relocatable: --define-prefix finds it where it lies.
    env = dict(os.environ, PKG_CONFIG_PATH=str(pack.build / "lib" / "pkgconfig"))
    out = run(["pkg-config", "--define-prefix", "--cflags", PC], env=env).stdout.split()
    assert out == ["-I%s" % (pack.build / "include")]


def test_only_the_header_api_is_exported(pack):
    declared = header_functions()
    assert {"opp_version", "opp_group", "opp_strerror"} <= declared
    lib = pack.installed / "lib" / "libopenpose_plus_paf.so"
    names = {line.split()[-1].split("@")[0]
             for line in run(["nm", "-D", "--defined-only", str(lib)]).stdout.splitlines() if line.strip()}
    assert names == declared, "exported but not declared: %s; declared but not exported: %s" % (
        sorted(names - declared), sorted(declared - names))
    # The archive's global symbols are the API, and the helpers shared between the core's
    # files (paf_internal.h), named oppi_* and hidden: static or hidden, nothing else.
    archive = pack.installed / "lib" / "libopenpose_plus_paf.a"
    globals_ = {line.split()[-1] for line in run(["nm", "-g", "--defined-only", str(archive)]).stdout.splitlines()
                if re.match(r"^[0-9a-f]+ [A-Z] ", line)}
    internal = {name for name in globals_ if name.startswith("oppi_")}
    assert internal and globals_ - internal == declared
    visibility = {fields[-1]: fields[5] for fields in
                  (line.split() for line in run(["readelf", "-sW", str(archive)]).stdout.splitlines())
                  if len(fields) >= 8 and fields[4] == "GLOBAL" and fields[6] != "UND"}
    assert {name: visibility[name] for name in internal} == {name: "HIDDEN" for name in internal}


def test_runtime_version_equals_the_header_version(pack):
    (major, minor, patch), encoded = header_version()
    assert encoded == major * 10000 + minor * 100 + patch
    lib = ctypes.CDLL(str(pack.installed / "lib" / ("libopenpose_plus_paf.so." + abi_version())))
    assert lib.opp_version() == encoded
    lib.opp_strerror.restype = ctypes.c_char_p
    assert lib.opp_strerror(-1) == b"a required pointer is NULL"


def test_static_binaries_do_not_need_the_shared_library(pack):
    for lang in ("c", "cpp"):
        needed_static = run(["readelf", "-d", str(pack.binaries[lang, "static"])]).stdout
        assert "libopenpose_plus_paf" not in needed_static
        needed_shared = run(["readelf", "-d", str(pack.binaries[lang, "shared"])]).stdout
        # Linked by SONAME: a later compatible library (same SONAME) replaces it without a rebuild.
        assert "Shared library: [libopenpose_plus_paf.so.%s]" % abi_version() in needed_shared
    # And the static one runs with no library path at all.
    result = subprocess.run([str(pack.binaries["c", "static"])], capture_output=True, text=True)
    assert result.returncode == 2 and "usage:" in result.stderr


# The public declarations (types, constants, prototypes; comments and the version macros
# left out) of each released MAJOR.MINOR. Changing them is an ABI change: bump
# OPP_VERSION_MAJOR (incompatible; the SONAME follows) or OPP_VERSION_MINOR (additions), and
# record the new fingerprint here. While MAJOR is 0, a MINOR bump may also break, and the
# SONAME carries 0.MINOR (abi_version) so that programs keep the library they were built with.
ABI_FINGERPRINTS = {
    "0.1": "7d4b9a5a75249bcd",
    "0.2": "f52988dc5eb24c21",  # + the tracker (track.c), the grouping on real maps (person score, merges)
    "0.3": "896422fe93a40d9b",  # + opp_tracker_set_frame, track params widen and still_speed (appended)
    "0.4": "e36aa1a18601e469",  # + track param assignment (appended; the state grew: optimal matching)
    "0.5": "35ee6202e029cbc0",  # + opp_track_image (colours from the frame), track param appearance (appended)
    "0.6": "48ca825ab351efd4",  # + track param turn_speed (appended; the state grew: each track's heading)
    "0.7": "c08bbb5019ad8556",  # + track param noise_falloff and opp_track_stats.falloff (appended; the stats grew)
}


def abi_fingerprint():
    import hashlib

    region = re.search(r"/\* CFFI_BEGIN \*/(.*)/\* CFFI_END \*/", HEADER.read_text(), re.S).group(1)
    region = re.sub(r"/\*.*?\*/", " ", region, flags=re.S)
    region = "\n".join(line for line in region.splitlines()
                       if not re.match(r"\s*#\s*define\s+OPP_VERSION", line))
    return hashlib.sha256(" ".join(region.split()).encode()).hexdigest()[:16]


def test_an_abi_change_bumps_the_version():
    (major, minor, _), _ = header_version()
    version, fingerprint = "%d.%d" % (major, minor), abi_fingerprint()
    assert version in ABI_FINGERPRINTS, (
        "header version %s has no recorded ABI: add  \"%s\": \"%s\",  to ABI_FINGERPRINTS in %s"
        % (version, version, fingerprint, __file__))
    assert ABI_FINGERPRINTS[version] == fingerprint, (
        "the declarations in %s changed but OPP_VERSION is still %s.x: bump OPP_VERSION_MAJOR (an "
        "incompatible change) or OPP_VERSION_MINOR (an addition), then record  \"<new MAJOR.MINOR>\": "
        "\"%s\"  in ABI_FINGERPRINTS" % (HEADER.name, version, fingerprint))


def test_the_tracker_in_c_gives_the_ids_and_keypoints_of_python(pack):
    from openpose_plus.edge.poses import Poses
    from openpose_plus.edge.synthetic.scene import MovingScene
    from openpose_plus.edge.tracking import PoseTracker

    scene = MovingScene(640, 360, 3, seed=4, crossing=True)
    rng = np.random.default_rng(0)
    tracker = PoseTracker(COCO18)
    lines, want = ["parts 18"], []
    for i in range(12):
        kp = scene.keypoints(i)
        kp[..., :2] += rng.normal(0, 0.5, kp[..., :2].shape)
        kp[..., 2] = rng.uniform(0.3, 1.0, kp[..., 2].shape)
        kp = kp.astype(np.float32)
        scores = np.full(len(kp), 0.8, np.float32)
        lines.append("frame %r %d" % (i / 30, len(kp)))
        lines += [" ".join("%.9g" % v for v in [scores[n]] + kp[n].reshape(-1).tolist()) for n in range(len(kp))]
        want.append(tracker.update(Poses(kp, scores, COCO18), i / 30))
    result = subprocess.run([str(pack.track)], input="\n".join(lines) + "\n", capture_output=True,
                            text=True, env=pack.run_env, timeout=60)
    assert result.returncode == 0, result.stderr
    frames = result.stdout.split("frame ")[1:]
    assert len(frames) == 12
    for text, poses in zip(frames, want):
        rows = [line.split() for line in text.splitlines()[1:]]
        assert [int(r[1]) for r in rows] == poses.ids.tolist()
        got = np.array([[float(v) for v in r[2:]] for r in rows], np.float32).reshape(poses.keypoints.shape)
        assert np.array_equal(got, poses.keypoints)  # the same C code, the same floats
    assert set(want[-1].ids.tolist()) == {1, 2, 3}
    bad = subprocess.run([str(pack.track)], input="parts 18\nframe 1 0\nframe 0.5 0\n",
                         capture_output=True, text=True, env=pack.run_env, timeout=60)
    assert bad.returncode == 1 and "timestamp" in bad.stderr


# ------------------------------------------------------------------ the examples print group()'s people

def quadruped():
    """A 7-part skeleton whose PAF channels are not in limb order (the limb table must be read)."""
    base = Skeleton.from_coco_category({
        "name": "quadruped", "keypoints": ["head", "neck", "tail", "lf", "rf", "lb", "rb"],
        "skeleton": [[1, 2], [2, 3], [2, 4], [2, 5], [3, 6], [3, 7]]})
    channels = np.random.default_rng(0).permutation(base.num_pafs).reshape(-1, 2)
    return Skeleton(base.name, base.parts, base.limbs, tuple(map(tuple, channels)), base.flip_pairs)


SCENES = [  # (id, skeleton, people, height, width, noise, background channel)
    ("coco18-empty", COCO18, 0, 46, 54, 0.0, True),
    ("coco18-one", COCO18, 1, 46, 54, 0.0, True),
    ("coco18-five-noisy", COCO18, 5, 46, 54, 0.05, True),
    ("coco18-eight-no-background", COCO18, 8, 60, 80, 0.03, False),
    ("quadruped-four", quadruped(), 4, 60, 80, 0.0, True),
]


def render_scene(seed, skeleton, people, height, width, noise, background):
    rng = np.random.default_rng(seed)
    heat, paf = render_targets(random_scene(rng, people, width, height, skeleton=skeleton),
                               skeleton, height, width, 1.0, 1.0)
    if noise:
        heat = heat + smooth_noise(rng, heat.shape, noise)
        paf = paf + smooth_noise(rng, paf.shape, noise)
    if not background:
        heat = heat[:skeleton.num_parts]
    return np.ascontiguousarray(heat, np.float32), np.ascontiguousarray(paf, np.float32)


def assert_prints_group_people(pack, path, heat, paf, skeleton, assignment, expect_people=None):
    flags = ["--optimal"] if assignment == "optimal" else []
    outputs = {}
    for key, binary in pack.binaries.items():
        result = pack.group_file(binary, *flags, path)
        assert result.returncode == 0, "%s: %s" % (key, result.stderr)
        outputs[key] = result.stdout
    # C and C++, shared and static: the same program, the same bytes.
    assert len(set(outputs.values())) == 1, outputs
    keypoints, scores = parse_people(outputs["c", "shared"], skeleton.num_parts)

    poses = group(heat, paf, skeleton=skeleton, params=GroupParams(assignment=assignment))
    assert len(keypoints) == len(poses)
    if expect_people is not None:
        assert len(poses) == expect_people
    np.testing.assert_allclose(keypoints, poses.keypoints, rtol=0, atol=1e-4)
    np.testing.assert_allclose(scores, poses.scores, rtol=0, atol=1e-4)


@pytest.mark.parametrize("assignment", ["greedy", "optimal"])
@pytest.mark.parametrize("scene", SCENES, ids=[s[0] for s in SCENES])
def test_examples_print_the_people_group_finds(pack, tmp_path, scene, assignment):
    _, skeleton, people, height, width, noise, background = scene
    heat, paf = render_scene(7, skeleton, people, height, width, noise, background)
    path = tmp_path / "maps.oppm"
    write_maps(path, heat, paf, skeleton)
    # Clean rendered scenes: every figure is found (the noisy ones may split or lose one).
    assert_prints_group_people(pack, path, heat, paf, skeleton, assignment,
                               expect_people=people if not noise and skeleton is COCO18 else None)


def nan_scene():
    """Three people, with a NaN corner in every heatmap and an Inf band across every PAF."""
    heat, paf = render_scene(3, COCO18, 3, 46, 54, 0.0, True)
    heat[:, :10, :10] = np.nan
    paf[:, 20:30, :] = np.inf
    return heat, paf


def test_nan_regions_are_no_evidence_in_c_as_in_python(pack, tmp_path):
    heat, paf = nan_scene()
    path = tmp_path / "nan.oppm"
    write_maps(path, heat, paf, COCO18)
    assert_prints_group_people(pack, path, heat, paf, COCO18, "greedy")


# ------------------------------------------------------------------ a Jetson's build: aarch64 under qemu

CROSS = "aarch64-linux-gnu-"
_cross_missing = [tool for tool in (CROSS + "gcc", CROSS + "ar", "qemu-aarch64") if not shutil.which(tool)]


@pytest.mark.skipif(bool(_cross_missing), reason="needs an aarch64 cross compiler and qemu-user (Debian: "
                    "gcc-aarch64-linux-gnu qemu-user; .ci/run installs them): %s not found"
                    % ", ".join(_cross_missing))
def test_a_jetson_build_prints_the_same_people_bit_for_bit(pack, tmp_path):
    """The pack cross-compiled for aarch64, a Jetson's CPU (plain C there: the SIMD clones are
    x86-64 only), with the C example linked statically to it and run under qemu, prints byte for
    byte what the x86-64 build prints, on every scene and both assignments."""
    arm_dir = tmp_path / "arm"
    pack.make("pack", PACK_DIR=str(arm_dir), CC=CROSS + "gcc", AR=CROSS + "ar")
    shared = arm_dir / "lib" / "libopenpose_plus_paf.so"
    assert "AArch64" in run(["readelf", "-h", str(shared)]).stdout
    binary = tmp_path / "group_file_aarch64"
    run([CROSS + "gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-static",
         "-I", str(arm_dir / "include"), str(EXAMPLES / "group_file.c"),
         str(arm_dir / "lib" / "libopenpose_plus_paf.a"), "-lm", "-o", str(binary)])
    scenes = [render_scene(7, *scene[1:]) + (scene[1],) for scene in SCENES]
    scenes.append(nan_scene() + (COCO18,))
    for i, (heat, paf, skeleton) in enumerate(scenes):
        path = tmp_path / ("scene-%d.oppm" % i)
        write_maps(path, heat, paf, skeleton)
        for flags in ([], ["--optimal"]):
            native = pack.group_file(pack.binaries["c", "static"], *flags, path)
            arm = subprocess.run(["qemu-aarch64", str(binary), *flags, str(path)], capture_output=True,
                                 text=True, timeout=120)
            assert native.returncode == 0 and arm.returncode == 0, (native.stderr, arm.stderr)
            assert arm.stdout == native.stdout, (i, flags)


# ------------------------------------------------------------------ bad input: a clear error, no crash

def test_bad_map_files_are_refused_with_the_reason(pack, tmp_path):
    heat, paf = render_scene(1, COCO18, 2, 46, 54, 0.0, True)
    good = tmp_path / "good.oppm"
    write_maps(good, heat, paf, COCO18)
    data = good.read_bytes()
    header = len(MAGIC) + 20 + 2 * 4 * 2 * COCO18.num_limbs
    cases = {
        "not a map file": b"PNG\x00" + data[4:],
        "truncated header": data[:20],
        "truncated limb table": data[:header - 4],
        "truncated heatmaps": data[:header + 1000],
        "truncated PAFs": data[:-4],
        "unexpected bytes after the PAFs": data + b"\x00",
        "header out of range": data[:len(MAGIC) + 12] + struct.pack("<i", 0) + data[len(MAGIC) + 16:],
    }
    # A limb joining part 0 to part 99 passes the file reader and is refused by the library.
    bad_limb = bytearray(data)
    bad_limb[len(MAGIC) + 20 + 4:len(MAGIC) + 24 + 4] = struct.pack("<i", 99)
    cases["skeleton counts or indices out of range"] = bytes(bad_limb)
    for reason, content in cases.items():
        path = tmp_path / ("bad-%d.oppm" % len(content))
        path.write_bytes(content)
        for key, binary in pack.binaries.items():
            result = pack.group_file(binary, path)
            assert result.returncode == 1, (reason, key, result.stdout, result.stderr)
            assert reason in result.stderr and str(path) in result.stderr, (reason, key, result.stderr)
            assert result.stdout == ""
    for key, binary in pack.binaries.items():
        missing = pack.group_file(binary, tmp_path / "nothing.oppm")
        assert missing.returncode == 1 and "No such file" in missing.stderr, key
        usage = pack.group_file(binary, "--bogus", good)
        assert usage.returncode == 2 and "usage:" in usage.stderr, key


# ------------------------------------------------------------------ install, reconfigure, uninstall

def test_install_honours_prefix_and_uninstall_removes_everything(pack, tmp_path):
    root = tmp_path / "stage"
    pack.make("install-pack", DESTDIR=str(root), PREFIX="/usr", LIBDIR="/usr/lib/x86_64-linux-gnu")
    libdir = root / "usr/lib/x86_64-linux-gnu"
    pc = (libdir / "pkgconfig" / "openpose_plus_paf.pc").read_text()
    assert "prefix=/usr\n" in pc and "libdir=${prefix}/lib/x86_64-linux-gnu\n" in pc
    assert "includedir=${prefix}/include\n" in pc
    assert (root / "usr/include/openpose_plus_paf.h").is_file()
    assert sorted(p.name for p in libdir.glob("libopenpose_plus_paf*")) == sorted(
        ["libopenpose_plus_paf.a", "libopenpose_plus_paf.so",
         "libopenpose_plus_paf.so." + abi_version(),
         "libopenpose_plus_paf.so.%s" % ".".join(map(str, header_version()[0]))])
    # The build tree's .pc follows PREFIX too (it is regenerated when PREFIX changes).
    pack.make("pack", PREFIX="/usr")
    assert "prefix=/usr\n" in (pack.build / "lib/pkgconfig/openpose_plus_paf.pc").read_text()
    pack.make("pack")  # back to the module's PREFIX for the other tests
    assert "prefix=%s\n" % PREFIX in (pack.build / "lib/pkgconfig/openpose_plus_paf.pc").read_text()

    pack.make("uninstall-pack", DESTDIR=str(root), PREFIX="/usr", LIBDIR="/usr/lib/x86_64-linux-gnu")
    assert [p for p in root.rglob("*") if not p.is_dir()] == []


@pytest.mark.slow  # ~8 s, most of it the sanitized build; make test runs it (and make sanitize the rest)
def test_example_reader_is_clean_under_address_and_ub_sanitizers(pack, tmp_path):
    """The C example and the core, built with ASan + UBSan, on good and broken files alike."""
    binary = tmp_path / "group_file_asan"
    san = "-fsanitize=address,undefined"
    try:
        run(["gcc", "-std=c99", "-g", "-O1", san, "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
             "-I", str(CFFI), str(EXAMPLES / "group_file.c"), *map(str, sorted(CFFI.glob("*.c"))),
             "-o", str(binary), "-lm"])
    except AssertionError as exc:
        if "asan" in str(exc).lower() or "ubsan" in str(exc).lower():
            pytest.skip("gcc here has no sanitizer runtimes: %s" % str(exc).splitlines()[-1])
        raise
    heat, paf = render_scene(5, COCO18, 4, 46, 54, 0.05, True)
    good = tmp_path / "good.oppm"
    write_maps(good, heat, paf, COCO18)
    data = good.read_bytes()
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=99",
               UBSAN_OPTIONS="halt_on_error=1:exitcode=98")
    for cut in (0, 7, 8, 27, 28, 100, 5000, len(data) - 1, len(data), len(data) + 3):
        path = tmp_path / ("cut-%d.oppm" % cut)
        path.write_bytes(data[:cut] if cut <= len(data) else data + b"\x01" * (cut - len(data)))
        result = subprocess.run([str(binary), str(path)], capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == (0 if cut == len(data) else 1), (cut, result.stderr[-2000:])
        assert "Sanitizer" not in result.stderr, result.stderr[-2000:]
