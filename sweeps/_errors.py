"""The sweeps package's exceptions, in one light module: a command can name them without loading what validates."""

from __future__ import annotations


class SpecError(ValueError):
    """A sweep spec that cannot run; the one-line message names the file, the field path and the problem."""


class FieldError(Exception):
    """One invalid field, before the file name is known; ``build_spec`` turns it into a ``SpecError``."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
