"""A submitted job ships the project as one package, ``analog_sweep``, with every subpackage inside it.

In a source checkout the subpackages live in folders of their own (pyproject's package-dir mapping); the job's
``py_modules`` entry must hold them all the same, so that the cluster imports the submitter's code and nothing else.
"""

from __future__ import annotations

from analog_sweep.orchestrator._jobs import PROJECT_SUBPACKAGES, _assemble_package, _runtime_env

from ..conftest import SUBPACKAGES, subpackage_files


def test_the_assembled_package_holds_every_subpackage_and_imports_from_there(tmp_path):
    package = _assemble_package(tmp_path)
    assert package == tmp_path / "analog_sweep"
    for sub in PROJECT_SUBPACKAGES:
        assert (package / sub / "__init__.py").is_file(), sub
    assert (package / "sweeps" / "quickstart.yaml").is_file()
    assert (package / "results" / "templates" / "report.html.j2").is_file()
    assert not list(package.rglob("__pycache__"))
    assert subpackage_files(tmp_path) == [str(package / name / "__init__.py") for name in SUBPACKAGES]


def test_the_runtime_environment_ships_that_one_package(tmp_path):
    env = _runtime_env(tmp_path / "analog_sweep", working_dir=None)
    assert env["py_modules"] == [str(tmp_path / "analog_sweep")]
    assert "working_dir" not in env
