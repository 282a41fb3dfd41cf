#!/usr/bin/env bash
# The GPU path, proven on one machine: build aihwkit with CUDA, run a c-TTv2 trial on the GPU and continue it from
# its checkpoint, then time analog training on the GPU against the CPU and with several trials sharing the GPU.
#
# For a machine with one NVIDIA GPU, a Python that has torch (a CUDA build), nvcc, cmake and ninja, and no package
# registry. Run it from the repository's root:
#
#   docker/gpu_check.sh --fetch             # first, on a machine with PyPI and Debian's packages: fills $WHEELS
#   docker/gpu_check.sh                     # there: prints each step's time
#
# The aihwkit build is the long step (one of its files, bit_line_maker.cu, compiles for minutes on its own); it
# resumes where it stopped when called again on the same machine.
#
# Variables:
#   PYTHON       the python with torch (default: python3)
#   CUDA_ARCHS   architectures to build for (default: 90, Hopper; 80 for A100)
#   WHEELS       a folder of files brought along for a machine without a registry (default: .whl): the aihwkit
#                sdist (aihwkit-1.1.0.tar.gz), wheels of the build requirements the machine lacks (Python 3.12,
#                manylinux x86-64) and, in debs/, OpenBLAS's Debian packages; made on a machine with a registry by
#                'docker/gpu_check.sh --fetch'
#   BUILD_DIR    where aihwkit compiles (default: build/aihwkit-cuda, which git ignores): a second call on the same
#                machine resumes a build that ran out of time
#   CONCURRENT   trial counts to time on the shared GPU (default: "1 2 4 8"; resources.gpu 0.25 runs 4)
#
# Exit 0 when every step passed; the first failing step's error otherwise.
set -euo pipefail

PYTHON=${PYTHON:-python3}
CUDA_ARCHS=${CUDA_ARCHS:-90}
WHEELS=${WHEELS:-.whl}
BUILD_DIR=${BUILD_DIR:-build/aihwkit-cuda}
CONCURRENT=${CONCURRENT:-"1 2 4 8"}
AIHWKIT_VERSION=1.1.0

if [ "${1:-}" = "--fetch" ]; then
    # On a machine with PyPI: what the GPU machine lacks, for its Python 3.12 on x86-64 (its image holds torch,
    # timm, scikit-learn, numpy, pybind11, cmake, ninja, setuptools and wheel).
    mkdir -p "$WHEELS"
    "$PYTHON" -m pip download --no-deps --no-binary aihwkit "aihwkit==$AIHWKIT_VERSION" -d "$WHEELS"
    "$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$WHEELS" "scikit-build>=0.18.1" "setuptools>=77" "pybind11>=3.0.1" distro mypy librt ast-serialize \
        "pathspec>=1.0"
    mkdir -p "$WHEELS/debs"
    (cd "$WHEELS/debs" && apt-get download libopenblas-dev libopenblas-pthread-dev libopenblas0-pthread libgfortran5)
    du -sh "$WHEELS"; ls "$WHEELS" "$WHEELS/debs"
    exit 0
fi

# The project is not installed there: its packages are imported from this checkout.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
step() { echo; echo "=== $* ($(date +%T))"; }
started=$(date +%s)

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PYTHON" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "CUDA", torch.version.cuda, "GPU", torch.cuda.is_available())'
nvcc --version | tail -n 1
echo "cores: $(nproc)"

step "toolchain: BLAS and CUDA library headers"
# aihwkit's CMake looks for OpenBLAS; where the system has none, the brought Debian packages are unpacked aside.
if ! ldconfig -p | grep -q libopenblas; then
    root=/tmp/openblas-root
    for deb in "$WHEELS"/debs/*.deb; do dpkg -x "$deb" "$root"; done
    export OpenBLAS_HOME="$root/usr/include/x86_64-linux-gnu/openblas-pthread"
    export OpenBLAS="$root/usr/lib/x86_64-linux-gnu/openblas-pthread"
    export LD_LIBRARY_PATH="$OpenBLAS:$root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "OpenBLAS from $WHEELS/debs, unpacked in $root"
fi
# cuBLAS and cuRAND headers and libraries: the toolkit's, else those of torch's NVIDIA wheels (the same ones torch
# runs with), with the unversioned names the linker asks for.
if [ ! -f "$(dirname "$(dirname "$(command -v nvcc)")")/include/cublas_v2.h" ]; then
    site=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    links=/tmp/cuda-libs
    mkdir -p "$links"
    for header in cublas_v2.h curand.h cusparse.h cusolverDn.h; do
        found=$(find "$site/nvidia" -name "$header" -print -quit)
        [ -n "$found" ] && export CPATH="$(dirname "$found")${CPATH:+:$CPATH}"
    done
    for lib in cublas cublasLt curand; do
        found=$(find "$site/nvidia" -name "lib$lib.so.*" -print -quit)
        [ -n "$found" ] && ln -sf "$found" "$links/lib$lib.so"
    done
    export LIBRARY_PATH="$links${LIBRARY_PATH:+:$LIBRARY_PATH}"
    echo "CUDA library headers from torch's NVIDIA wheels: ${CPATH:-none found}"
fi

step "aihwkit $AIHWKIT_VERSION with CUDA for sm_$CUDA_ARCHS"
t0=$(date +%s)
mkdir -p "$BUILD_DIR"
PYTHON="$PYTHON" CUDA_ARCHS="$CUDA_ARCHS" JOBS="$(nproc)" AIHWKIT_SDIST="$WHEELS" BUILD_DIR="$(cd "$BUILD_DIR" && pwd)" \
    docker/build_aihwkit_cuda.sh
echo "built and installed in $(( $(date +%s) - t0 )) s"

step "a c-TTv2 trial on the GPU, continued from its checkpoint (docker/smoke_test.py)"
t0=$(date +%s)
"$PYTHON" docker/smoke_test.py
echo "smoke test: $(( $(date +%s) - t0 )) s"

step "analog steps per second: CPU against GPU, and trials sharing the GPU (bench/gpu_share.py)"
# shellcheck disable=SC2086 - CONCURRENT is a list of numbers
"$PYTHON" bench/gpu_share.py --concurrent $CONCURRENT

echo
echo "gpu_check: all steps passed in $(( $(date +%s) - started )) s"
