"""analog-sweep: robustness sweeps of analog in-memory transfer learning, one YAML file and one command."""

from pathlib import Path

__version__ = "0.1.0"

# The subpackages live in the source tree's top-level folders (orchestrator/, workers/, results/, sweeps/), which
# the wheel installs inside this package (pyproject's package-dir mapping). Imported from a source checkout (the
# checkout on sys.path, or the current directory of 'python -m analog_sweep' and of Ray's workers), this package
# also searches the checkout's root for them, so that it is whole there too and never mixes in another copy's.
_SOURCE_ROOT = Path(__file__).resolve().parent.parent
if not (Path(__file__).parent / "results").is_dir() and (_SOURCE_ROOT / "results" / "__init__.py").is_file():
    __path__.append(str(_SOURCE_ROOT))
