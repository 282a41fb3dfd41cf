"""The YAML dialect of sweep specs and ``--set`` values: safe types only, no duplicate keys, no aliases, and no
plain value whose meaning depends on the YAML version.

PyYAML implements YAML 1.1, where ``on``/``yes``/``off``/``no`` are booleans, ``1:30`` is the base-60 number 90,
``010`` is octal 8, ``1_000`` is 1000 and ``2024-01-01`` is a date; YAML 1.2 (and most other tools, and most
readers) see text, or ten. Here a plain (unquoted) value means the same in both versions or is refused with a
one-line error that says what to write instead; a date is read as the text it is. Quoted values are always text.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from analog_sweep.sweeps._schema import SpecError, show


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
        """Any failure to build a value (a 13th month, a 5000-digit integer) becomes a YAML error at its line; a
        plain value YAML 1.1 and 1.2 read differently is refused (see the module's docstring)."""
        try:
            if isinstance(node, yaml.ScalarNode) and node.style is None:
                if node.tag in (_TIMESTAMP, _VALUE):
                    return node.value  # a date, or a lone "=": the text a reader sees (and YAML 1.2 reads)
                problem = _version_dependent(node.tag, node.value)
                if problem is not None:
                    raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, AttributeError, OverflowError) as error:
            problem = f"cannot read {show(node.value)} as {node.tag.rsplit(':', 1)[-1]}: {error}"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """A merge key (``<<``) is YAML 1.1 only: refused (quote it, ``"<<"``, for a key of that name)."""
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                problem = 'merge keys (<<) are not supported; write the values out, or quote it ("<<") for a key'
                raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)

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


_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_VALUE = "tag:yaml.org,2002:value"
_PLAIN_BOOLEANS = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})
_PLAIN_INTEGER = re.compile(r"[-+]?(?:0|[1-9][0-9]*|0x[0-9a-fA-F]+)")  # decimal, or hex: the same in 1.1 and 1.2
# Numbers in YAML 1.2's core schema; PyYAML reads some of them as text (0o17, 09).
_YAML12_NUMBER = re.compile(r"[-+]?(?:0o[0-7]+|0x[0-9a-fA-F]+|(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)")


def _version_dependent(tag: str, text: str) -> str | None:
    """Why the plain scalar ``text`` (resolved by PyYAML to ``tag``) means something else in YAML 1.1 than in YAML
    1.2 or to a reader, with what to write instead; None when its meaning is the same everywhere."""
    quoted = f"or quote it ({show(text)}) for text"
    kind = tag.rsplit(":", 1)[-1]
    if kind == "bool" and text not in _PLAIN_BOOLEANS:
        return f"{text} is a boolean in YAML 1.1 but text in YAML 1.2: write true or false, {quoted}"
    if kind in ("int", "float") and ":" in text:
        value = _yaml11_number(kind, text)
        return f"{text} is the base-60 number {value} in YAML 1.1 but text in YAML 1.2: write {value}, {quoted}"
    if kind in ("int", "float") and "_" in text:
        value = _yaml11_number(kind, text)
        return f"{text} is {value} in YAML 1.1 but text in YAML 1.2: write {value}, {quoted}"
    if kind == "int" and not _PLAIN_INTEGER.fullmatch(text):
        value = _yaml11_number(kind, text)
        if text.lstrip("+-").startswith(("0b", "0B")):
            return f"{text} is the binary number {value} in YAML 1.1 but text in YAML 1.2: write {value}, {quoted}"
        decimal = int(text.lstrip("+-"), 10) * (-1 if text.startswith("-") else 1)
        if decimal == value:
            return f"{text} has a leading zero (an octal number in YAML 1.1): write {value}, {quoted}"
        return (
            f"{text} is the octal number {value} in YAML 1.1 but {decimal} in YAML 1.2: write {value} or "
            f"{decimal} without the leading zero, {quoted}"
        )
    if kind == "str" and _YAML12_NUMBER.fullmatch(text):
        value = _yaml12_number(text)
        return f"{text} is text in YAML 1.1 but the number {value} in YAML 1.2: write {value}, {quoted}"
    return None


def _yaml12_number(text: str) -> int | float:
    sign, digits = (-1 if text.startswith("-") else 1), text.lstrip("+-")
    if digits.startswith("0o"):
        return sign * int(digits[2:], 8)
    if digits.startswith("0x"):
        return sign * int(digits[2:], 16)
    return sign * (int(digits) if digits.isdigit() else float(digits))


def _yaml11_number(kind: str, text: str) -> int | float:
    node = yaml.ScalarNode(f"tag:yaml.org,2002:{kind}", text)
    return yaml.SafeLoader("").construct_object(node)


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
