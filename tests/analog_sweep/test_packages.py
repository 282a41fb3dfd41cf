"""One top-level name, packages that export what others use, and no reach into another package's private modules.

The design's folders (``orchestrator/``, ``workers/``, ``results/``, ``sweeps/``) install as subpackages of
``analog_sweep`` (pyproject's package-dir mapping); each package's ``__init__`` lists its exports by private module
and loads them on first use.
"""

from __future__ import annotations

import ast
import importlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ..conftest import SUBPACKAGES, subpackage_files

ROOT = Path(__file__).resolve().parents[2]
SOURCE_FOLDERS = ("analog_sweep", *SUBPACKAGES)


def _library_modules() -> list[Path]:
    return sorted(path for folder in SOURCE_FOLDERS for path in (ROOT / folder).rglob("*.py"))


def _package_of(path: Path) -> str:
    folder = path.relative_to(ROOT).parts[0]
    if folder == "analog_sweep":
        return "analog_sweep.cli" if "cli" in path.relative_to(ROOT).parts else "analog_sweep"
    return f"analog_sweep.{folder}"


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_every_exported_name_resolves(package):
    module = importlib.import_module(f"analog_sweep.{package}")
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"analog_sweep.{package} lists names its modules do not define: {missing}"
    assert sorted(dir(module)) == sorted(module.__all__)


def test_an_unknown_name_is_an_attribute_error():
    from analog_sweep import results

    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        results.no_such_name  # noqa: B018


def test_no_module_imports_another_package_privately_or_by_an_old_top_level_name():
    found = []
    for path in _library_modules():
        own = _package_of(path)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
                if node.module.count(".") == 1:  # from analog_sweep.results import _engine
                    names += [f"{node.module}.{alias.name}" for alias in node.names if alias.name.startswith("_")]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] in SUBPACKAGES:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: top-level {name}")
                elif parts[0] == "analog_sweep" and len(parts) > 2 and parts[2].startswith("_"):
                    if ".".join(parts[:2]) != own and not parts[1].startswith("_"):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: private {name}")
    assert not found, "\n".join(found)


def _copy_source(into: Path) -> Path:
    ignore = shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__", "sweep-store", ".*cache*")
    shutil.copytree(ROOT, into, ignore=ignore)
    return into


def test_a_source_checkout_on_the_path_is_a_whole_package(tmp_path):
    """A checkout first on sys.path (the current directory of ``python -m analog_sweep``, of Ray's workers, or
    ``PYTHONPATH=checkout``) gives every subpackage from itself, with no install and no import hook (``-S``)."""
    source = _copy_source(tmp_path / "checkout")
    assert subpackage_files(source) == [str(source / package / "__init__.py") for package in SUBPACKAGES]


@pytest.mark.slow
def test_the_wheel_adds_one_top_level_name(tmp_path):
    """Build the wheel as ``pip install .`` would and list what it puts into site-packages.

    It builds from a copy of the source tree, so that setuptools' ``build/`` folder is not left in the checkout.
    """
    source = _copy_source(tmp_path / "source")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("analog_sweep-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"analog_sweep", "analog_sweep-0.1.0.dist-info"}, sorted(top)
    for package in SUBPACKAGES:
        assert f"analog_sweep/{package}/__init__.py" in names
    assert "analog_sweep/sweeps/quickstart.yaml" in names
    assert "analog_sweep/results/templates/report.html.j2" in names
