#!/usr/bin/env bash
# The grouping and tracking tests against the C core built with AddressSanitizer and UBSan.
#
# Builds the same sources (strict: -Werror; the baseline of paf.c's SIMD clones) as a
# separate module, _paf_sanitized, under build/sanitize/ (the installed
# openpose_plus.edge._paf is left alone), then runs
# tests/test_grouping*.py with OPP_PAF_MODULE pointing at it (tests/conftest.py swaps it
# in). Any out-of-bounds access or undefined behaviour aborts the run (exit status != 0)
# with the sanitizer's report on stderr (--capture=sys leaves fd 2 alone for it).
# Usage: cffi_build/sanitize.sh [pytest args...]   (PYTHON=... picks the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
OUT=build/sanitize
SAN="-fsanitize=address,undefined"
rm -rf "$OUT" && mkdir -p "$OUT"

"$PYTHON" - "$OUT" "$SAN" <<'EOF'
import sys
sys.path.insert(0, "cffi_build")
from build_paf import make_builder
out, san = sys.argv[1:3]
# The baseline build of paf.c's SIMD clones: the normal tests run the AVX2 one where the
# CPU has it, so together the two runs cover both.
flags = [san, "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-O1", "-g", "-Werror",
         "-DOPP_NO_SIMD_CLONES"]
make_builder("_paf_sanitized", flags, [san]).compile(tmpdir=out)
EOF

module=$(ls "$PWD/$OUT"/_paf_sanitized*.so)
# The ASan runtime must be loaded before Python's own libraries; leaks are Python's
# business (the interpreter never frees everything), not the core's: the core never allocates.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export OPP_PAF_MODULE="$module"
exec "$PYTHON" -m pytest tests/test_grouping.py tests/test_grouping_errors.py tests/test_grouping_fuzz.py \
    tests/test_tracking.py tests/test_tracking_fuzz.py \
    -q -p no:cacheprovider --capture=sys "$@"
