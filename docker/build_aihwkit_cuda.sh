#!/usr/bin/env bash
# Build aihwkit 1.1.0 from its source distribution WITH CUDA and install it into one python.
# The aihwkit wheel on PyPI is CPU-only; the CUDA simulator (aihwkit.simulator.rpu_base.cuda) needs a
# source build against the torch that is already installed in that python.
#
# Steps: get the sdist (pip download, or a given folder), install the build requirements into $PYTHON,
# build the wheel with scikit-build/CMake (USE_CUDA=ON, RPU_BLAS=OpenBLAS, RPU_CUDA_ARCHITECTURES),
# install it with --no-deps, and assert that cuda.is_compiled() is true (no GPU is needed for that).
#
# Variables:
#   PYTHON          python to build for and install into; it must already have torch (a CUDA build)
#                   (default: python)
#   CUDA_ARCHS      CMake CUDA architectures, ';'-separated: 80 = A100, 90 = H100/H200 (default: "80;90").
#                   A plain number embeds SASS and PTX for it; "90-real" embeds SASS only.
#   JOBS            parallel compile jobs (default: number of CPUs). Each nvcc job can take a few GiB.
#   AIHWKIT_SDIST   optional folder holding aihwkit-1.1.0.tar.gz and, for a machine without a package
#                   registry, wheels of the build requirements; pip then installs with --no-index from it.
#   BUILD_DIR       optional folder to build in; it is kept, so a second run resumes the compile
#                   (default: a temporary folder, removed at the end).
#   CUDACXX         nvcc to use (default: nvcc on PATH, else $CUDA_HOME/bin/nvcc, else /usr/local/cuda/bin/nvcc).
#   SKBUILD_CONFIGURE_OPTIONS, SKBUILD_BUILD_OPTIONS
#                   extra CMake / ninja arguments, appended to the ones set here.
#   pip honors PIP_CONSTRAINT (e.g. the project's constraints.txt) for the build requirements.
#
# Needs: a CUDA toolkit whose major version matches torch's CUDA (torch 2.10.0+cu128 -> CUDA 12.x):
#   nvcc, CUDA runtime, cuBLAS and cuRAND headers and libraries, plus the cuSPARSE and cuSOLVER headers
#   (included by torch's ATen/cuda/CUDAContext.h), e.g. an nvidia/cuda:12.8.*-devel image;
#   with a CUDA 13 nvcc the script adds aliases for the CUB iterators that CCCL 3 removed, and the
#   extension then links cudart 13 statically: it needs a driver for CUDA 13 (>= 580) on the GPU machine;
#   a C++17 compiler that this nvcc accepts as host compiler; BLAS headers and library
#   (libopenblas-dev); a package registry for pip, unless AIHWKIT_SDIST holds the files.
set -euo pipefail

AIHWKIT_VERSION=1.1.0
PYTHON=${PYTHON:-python}
CUDA_ARCHS=${CUDA_ARCHS:-"80;90"}
JOBS=${JOBS:-$(nproc)}
AIHWKIT_SDIST=${AIHWKIT_SDIST:-}
BUILD_DIR=${BUILD_DIR:-}

PYTHON=$(command -v "$PYTHON")
# stubgen (mypy), run by aihwkit's CMake after linking, and the "python" of its FindTorch
# fallback are looked up on PATH: put this python's scripts folder first.
SCRIPTS_DIR=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
export PATH="$SCRIPTS_DIR:$PATH"

if [ -z "${CUDACXX:-}" ]; then
    CUDACXX=$(command -v nvcc || echo "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc")
fi
[ -x "$CUDACXX" ] || { echo "error: nvcc not found (set CUDACXX or CUDA_HOME)" >&2; exit 1; }
export CUDACXX
NVCC_CUDA=$("$CUDACXX" --version | sed -n 's/.*release \([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p')
TORCH_CUDA=$("$PYTHON" -c 'import torch; print(torch.version.cuda or "")')
echo "python: $PYTHON  torch CUDA: ${TORCH_CUDA:-none}  nvcc: $CUDACXX (CUDA $NVCC_CUDA)  archs: $CUDA_ARCHS  jobs: $JOBS"
[ -n "$TORCH_CUDA" ] || { echo "error: the torch in $PYTHON is a CPU-only build" >&2; exit 1; }
if [ "${NVCC_CUDA%%.*}" != "${TORCH_CUDA%%.*}" ]; then
    echo "warning: nvcc is CUDA $NVCC_CUDA but torch was built for CUDA $TORCH_CUDA" >&2
fi

if [ -n "$BUILD_DIR" ]; then
    mkdir -p "$BUILD_DIR"
    WORK=$(cd "$BUILD_DIR" && pwd)
else
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
fi

PIP=("$PYTHON" -m pip)
if [ -n "$AIHWKIT_SDIST" ]; then
    PIP_SOURCE=(--no-index --find-links "$AIHWKIT_SDIST")
    SDIST="$AIHWKIT_SDIST/aihwkit-$AIHWKIT_VERSION.tar.gz"
else
    PIP_SOURCE=()
    SDIST="$WORK/aihwkit-$AIHWKIT_VERSION.tar.gz"
    [ -f "$SDIST" ] || "${PIP[@]}" download --no-deps --no-binary aihwkit "aihwkit==$AIHWKIT_VERSION" -d "$WORK"
fi
[ -f "$SDIST" ] || { echo "error: $SDIST not found" >&2; exit 1; }

# Build requirements (pyproject's build-system.requires plus cmake and mypy's stubgen);
# setuptools >= 77 reads the sdist's `license = "MIT"`.
"${PIP[@]}" install "${PIP_SOURCE[@]}" "setuptools>=77" wheel "scikit-build>=0.18.1" \
    "pybind11>=3.0.1" ninja "cmake>=3.18" mypy

SRC="$WORK/aihwkit-$AIHWKIT_VERSION"
[ -d "$SRC" ] || tar xzf "$SDIST" -C "$WORK"

# CUDA >= 13 ships CCCL 3, which removed cub::TransformInputIterator and cub::CountingInputIterator
# (used by maximizer.cu, noise_manager.cu, weight_clipper_cuda.cu). Alias them to the Thrust iterators,
# as aihwkit 1.2.0 does; the block is compiled only where CUB >= 3.0.
CUB_HEADER="$SRC/src/rpucuda/cuda/rpu_cub.h"
if [ "${NVCC_CUDA%%.*}" -ge 13 ] && ! grep -q "CountingInputIterator =" "$CUB_HEADER"; then
    cat >>"$CUB_HEADER" <<'CUB_COMPAT'

#if defined(CUB_VERSION) && (CUB_VERSION >= 300000)
#include <cstddef>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>
CUB_NAMESPACE_BEGIN
template <typename ValueT, typename ConversionOpT, typename InputIteratorT,
          typename OffsetT = std::ptrdiff_t>
using TransformInputIterator =
    ::thrust::transform_iterator<ConversionOpT, InputIteratorT, ValueT, ValueT>;
template <typename ValueT, typename OffsetT = std::ptrdiff_t>
using CountingInputIterator = ::thrust::counting_iterator<ValueT>;
CUB_NAMESPACE_END
#endif
CUB_COMPAT
fi

# Options for aihwkit's CMakeLists.txt, passed by scikit-build (see its developer_install docs).
export SKBUILD_CONFIGURE_OPTIONS="-DUSE_CUDA=ON -DRPU_BLAS=OpenBLAS -DRPU_CUDA_ARCHITECTURES=$CUDA_ARCHS \
-DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHS -DPython3_EXECUTABLE=$PYTHON -DPython_EXECUTABLE=$PYTHON \
${SKBUILD_CONFIGURE_OPTIONS:-}"
export SKBUILD_BUILD_OPTIONS="-j$JOBS ${SKBUILD_BUILD_OPTIONS:-}"
export CMAKE_BUILD_PARALLEL_LEVEL=$JOBS

# In-tree build without isolation: CMake must see the torch (and pybind11) of $PYTHON.
rm -rf "$WORK/dist"
(cd "$SRC" && "${PIP[@]}" wheel -v --no-build-isolation --no-deps "${PIP_SOURCE[@]}" -w "$WORK/dist" .)
"${PIP[@]}" install --no-deps --force-reinstall "$WORK"/dist/aihwkit-"$AIHWKIT_VERSION"-*.whl

cd /
"$PYTHON" -c "
from aihwkit.simulator.rpu_base import cuda
print('aihwkit cuda.is_compiled():', cuda.is_compiled())
assert cuda.is_compiled(), 'aihwkit was built without CUDA'
"
