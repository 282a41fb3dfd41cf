"""The YAML dialect of sweep specs and ``--set`` values: safe types only, no duplicate keys, no aliases, and no
plain value whose meaning depends on the YAML version.

PyYAML implements YAML 1.1, where ``on``/``yes``/``off``/``no`` are booleans, ``1:30`` is the base-60 number 90,
``010`` is octal 8, ``1_000`` is 1000 and ``2024-01-01`` is a date; YAML 1.2 (and most other tools, and most
readers) see text, or ten. Here a plain (unquoted) value means the same in both versions or is refused with a
one-line error that says what to write instead; a date is read as the text it is. Quoted values are always text.

An explicit tag follows the same rule. ``!!str`` (and the non-specific ``!``) is text in both versions, whatever the
value looks like. ``!!int``, ``!!float``, ``!!bool`` and ``!!null`` are read by YAML 1.2's core schema and by
PyYAML's YAML 1.1 constructors: the value is kept where both agree (``!!int "0x10"`` is 16, ``!!int "0o10"`` 8,
``!!float "1e-3"`` 0.001) and refused where they do not (``!!int "010"`` is 8 in YAML 1.1 and 10 in YAML 1.2,
``!!int "1_000"`` and ``!!bool "yes"`` are no integer or boolean in YAML 1.2).
"""

from __future__ import annotations

import math
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

    def compose_scalar_node(self, anchor: Any) -> yaml.ScalarNode:
        """The scalar, marked when its tag was written out (``!!int "010"``) rather than resolved from its text: an
        explicit tag is read by the tag's rules, not the plain value's. The non-specific ``!`` is resolved by PyYAML
        as a plain value is (``! 010`` is the int 8), so it is read as one."""
        tag = self.peek_event().tag
        node = super().compose_scalar_node(anchor)
        node.explicit_tag = tag not in (None, "!")
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """Any failure to build a value (a 13th month, a 5000-digit integer) becomes a YAML error at its line; a
        plain value YAML 1.1 and 1.2 read differently is refused (see the module's docstring)."""
        try:
            if isinstance(node, yaml.ScalarNode) and getattr(node, "explicit_tag", False):
                if node.tag in _CORE_TAGS:
                    return _tagged_scalar(node)
                return super().construct_object(node, deep=deep)  # !!str, !: text in both versions
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


_CORE_TAGS = frozenset(f"tag:yaml.org,2002:{kind}" for kind in ("int", "float", "bool", "null"))
# YAML 1.2's core schema, tag by tag (a sign is also taken before 0o and 0x, as for plain values here).
_YAML12_CORE = {
    "int": re.compile(r"[-+]?(?:[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)"),
    "float": re.compile(
        r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
    ),
    "bool": re.compile(r"true|True|TRUE|false|False|FALSE"),
    "null": re.compile(r"null|Null|NULL|~|"),
}
_UNREADABLE = object()


def _tagged_scalar(node: yaml.ScalarNode) -> Any:
    """The value of a scalar with an explicit ``!!int``, ``!!float``, ``!!bool`` or ``!!null`` tag, if YAML 1.1
    (PyYAML) and YAML 1.2 (the core schema) read it alike; otherwise a ``ConstructorError`` at its line that says
    what each version reads and what to write."""
    kind, text = node.tag.rsplit(":", 1)[-1], node.value
    old, new = _yaml11_tagged(kind, text), _yaml12_tagged(kind, text)
    if old is not _UNREADABLE and new is not _UNREADABLE and _same(old, new):
        return new
    tagged = f"!!{kind} {show(text)}"
    if old is _UNREADABLE and new is _UNREADABLE:
        problem = f"cannot read {show(text)} as {kind}: not {_ARTICLE[kind]} in YAML 1.1 or 1.2"
    elif new is _UNREADABLE:
        problem = f"{tagged} is {_plain(old)} in YAML 1.1 but not {_ARTICLE[kind]} in YAML 1.2: write {_plain(old)}"
    elif old is _UNREADABLE:
        problem = f"{tagged} is {_plain(new)} in YAML 1.2 but not {_ARTICLE[kind]} in YAML 1.1: write {_plain(new)}"
    else:
        problem = (
            f"{tagged} is {_plain(old)} in YAML 1.1 but {_plain(new)} in YAML 1.2: write {_plain(old)} or "
            f"{_plain(new)}, untagged"
        )
    raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)


_ARTICLE = {"int": "an integer", "float": "a number", "bool": "a boolean", "null": "null"}


def _yaml11_tagged(kind: str, text: str) -> Any:
    try:
        return _yaml11_number(kind, text)
    except (ValueError, TypeError, AttributeError, OverflowError, KeyError, IndexError, yaml.YAMLError):
        return _UNREADABLE


def _yaml12_tagged(kind: str, text: str) -> Any:
    if not _YAML12_CORE[kind].fullmatch(text):
        return _UNREADABLE
    if kind == "bool":
        return text.lower() == "true"
    if kind == "null":
        return None
    if kind == "float":
        lowered = text.lower()
        if lowered.lstrip("+-") == ".inf":
            return -math.inf if lowered.startswith("-") else math.inf
        return math.nan if lowered == ".nan" else float(text)
    return _yaml12_number(text)


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new):
        return True
    return type(old) is type(new) and old == new


def _plain(value: Any) -> str:
    """``value`` as a plain YAML value reads it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    return repr(value)


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
