"""A plain YAML value means what a reader sees, or is refused in one line (sweeps/README.md,
"YAML rules"). PyYAML implements YAML 1.1, where ``1:30`` is 90, ``on``/``yes`` are true and ``010`` is 8; the
broken corpus (``broken/yaml11_*.yaml``) covers spec files, these cover ``--set`` values and what is still read."""

from __future__ import annotations

import pytest

from analog_sweep.sweeps import SpecError, load_spec, shipped_specs
from analog_sweep.sweeps._yaml import parse_yaml

QUICKSTART = shipped_specs()["quickstart"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1:30", "1:30 is the base-60 number 90 in YAML 1.1"),
        ("on", "on is a boolean in YAML 1.1"),
        ("Off", "Off is a boolean in YAML 1.1"),
        ("YES", "YES is a boolean in YAML 1.1"),
        ("no", "no is a boolean in YAML 1.1"),
        ("010", "010 is the octal number 8 in YAML 1.1 but 10 in YAML 1.2"),
        ("0b11", "0b11 is the binary number 3 in YAML 1.1"),
        ("1_000", "1_000 is 1000 in YAML 1.1"),
        ("1:30.5", "1:30.5 is the base-60 number 90.5"),
        ("0o17", "0o17 is text in YAML 1.1 but the number 15 in YAML 1.2"),
        ("09", "09 is text in YAML 1.1 but the number 9 in YAML 1.2"),
    ],
)
def test_a_version_dependent_plain_value_is_refused_in_one_line(text, expected):
    with pytest.raises(SpecError) as caught:
        parse_yaml(f"value: {text}\n", source="x.yaml")
    assert str(caught.value).startswith(f"x.yaml:1: {expected}")
    assert "\n" not in str(caught.value) and "quote it" in str(caught.value)
    with pytest.raises(SpecError, match=r"--set epochs:1: .*YAML 1\.1"):  # a --set value follows the same rules
        load_spec(QUICKSTART, [f"epochs={text}"])


def test_a_version_dependent_key_is_refused():
    with pytest.raises(SpecError, match=r"^x\.yaml:2: on is a boolean in YAML 1\.1"):
        parse_yaml("a: 1\non: 2\n", source="x.yaml")


def test_values_read_alike_in_both_versions_are_kept():
    text = "[true, False, null, ~, 0, -7, +5, 0x1F, 1.5, .5, 1e-3, 2.0E+3, .inf, plain, '1:30', 'on', \"010\"]"
    assert parse_yaml(f"v: {text}", source="x.yaml")["v"][:14] == [
        True,
        False,
        None,
        None,
        0,
        -7,
        5,
        31,
        1.5,
        0.5,
        0.001,
        2000.0,
        float("inf"),
        "plain",
    ]
    assert parse_yaml(f"v: {text}", source="x.yaml")["v"][14:] == ["1:30", "on", "010"]  # quoted: text


def test_a_date_is_the_text_a_reader_sees():
    assert parse_yaml("a: 2024-01-01\nb: 2001-12-14t21:59:43.10-05:00\nc: =", source="x.yaml") == {
        "a": "2024-01-01",
        "b": "2001-12-14t21:59:43.10-05:00",
        "c": "=",
    }
    spec = load_spec(QUICKSTART, ["data.data_root=2024-01-01"])
    assert spec.data.data_root == "2024-01-01"


def test_a_merge_key_is_refused():
    with pytest.raises(SpecError, match=r"^x\.yaml:2: merge keys \(<<\) are not supported"):
        parse_yaml("a: 1\n<<: {b: 2}\n", source="x.yaml")
    assert parse_yaml("'<<': 1", source="x.yaml") == {"<<": 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('!!int "010"', "!!int '010' is 8 in YAML 1.1 but 10 in YAML 1.2: write 8 or 10, untagged"),
        ("!!int 010", "!!int '010' is 8 in YAML 1.1 but 10 in YAML 1.2: write 8 or 10, untagged"),
        ('!!int "-010"', "!!int '-010' is -8 in YAML 1.1 but -10 in YAML 1.2: write -8 or -10, untagged"),
        ('!!int "1_000"', "!!int '1_000' is 1000 in YAML 1.1 but not an integer in YAML 1.2: write 1000"),
        ('!!int "1:30"', "!!int '1:30' is 90 in YAML 1.1 but not an integer in YAML 1.2: write 90"),
        ('!!int "0b11"', "!!int '0b11' is 3 in YAML 1.1 but not an integer in YAML 1.2: write 3"),
        ('!!int "09"', "!!int '09' is 9 in YAML 1.2 but not an integer in YAML 1.1: write 9"),
        ('!!float "1_0"', "!!float '1_0' is 10.0 in YAML 1.1 but not a number in YAML 1.2: write 10.0"),
        ('!!bool "yes"', "!!bool 'yes' is true in YAML 1.1 but not a boolean in YAML 1.2: write true"),
        ('!!bool "off"', "!!bool 'off' is false in YAML 1.1 but not a boolean in YAML 1.2: write false"),
        ('!!null "none"', "!!null 'none' is null in YAML 1.1 but not null in YAML 1.2: write null"),
        ('!!int "1.5"', "cannot read '1.5' as int: not an integer in YAML 1.1 or 1.2"),
        ("!!int", "cannot read '' as int: not an integer in YAML 1.1 or 1.2"),
    ],
)
def test_an_explicit_tag_read_differently_by_the_two_versions_is_refused_in_one_line(text, expected):
    with pytest.raises(SpecError) as caught:
        parse_yaml(f"a: 1\nvalue: {text}\n", source="x.yaml")
    assert str(caught.value) == f"x.yaml:2: {expected}"
    with pytest.raises(SpecError) as caught:  # a --set value follows the same rules
        load_spec(QUICKSTART, [f"epochs={text}"])
    assert str(caught.value).endswith(f"--set epochs:1: {expected}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('!!int "0o10"', 8),
        ('!!int "0x10"', 16),
        ('!!int "-0x1F"', -31),
        ('!!int "10"', 10),
        ("!!int 0", 0),
        ('!!float "1e-3"', 0.001),
        ('!!float "010"', 10.0),
        ('!!float "1"', 1.0),
        ('!!float ".5"', 0.5),
        ('!!float "-.inf"', float("-inf")),
        ('!!bool "True"', True),
        ('!!null "~"', None),
        ("!!null", None),
        ("!!str 010", "010"),
        ("!!str 1:30", "1:30"),
        ("!!str yes", "yes"),
        ("!!str 0o17", "0o17"),
    ],
)
def test_an_explicit_tag_both_versions_read_alike_is_kept(text, expected):
    value = parse_yaml(f"value: {text}\n", source="x.yaml")["value"]
    assert value == expected and type(value) is type(expected)


def test_an_explicit_tag_in_a_spec_reads_as_its_value():
    spec = load_spec(QUICKSTART, ['epochs=!!int "0x10"', 'lr_search.values=[!!float "1e-1"]'])
    assert spec.epochs == 16 and spec.lr_search.values == (0.1,)
