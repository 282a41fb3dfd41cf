"""Exceptions of the results store: one line each, split by whose fault it is so callers can map exit codes."""

from __future__ import annotations


class StoreError(Exception):
    """Anything the results store cannot do."""


class StoreUnavailable(StoreError):
    """The database could not be reached or opened; retrying later may work (exit code 1)."""


class StoreDamaged(StoreError):
    """The database file (or a PostgreSQL server's pages) is damaged: its pages are malformed or its text is not UTF-8.

    Retrying will fail again, and so will every command that reads the damaged part (exit code 1); the message names
    the store and the next step (``analog-sweep store check``, and restoring its last backup where there is one).
    """


class StoreInputError(StoreError, ValueError):
    """The caller asked for something wrong; retrying the same request will fail again (exit code 2)."""


class BadStoreURL(StoreInputError):
    """The store URL cannot be parsed, names an unsupported database, or points nowhere."""


class StoreMissing(BadStoreURL):
    """The URL names no store where one must exist: no database file, or a database without an analog-sweep store."""


class SchemaVersionError(StoreInputError):
    """The database holds a store schema this version of analog-sweep cannot read or upgrade."""


class StoreOutdated(SchemaVersionError):
    """A reader found a store of an older schema version, which only a writer upgrades, and cannot read it as it is
    (a PostgreSQL store: a SQLite one is read from an upgraded private copy). ``version``: the store's version."""

    def __init__(self, message: str, version: int) -> None:
        super().__init__(message)
        self.version = version


class NotFound(StoreInputError):
    """A sweep, point or trial the caller named is not in the store."""


class SpecConflict(StoreInputError):
    """A sweep was recorded again under the same name but with a different spec."""


class TrialConflict(StoreInputError):
    """A trial id was recorded again for another sweep or point: replays may update a row, never move it."""


class QueryRefused(StoreInputError):
    """A read-only query tried to write, change the schema, or run more than one statement."""


class QueryFailed(StoreInputError):
    """A read-only query is not valid SQL for this database (syntax, unknown table or column)."""
