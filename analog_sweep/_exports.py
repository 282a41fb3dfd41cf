"""Lazy re-exports for the packages' thin ``__init__`` modules (PEP 562 module ``__getattr__``).

Each package lists what it exports, by private module; a name's module is imported on first use. So a command that
reads the results store imports the store's modules and not matplotlib, Ray or torch, which only the commands that
draw figures or run trials need.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, tuple[str, ...]]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for ``package``, which exports ``exports``.

    Args:
        package: The package's ``__name__``.
        exports: Private module name (relative, e.g. ``"_store"``) -> the names it exports.

    Returns:
        ``(__all__, __getattr__, __dir__)`` to assign in the package's ``__init__``.

    Raises:
        ValueError: If two modules export the same name.
    """
    where: dict[str, str] = {}
    for module, names in exports.items():
        for name in names:
            if name in where:
                raise ValueError(f"{package}: {name!r} is exported by both {where[name]} and {module}")
            where[name] = module
    names = sorted(where)

    def __getattr__(name: str) -> Any:
        try:
            module = where[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        globals_of_package = importlib.import_module(package).__dict__
        globals_of_package[name] = value  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return names

    return names, __getattr__, __dir__
