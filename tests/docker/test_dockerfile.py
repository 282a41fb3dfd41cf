"""The worker image builds aihwkit with CUDA through ``docker/build_aihwkit_cuda.sh``, the one recipe every check of
that build runs too, and the recipe avoids what is known to break it: the sdist's ``license = "MIT"`` needs
setuptools >= 77, and ``--no-binary :all:`` would build every build requirement from source as well."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

DOCKER = Path(__file__).resolve().parents[2] / "docker"
DOCKERFILE = (DOCKER / "Dockerfile").read_text()
RECIPE = DOCKER / "build_aihwkit_cuda.sh"
SCRIPT = RECIPE.read_text()


def test_the_image_builds_aihwkit_with_the_recipe_and_nothing_else():
    assert "COPY docker/build_aihwkit_cuda.sh docker/build_aihwkit_cuda.sh" in DOCKERFILE
    assert re.search(r"^RUN .*docker/build_aihwkit_cuda\.sh\s*$", DOCKERFILE, re.M)
    # The build itself (sdist, CMake options) lives in the recipe only, so the two cannot drift.
    assert "aihwkit==" not in DOCKERFILE and "USE_CUDA" not in DOCKERFILE


@pytest.mark.parametrize("script", ["build_aihwkit_cuda.sh", "gpu_check.sh"])
def test_the_scripts_are_valid_bash_and_stop_at_the_first_error(script):
    bash = shutil.which("bash")
    assert bash
    subprocess.run([bash, "-n", str(DOCKER / script)], check=True)
    assert "set -euo pipefail" in (DOCKER / script).read_text()
    assert os.access(DOCKER / script, os.X_OK)  # the Dockerfile and gpu_check.sh run them directly


def test_the_gpu_check_builds_with_the_same_recipe():
    assert "docker/build_aihwkit_cuda.sh" in (DOCKER / "gpu_check.sh").read_text()


def test_the_recipe_avoids_the_known_build_failures():
    downloads = re.findall(r"download --[^\n]*", SCRIPT)  # the pip download commands, not the comments
    assert downloads and all("--no-binary aihwkit" in d and ":all:" not in d for d in downloads)
    versions = [int(v) for v in re.findall(r"setuptools>=(\d+)", SCRIPT)]
    assert versions and min(versions) >= 77
    assert "cuda.is_compiled()" in SCRIPT  # it ends by proving the CUDA build


def test_the_image_cuda_matches_torchs():
    torch = pytest.importorskip("torch")
    if torch.version.cuda is None:
        pytest.skip("this torch is a CPU build: the pinned PyPI torch names the CUDA it was built for")
    image = re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:(\d+)\.(\d+)", DOCKERFILE, re.M)
    assert image and ".".join(image.groups()) == ".".join(torch.version.cuda.split(".")[:2])
