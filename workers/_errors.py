"""The workers' exceptions, in one light module: a command can name them without loading torch or aihwkit.

Each message is one line saying what is wrong and, where there is one, what to do.
"""


class ConfigError(ValueError):
    """A trial config that cannot run; the message names the field."""


class DataError(ValueError):
    """Data that cannot be loaded as configured; the message is one line saying what is wrong and what to do."""


class ModelError(ValueError):
    """An unknown preset or override; the message names it."""


class TileBackendError(RuntimeError):
    """The installed aihwkit build cannot run tiles on the requested torch device."""


class TrainingDiverged(ArithmeticError):
    """Training produced a non-finite loss or weight; the message says which, at which epoch."""


class TileStateError(ValueError):
    """A tile state that cannot be saved, read or applied to this model; the message says why."""


class CorruptFileError(OSError):
    """A file that is truncated, altered or not ours; its content must not be used."""
