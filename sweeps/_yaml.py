"""The YAML dialect of sweep specs and ``--set`` values: safe types only, no duplicate keys, no aliases."""

from __future__ import annotations

import re
from typing import Any

import yaml

from sweeps._schema import SpecError, show


class SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader, stricter: a repeated key or an alias is an error, and ``1e-3`` is a float (YAML 1.2)
    rather than the string PyYAML 1.1 rules would make it."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*{event.anchor}) are not supported; write the value out", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """Any failure to build a value (a 13th month, a 5000-digit integer) becomes a YAML error at its line."""
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, AttributeError, OverflowError) as error:
            problem = f"cannot read {show(node.value)} as {node.tag.rsplit(':', 1)[-1]}: {error}"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in first_line
            except TypeError:
                continue  # an unhashable key: the base class reports it
            if repeated:
                problem = f"duplicate key {show(key)} (first given on line {first_line[key] + 1})"
                raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
            first_line[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def parse_yaml(text: str | bytes, *, source: str) -> Any:
    """YAML text to plain Python values; a syntax error becomes a one-line ``SpecError`` (``file:line: problem``)."""
    try:
        return yaml.load(text, Loader=SpecLoader)  # noqa: S506 - SpecLoader is a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = " ".join(f"{error.context or ''} {error.problem or ''}".split()) or "invalid YAML"
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise SpecError(f"{where}: {problem}") from None
    except yaml.YAMLError as error:
        raise SpecError(f"{source}: {' '.join(str(error).split())}") from None
