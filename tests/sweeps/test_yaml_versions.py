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
