#!/usr/bin/env bash
# `make install-mpi`: OpenMPI from the distribution, then Horovod rebuilt with MPI *and* gloo.
#
# The seed's multi-machine training runs under OpenMPI (`mpirun -np 16 -H server1:4,...`);
# gloo (`horovodrun --gloo`) needs no system package, MPI does. This script
#   1. installs OpenMPI where the distribution packages it and we know how (Debian/Ubuntu:
#      openmpi-bin libopenmpi-dev); elsewhere it says what to install and stops;
#   2. rebuilds Horovod (the version pinned below) in the project's venv against the
#      TensorFlow already there, with the MPI and gloo controllers (--no-deps: nothing
#      else in the venv changes);
#   3. proves it: `horovodrun --check-build` must list MPI and Gloo, and a 2-rank
#      allreduce must see both ranks under `mpirun` and under `horovodrun --gloo`.
# Steps already done are skipped (re-run with --force to rebuild Horovod anyway).
#
# Usage: scripts/install_mpi.sh [--force] [--skip-system]
#   VENV=path   the project's virtual environment (default: .venv beside this repo)
#   HOROVOD_VERSION=x.y.z   (default 0.28.1, the last release; it builds against TF 2.15-2.18)
#   OS_RELEASE=file         what identifies the distribution (default /etc/os-release)
set -euo pipefail

cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
HOROVOD_VERSION=${HOROVOD_VERSION:-0.28.1}
FORCE=0
SKIP_SYSTEM=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        --skip-system) SKIP_SYSTEM=1 ;;
        -h|--help) sed -n '2,/^set /{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
        *) echo "install-mpi: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

step() { printf '\n==> [%s] %s\n' "$1" "$2"; }
die() { echo "install-mpi: $*" >&2; exit 1; }

PY="$VENV/bin/python"
[ -x "$PY" ] || die "no Python at $PY: run 'make setup' first (or set VENV=path/to/venv)"

# ---------------------------------------------------------------- 1. OpenMPI
have_mpi() { command -v mpirun >/dev/null && command -v mpicxx >/dev/null; }

step 1/3 "OpenMPI"
if have_mpi; then
    echo "already installed: $(mpirun --version 2>/dev/null | head -n 1)"
elif [ "$SKIP_SYSTEM" = 1 ]; then
    die "mpirun/mpicxx not found and --skip-system given: install OpenMPI (runtime and headers) first"
else
    os_id=""; os_like=""
    OS_RELEASE=${OS_RELEASE:-/etc/os-release}
    if [ -r "$OS_RELEASE" ]; then
        # shellcheck disable=SC1090
        os_id=$(. "$OS_RELEASE" && echo "${ID:-}")
        os_like=$(. "$OS_RELEASE" && echo "${ID_LIKE:-}")
    fi
    case " $os_id $os_like " in
        *" debian "*|*" ubuntu "*)
            SUDO=""
            if [ "$(id -u)" != 0 ]; then
                command -v sudo >/dev/null || die "installing packages needs root: run as root or install sudo"
                SUDO="sudo"
            fi
            echo "installing openmpi-bin libopenmpi-dev with apt-get ($os_id)"
            $SUDO apt-get update -q
            DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
                openmpi-bin libopenmpi-dev
            ;;
        *)
            cat >&2 <<EOF
install-mpi: this script installs OpenMPI only on Debian/Ubuntu (found: ${os_id:-unknown}).
Install OpenMPI with its development headers yourself, so that 'mpirun' and 'mpicxx' are on PATH:
  Fedora/RHEL/Rocky:  sudo dnf install openmpi openmpi-devel && module load mpi/openmpi-\$(uname -m)
  openSUSE:           sudo zypper install openmpi4 openmpi4-devel
  Arch:               sudo pacman -S openmpi
  conda:              conda install -c conda-forge openmpi openmpi-mpicxx
then run 'make install-mpi' again (or: scripts/install_mpi.sh --skip-system).
EOF
            exit 2
            ;;
    esac
    have_mpi || die "OpenMPI was installed but mpirun/mpicxx are still not on PATH"
    echo "installed: $(mpirun --version 2>/dev/null | head -n 1)"
fi

# ---------------------------------------------------------------- 2. Horovod with MPI + gloo
HVDRUN="$VENV/bin/horovodrun"
# `horovodrun --check-build` lists "[X] MPI" / "[X] Gloo" under "Available Controllers:".
# It imports TensorFlow (seconds), so it runs once and its output is read twice.
build_report() { [ -x "$HVDRUN" ] && "$HVDRUN" --check-build 2>/dev/null || true; }
has() { # has REPORT SECTION NAME
    printf '%s\n' "$1" | sed -n "/$2/,/^\$/p" | grep -q "\[X\] $3"
}

step 2/3 "Horovod $HOROVOD_VERSION with MPI and gloo in $VENV"
report=$(build_report)
if [ "$FORCE" = 0 ] && has "$report" "Available Controllers" MPI && has "$report" "Available Controllers" Gloo \
        && has "$report" "Available Frameworks" TensorFlow; then
    echo "already built with MPI and gloo (use --force to rebuild)"
else
    "$PY" -c "import tensorflow" 2>/dev/null \
        || die "TensorFlow is not importable in $VENV: Horovod builds against it (make setup installs it)"
    command -v cmake >/dev/null || [ -x "$VENV/bin/cmake" ] \
        || die "Horovod's build needs cmake: apt-get install cmake (or $VENV/bin/pip install cmake)"
    command -v g++ >/dev/null || die "Horovod's build needs a C++ compiler: apt-get install g++"
    echo "building (a few minutes on 2 cores; --no-build-isolation: against the venv's TensorFlow)"
    # MPI as well as gloo: mpirun for clusters that already run MPI, horovodrun --gloo elsewhere.
    HOROVOD_WITH_MPI=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITH_TENSORFLOW=1 \
    HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 \
        "$PY" -m pip install --no-build-isolation --no-cache-dir --force-reinstall --no-deps \
        "horovod==$HOROVOD_VERSION"
    report=$(build_report)
fi

# ---------------------------------------------------------------- 3. Proof
step 3/3 "horovodrun --check-build, then 2 ranks under mpirun and under gloo"
[ -n "$report" ] || die "horovodrun --check-build failed: is Horovod importable in $VENV?"
printf '%s\n' "$report"
has "$report" "Available Controllers" MPI || die "Horovod has no MPI controller after the build (see the pip output above)"
has "$report" "Available Controllers" Gloo || die "Horovod has no gloo controller after the build"

# A real 2-rank collective with each controller: both ranks must agree on the sum.
SMOKE='
import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf, horovod.tensorflow as hvd
hvd.init()
total = hvd.allreduce(tf.constant(float(hvd.rank() + 1)), op=hvd.Sum)
print("rank %d/%d mpi=%s gloo=%s sum=%g" % (hvd.rank(), hvd.size(), hvd.mpi_enabled(), hvd.gloo_enabled(),
                                           float(total)), flush=True)
'
smoke() { # smoke NAME EXPECTED COMMAND...
    local name=$1 expected=$2 out
    shift 2
    out=$("$@" 2>&1) || { echo "$out" >&2; die "the 2-rank $name smoke test failed"; }
    # mpirun may join the ranks' lines: count matches, not lines.
    echo "$out" | grep -o "rank [0-9]*/[0-9]* mpi=[A-Za-z]* gloo=[A-Za-z]* sum=[0-9.]*" || true
    [ "$(echo "$out" | grep -o "rank [01]/2 $expected sum=3" | wc -l)" = 2 ] \
        || { echo "$out" >&2; die "the 2-rank $name smoke test did not see 2 ranks summing to 3"; }
}
ROOT_FLAG=""
[ "$(id -u)" = 0 ] && ROOT_FLAG="--allow-run-as-root"
smoke mpirun "mpi=True gloo=False" mpirun -np 2 $ROOT_FLAG --oversubscribe "$PY" -c "$SMOKE"
smoke gloo "mpi=False gloo=True" "$HVDRUN" -np 2 -H localhost:2 --gloo "$PY" -c "$SMOKE"
echo
echo "install-mpi: done. Launch training on a cluster with, e.g.:"
echo "  mpirun -np 16 -H server1:4,server2:4,server3:4,server4:4 -bind-to none -map-by slot \\"
echo "      -x NCCL_DEBUG=INFO -x LD_LIBRARY_PATH -x PATH \\"
echo "      $VENV/bin/openpose-plus train --config train.toml --parallel"
