"""Bad input through the real command line: every broken sweep file, bad ``--set``, missing or odd paths, unknown
sweeps and bad store URLs get one ``Error:`` line and exit code 2 (1 for a server that cannot be reached), never a
traceback, and the store, which already holds a sweep part way done, is byte-for-byte unchanged. Loading never runs
code: YAML ``!!python`` tags are refused and the command in them is not run.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from analog_sweep.cli import cli
from analog_sweep.sweeps._yaml import parse_yaml

from .conftest import (
    QUICKSTART,
    assert_one_line_error,
    cli_process,
    in_progress_store,
    store_files_digest,
)

BROKEN_DIR = Path(__file__).parents[1] / "sweeps" / "broken"
BROKEN = sorted(BROKEN_DIR.glob("*.yaml"))
QUICKSTART_TEXT = Path(QUICKSTART).read_text()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, str]:
    """A SQLite store holding an interrupted sweep, closed (no -wal/-shm left), and its URL."""
    db = tmp_path_factory.mktemp("store") / "results.db"
    in_progress_store(f"sqlite:///{db}")
    return db, f"sqlite:///{db}"


def refused(args: list[str], store, tmp_path: Path, *, exit_code: int = 2, contains: tuple[str, ...] = ()) -> str:
    """Run the CLI in-process; it must fail with one line and ``exit_code``, print nothing on stdout, and leave the
    store's files and the storage folder as they were. Returns the error line."""
    db, _ = store
    before = store_files_digest(db)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == exit_code, (result.exit_code, result.output, result.exception)
    assert result.stdout == ""
    line = assert_one_line_error(result.stderr, *contains)
    assert store_files_digest(db) == before
    assert not (tmp_path / "storage").exists()
    return line


def run_args(spec: str | os.PathLike, store, tmp_path: Path, *extra: str) -> list[str]:
    return ["run", str(spec), *extra, "--store", store[1], "--storage-path", str(tmp_path / "storage")]


def test_the_corpus_covers_the_classes_of_mistake():
    names = {path.stem for path in BROKEN}
    for needed in ["wrong_type_epochs", "unknown_top_field", "negative_device", "nan_axis_value", "empty_axis",
                   "unknown_cifar_class", "unknown_preset", "duplicate_key", "yaml_unclosed_bracket", "huge_grid",
                   "name_parent_escape", "name_absolute", "name_nul", "yaml_python_tag"]:  # fmt: skip
        assert needed in names


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_every_broken_spec_file_is_refused_by_run_with_one_line(path, store, tmp_path):
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    line = refused(run_args(path, store, tmp_path), store, tmp_path, contains=(expected,))
    assert line.startswith(f"Error: {path}")  # names the file, then the field


PYTHON_TAGS = [
    "epochs: !!python/object/apply:os.system ['touch {marker}']",
    "epochs: !!python/object/apply:subprocess.check_call [['touch', '{marker}']]",
    "name: !!python/object/new:os.system ['touch {marker}']",
    "name: !!python/name:os.system",
    "data: !!python/object:os.PathLike {{x: 1}}",
    "epochs: !<tag:yaml.org,2002:python/object/apply:os.system> ['touch {marker}']",
]


@pytest.mark.parametrize("line", PYTHON_TAGS)
def test_yaml_python_tags_are_refused_and_never_run(line, store, tmp_path):
    marker = tmp_path / "RAN"
    spec = tmp_path / "evil.yaml"
    evil = line.format(marker=marker)
    fields = {"name": "name: evil", "data": 'data: {dataset: digits, classes: [["5", "8"]]}', "epochs": "epochs: 1"}
    fields[evil.split(":")[0]] = evil
    spec.write_text("\n".join(fields.values()) + "\n")
    refused(run_args(spec, store, tmp_path), store, tmp_path, contains=("evil.yaml", "python/"))
    override = line.format(marker=marker).replace(": ", "=", 1)
    refused(run_args(QUICKSTART, store, tmp_path, "--set", override), store, tmp_path, contains=("python/",))
    assert not marker.exists()


@pytest.mark.parametrize(
    "override, says",
    [
        ("epochs", "expected path=value"),
        ("=3", "is not a dotted field path"),
        ("nope=1", "unknown field 'nope'"),
        ("data.nope=1", "unknown field 'data.nope'"),
        ("data.classes.x=1", "data.classes has no sub-fields"),
        ("epochs=-1", "epochs: must be an integer from 1"),
        ("epochs=two", "epochs: must be an integer"),
        ("epochs=1.5", "epochs: must be an integer"),
        ("epochs=[", "--set epochs"),
        ("axes.transfer_noise=[.nan]", "axes.transfer_noise[0]: must be a finite number"),
        ("axes.transfer_noise=[]", "axes.transfer_noise: must not be empty"),
        ("axes.transfer_noise=[-1]", "axes.transfer_noise[0]: must be a non-negative number"),
        ("device.pulse_noise=.inf", "device.pulse_noise: must be a finite number"),
        ("data.classes=[[5, bogus]]", "data.classes[0]"),
        ("model.preset=swin_giant", "model.preset: unknown model preset"),
        # Models are built at load: an override the model rejects fails here, not in pretraining after Ray started.
        ("model.overrides.bogus=1", "model.overrides: unknown key(s) bogus; allowed: attn_drop_rate"),
        ("model.overrides.depths=[2, 2, 2]", "model: preset 'swin_micro' cannot be built at img_size 8"),
        ("model.overrides.window_size=0", "Window sizes must be positive"),
        ("name=../x", "name: must be"),
        ("name=/etc/x", "name: must be"),
        ("name=a\0b", "--set name"),
        ("modes=[analog_tl, analog_tl]", "modes[1]: duplicate mode"),
        ("seeds=[0, 0]", "seeds[1]: duplicate seed"),
        ("max_points=2", "max_points: the sweep expands to 42 points"),
        ("resources.cpu=0", "resources.cpu: must be a positive number"),
        ("lr_search.values=[0.01, 0.01]", "lr_search.values[1]: duplicate learning rate"),
        ("data=[1]", "data: must be a mapping"),
    ],
)
def test_bad_overrides_are_refused_naming_the_field(override, says, store, tmp_path):
    line = refused(run_args(QUICKSTART, store, tmp_path, "--set", override), store, tmp_path, contains=(says,))
    assert "Error: " in line


def test_paths_that_are_not_spec_files_are_refused(store, tmp_path):
    refused(run_args(tmp_path / "missing.yaml", store, tmp_path), store, tmp_path, contains=("cannot read",))
    (tmp_path / "folder.yaml").mkdir()
    refused(run_args(tmp_path / "folder.yaml", store, tmp_path), store, tmp_path, contains=("is a directory",))
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # would block a plain open() forever
    refused(run_args(fifo, store, tmp_path), store, tmp_path, contains=("not a regular file",))
    refused(run_args("spec\0.yaml", store, tmp_path), store, tmp_path, contains=("contains a NUL byte",))
    big = tmp_path / "big.yaml"
    big.write_text(QUICKSTART_TEXT + "#" * 1_000_001)
    refused(run_args(big, store, tmp_path), store, tmp_path, contains=("larger than",))
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: x\x00\xff\xfe\n")
    refused(run_args(binary, store, tmp_path), store, tmp_path, contains=("binary.yaml",))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_spec_file_is_refused(store, tmp_path):
    spec = tmp_path / "locked.yaml"
    spec.write_text(QUICKSTART_TEXT)
    spec.chmod(0)
    refused(run_args(spec, store, tmp_path), store, tmp_path, contains=("Permission denied",))


def test_bad_storage_paths_are_refused(store, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    db, url = store
    for storage, says in [(str(a_file), "is a file"), ("stor\0age", "contains a NUL byte")]:
        before = store_files_digest(db)
        result = CliRunner().invoke(cli, ["run", QUICKSTART, "--store", url, "--storage-path", storage])
        assert result.exit_code == 2, result.output
        assert_one_line_error(result.stderr, says)
        assert store_files_digest(db) == before


def test_a_valid_spec_whose_name_is_taken_by_another_sweep_is_refused_without_writing(store, tmp_path):
    refused(
        run_args(QUICKSTART, store, tmp_path, "--set", "name=earlier"),
        store,
        tmp_path,
        contains=("different sweep named 'earlier'",),
    )


@pytest.mark.parametrize(
    "command", [["resume", "nope"], ["status", "nope"], ["resume", "../earlier"], ["status", "earlier\0"]]
)
def test_unknown_sweeps_are_refused(command, store, tmp_path):
    refused([*command, "--store", store[1]], store, tmp_path, contains=("unknown sweep",))


BAD_STORE_URLS = [
    ("not a url", 2, "not a database URL"),
    ("mysql://me@db/sweeps", 2, "unsupported store database 'mysql'"),
    ("sqlite:///{tmp}/missing.db", 2, "no store at"),
    ("sqlite:///{tmp}/not_a_store.db", 2, "is not a store"),
    ("sqlite:///{tmp}/with\0nul.db", 2, "NUL byte"),
    ("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2", 1, "cannot use store"),
    # SQLAlchemy reads the port as an integer when asked for it: this was a 44-line traceback. The password is hidden.
    (
        "postgresql+psycopg://postgres:Pw9Bad@127.0.0.1:notaport/test",
        2,
        "postgres:***@127.0.0.1:notaport/test' has a port that is not a number",
    ),
]


# ``run`` creates a store where there is none, so a missing SQLite file is bad input only for status and resume.
@pytest.mark.parametrize(
    "command, url, exit_code, says",
    [
        (command, *case)
        for command in ("status", "resume", "run")
        for case in BAD_STORE_URLS
        if not (command == "run" and "missing" in case[0])
    ],
)
def test_bad_store_urls_are_one_line(command, url, exit_code, says, store, tmp_path):
    (tmp_path / "not_a_store.db").write_text("name: a spec, not a database\n")
    url = url.format(tmp=tmp_path)
    args = {
        "status": ["status"],
        "resume": ["resume", "earlier"],
        "run": ["run", QUICKSTART, "--storage-path", str(tmp_path / "storage")],
    }
    refused([*args[command], "--store", url], store, tmp_path, exit_code=exit_code, contains=(says,))
    assert (tmp_path / "not_a_store.db").read_text() == "name: a spec, not a database\n"


@pytest.mark.slow
def test_a_sample_of_bad_input_through_the_real_cli_in_subprocesses(store, tmp_path):
    """The same promises from ``python -m analog_sweep`` itself (start-up, click, the error handler, exit codes)."""
    marker = tmp_path / "RAN"
    evil = tmp_path / "evil.yaml"
    evil_text = re.sub(
        r"^epochs: \d+$",
        f"epochs: !!python/object/apply:os.system ['touch {marker}']",
        QUICKSTART_TEXT,
        flags=re.MULTILINE,
    )
    assert "!!python" in evil_text  # else this would run the whole quickstart
    evil.write_text(evil_text)
    cases = {  # a few, as each start-up imports torch, Ray and aihwkit
        "python tag": (run_args(evil, store, tmp_path), 2, "could not determine a constructor"),
        "unknown preset": (run_args(BROKEN_DIR / "unknown_preset.yaml", store, tmp_path), 2, "model.preset"),
        "yaml syntax": (run_args(BROKEN_DIR / "yaml_unclosed_bracket.yaml", store, tmp_path), 2, "yaml_unclosed"),
        "bad --set": (run_args(QUICKSTART, store, tmp_path, "--set", "epochs=0"), 2, "epochs: must be"),
        "unknown sweep": (["resume", "nope", "--store", store[1]], 2, "unknown sweep 'nope'"),
    }
    before = store_files_digest(store[0])
    running = {name: cli_process(*args, cwd=tmp_path) for name, (args, _, _) in cases.items()}
    for name, process in running.items():
        try:
            out, err = process.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        _, exit_code, says = cases[name]
        assert process.returncode == exit_code, (name, err)
        assert out == "", (name, out)
        assert_one_line_error(err, says)
    assert store_files_digest(store[0]) == before
    assert not marker.exists() and not (tmp_path / "storage").exists()


# --- property: random mutations of a valid spec at the command line ---------------------------------------------

VALID = parse_yaml(QUICKSTART_TEXT, source="quickstart")
scalars = (
    st.none() | st.booleans() | st.integers(-10, 10**12) | st.floats() | st.text(max_size=10)
    | st.sampled_from(["analog_tl", "grid", "tpe", "swin_micro", "cifar", "beaver", "5", "../x", "/abs", "\0", "\n"])
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=2),
    max_leaves=6,
)


def slots(value, path=()):
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found.append((*path, key))
        found.extend(slots(child, (*path, key)))
    return found


@st.composite
def mutated_spec_text(draw) -> str:
    raw = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(0, 3))):
        paths = slots(raw)
        path = draw(st.sampled_from(paths))
        parent = raw
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["delete", "replace", "rename"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(values)
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = parent.pop(path[-1])
        if not raw:
            break
    text = yaml.safe_dump(raw, allow_unicode=True)
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):  # and now and then an edit of the text itself
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(max_size=3)) + text[at + draw(st.integers(0, 3)) :]
    return text


@pytest.mark.slow
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(text=mutated_spec_text())
def test_mutated_specs_at_the_cli_are_a_dry_run_or_one_line_exit_2(text, store, tmp_path):
    db, url = store
    spec = tmp_path / "mutant.yaml"
    spec.write_text(text, encoding="utf-8")
    before = store_files_digest(db)
    result = CliRunner().invoke(
        cli, ["run", str(spec), "--dry-run", "--store", url, "--storage-path", str(tmp_path / "storage")]
    )
    assert result.exit_code in (0, 2), (result.exit_code, result.output, result.exception)
    event(f"exit code {result.exit_code}")
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        assert "Trials:" in result.stdout
    else:
        assert_one_line_error(result.stderr)
        assert result.stdout == ""
    assert store_files_digest(db) == before
    assert not (tmp_path / "storage").exists()
