"""cffi build of the grouping core: ``openpose_plus.edge._paf`` (out-of-line API mode).

setup.py names ``ffibuilder`` in ``cffi_modules``; ``sanitize.sh`` calls :func:`make_builder`
for an instrumented copy under another module name. The cdef is read from the public
header itself, between its ``CFFI_BEGIN``/``CFFI_END`` markers, so the C API has one
declaration.
"""
import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(HERE, "openpose_plus_paf.h")
SOURCES = [os.path.join(HERE, "paf.c")]
SOURCES.append(os.path.join(HERE, "track.c"))  # person IDs across frames, One Euro smoothing
# No -ffast-math (the NaN checks must hold) and no -march=native (Jetsons build it too;
# paf.c picks AVX2 at load time where it can). -fno-wrapv undoes Python's -fwrapv, which
# costs 2 % of the core's instructions: the core has no signed overflow (UBSan checks).
CFLAGS = ["-std=c99", "-O3", "-fno-wrapv", "-Wall", "-Wextra"]


def header_cdef(path=HEADER):
    """The declarations between the markers, with every ``#define`` value turned into
    ``...``: in API mode cffi then takes the value from the compiled header, so
    ``(-1)`` or an expression is fine and the numbers live in the header only."""
    with open(path) as f:
        text = f.read()
    match = re.search(r"/\* CFFI_BEGIN \*/(.*)/\* CFFI_END \*/", text, re.S)
    if not match:
        raise RuntimeError("%s has no CFFI_BEGIN/CFFI_END region" % path)
    lines = []
    for line in match.group(1).splitlines():
        define = re.match(r"\s*#\s*define\s+(\w+)\s", line + " ")
        if define:
            lines.append("#define %s ..." % define.group(1))
        elif not line.lstrip().startswith("#"):
            lines.append(line)
    return "\n".join(lines)


def make_builder(module_name="openpose_plus.edge._paf", extra_compile_args=(), extra_link_args=()):
    builder = FFI()
    builder.cdef(header_cdef())
    builder.set_source(module_name, '#include "openpose_plus_paf.h"',
                       sources=SOURCES, include_dirs=[HERE],
                       extra_compile_args=CFLAGS + list(extra_compile_args),
                       extra_link_args=list(extra_link_args))
    return builder


ffibuilder = make_builder()

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
