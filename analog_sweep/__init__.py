"""analog-sweep: robustness sweeps of analog in-memory transfer learning, one YAML file and one command."""

__version__ = "0.1.0"
