"""Provenance in the store: runs, pretrained models and rpu configs written and read back, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from analog_sweep import results

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PACKAGES = {"python": "3.11.7", "torch": "2.10.0", "aihwkit": "1.1.0", "ray": "2.52.0"}


def a_run(run_id: str, kind: str = "run", minutes: int = 0, **changes) -> dict:
    run = {
        "run_id": run_id,
        "kind": kind,
        "started_at": T0 + timedelta(minutes=minutes),
        "command": ["analog-sweep", kind, "sweeps/quickstart.yaml", "--set", "epochs=2"],
        "options": {"overrides": ["epochs=2"], "cpu_fallback": False, "address": None},
        "packages": dict(PACKAGES),
        "aihwkit_cuda": False,
        "project": {"version": "0.1.0", "commit": "0123abcd" * 5, "dirty": True},
        "host": "node-1",
        "platform": "Linux-6.1-x86_64",
        "cpu": {"model": "AMD EPYC 7B13", "count": 2},
        "gpus": {"model": None, "count": 0},
        "cluster": {"nodes": 1, "cpus": 2.0, "gpus": 0.0, "accelerator_types": []},
    }
    run.update(changes)
    return run


RPU_A = {
    "__class__": "aihwkit.simulator.presets.configs.ChoppedTTv2ReRamSBPreset",
    "device": {
        "__class__": "aihwkit.simulator.configs.compounds.ChoppedTransferCompound",
        "fast_lr": 0.5,
        "unit_cell_devices": [{"dw_min_dtod": 0.3}, {"dw_min_dtod": 0.3}],
    },
    "forward": {"bound_management": "BoundManagementType.ITERATIVE", "out_noise": 0.06},
}
RPU_B = json.loads(json.dumps(RPU_A).replace("0.3", "0.6"))


def test_runs_pretrained_models_and_rpu_configs_round_trip(filled_store, sample):
    store = filled_store
    # Written out of order: read back oldest first, numbered 1, 2.
    store.record_run(
        "noise",
        a_run(
            "r2",
            "resume",
            minutes=30,
            packages={**PACKAGES, "torch": "2.10.1"},
            options={"cpu_fallback": True, "address": "auto"},
        ),
    )
    store.record_run("noise", a_run("r1"))
    store.record_pretrained(
        "noise",
        {
            "cache_key": "9e540985ae936667",
            "file_hash": "ab" * 32,
            "source_error": 3.7,
            "source_train_error": 2.1,
            "train_seconds": 21.5,
            "trained_now": True,
            "path": "/store/cache/pretrain-9e540985ae936667.pt",
            "run_id": "r1",
        },
    )
    analog = [sample.trial_id("analog_tl", noise, lr) for noise in sample.noises for lr in sample.lrs]
    for trial_id in analog:
        store.set_trial_rpu_config(trial_id, RPU_B if "tn100" in trial_id else RPU_A)

    found = store.provenance("noise")
    assert [(r["run"], r["run_id"], r["kind"]) for r in found["runs"]] == [(1, "r1", "run"), (2, "r2", "resume")]
    first, second = found["runs"]
    assert first["started_at"] == T0 and second["started_at"] == T0 + timedelta(minutes=30)
    assert first["command"] == "analog-sweep run sweeps/quickstart.yaml --set epochs=2"
    assert first["options"] == {"overrides": ["epochs=2"], "cpu_fallback": False, "address": None}
    assert second["options"] == {"cpu_fallback": True, "address": "auto"}
    assert first["packages"] == PACKAGES and second["packages"]["torch"] == "2.10.1"
    assert first["project"] == {"version": "0.1.0", "commit": "0123abcd" * 5, "dirty": True}
    assert (first["host"], first["cpu"], first["gpus"]) == (
        "node-1",
        {"model": "AMD EPYC 7B13", "count": 2},
        {"model": None, "count": 0},
    )
    assert first["aihwkit_cuda"] is False and first["cluster"]["nodes"] == 1

    [model] = found["pretrained"]
    assert model["cache_key"] == "9e540985ae936667" and model["file_hash"] == "ab" * 32
    assert (model["source_error"], model["source_train_error"], model["train_seconds"]) == (3.7, 2.1, 21.5)
    assert model["trained_now"] is True and model["run"] == 1

    # Two distinct configs: the noisiest points' (B) and the others' (A); digital trials have none.
    groups = {results.config_hash(g["rpu_config"]): g for g in found["rpu_configs"]}
    assert set(groups) == {results.config_hash(RPU_A), results.config_hash(RPU_B)}
    assert groups[results.config_hash(RPU_A)]["rpu_config"] == RPU_A
    assert sorted(groups[results.config_hash(RPU_B)]["trial_ids"]) == sorted(t for t in analog if "tn100" in t)
    assert groups[results.config_hash(RPU_B)]["point_keys"] == [sample.point_key("analog_tl", 100.0)]
    assert len(groups[results.config_hash(RPU_A)]["trial_ids"]) == 6
    assert found["trials_without_rpu_config"] == len(sample.noises) * len(sample.lrs)  # the digital ones

    # The whole thing is JSON once its times are text.
    json.dumps(found, default=str, allow_nan=False)


def test_writes_are_idempotent(filled_store):
    store = filled_store
    store.record_run("noise", a_run("r1"))
    store.record_run("noise", a_run("r1", host="node-2"))  # a retried write of the same run: one row, updated
    model = {"cache_key": "k1", "file_hash": "h1", "source_error": 3.0, "train_seconds": 10.0}
    store.record_pretrained("noise", model)
    store.record_pretrained("noise", {**model, "source_error": 99.0})  # the same file again: kept as first recorded
    store.record_pretrained("noise", {**model, "file_hash": "h2"})  # the cache file was made again: a second row
    found = store.provenance("noise")
    assert [r["host"] for r in found["runs"]] == ["node-2"]
    assert [(m["file_hash"], m["source_error"]) for m in found["pretrained"]] == [("h1", 3.0), ("h2", 3.0)]


def test_store_passwords_are_never_stored(filled_store):
    secret = "S3cr:et@x y"  # a colon, an @ and a space: the hardest a password in a URL gets
    url = f"postgresql+psycopg://me:{secret}@db.example.org:5432/sweeps"
    store = filled_store
    store.record_run(
        "noise",
        a_run(
            "r1",
            command=["analog-sweep", "resume", "noise", "--store", url],
            options={"store": url, "nested": [f"--store={url}"]},
        ),
    )
    store.record_run(
        "noise",
        a_run(
            "r2",
            minutes=1,
            command="analog-sweep resume noise --store=sqlite:///x.db "
            "--other postgresql://u:pw@h/d?sslpassword=pw2&application_name=a",
        ),
    )
    with store.engine.connect() as connection:
        dumped = json.dumps(
            [dict(r) for r in connection.execute(sa.text("SELECT * FROM sweep_runs")).mappings()], default=str
        )
    for leaked in ("S3cr", "et@x", "x y", ":pw@", "pw2"):
        assert leaked not in dumped
    first, second = store.provenance("noise")["runs"]
    assert (
        first["command"] == "analog-sweep resume noise --store 'postgresql+psycopg://me:***@db.example.org:5432/sweeps'"
    )
    assert first["options"]["store"] == "postgresql+psycopg://me:***@db.example.org:5432/sweeps"
    assert second["command"].endswith("postgresql://u:***@h/d?sslpassword=***&application_name=a")
    assert "sqlite:///x.db" in second["command"]  # nothing else is hidden


@pytest.mark.parametrize(
    "text, hidden",
    [
        ("ray://head:10001", "ray://head:10001"),  # no password: unchanged
        ("postgresql://me@db/s", "postgresql://me@db/s"),
        ("postgresql://:pw@db/s", "postgresql://:***@db/s"),
        ("x --store=postgresql://me:pw@db/s y", "x --store=postgresql://me:***@db/s y"),
        ("postgresql://me@db/s?password=pw&x=1", "postgresql://me@db/s?password=***&x=1"),
    ],
)
def test_redact(text, hidden):
    assert results.redact(text) == hidden


def test_bad_records_are_refused_and_write_nothing(filled_store):
    store = filled_store
    with pytest.raises(results.StoreInputError, match="unknown run kind 'rerun'"):
        store.record_run("noise", a_run("r1", kind="rerun"))
    with pytest.raises(results.StoreInputError, match="unknown run field.*colour"):
        store.record_run("noise", {**a_run("r1"), "colour": "red"})
    with pytest.raises(results.StoreInputError, match="options is not JSON"):
        store.record_run("noise", a_run("r1", options={"x": float("nan")}))
    with pytest.raises(results.StoreInputError, match="packages must map"):
        store.record_run("noise", a_run("r1", packages={"torch": 2.1}))
    with pytest.raises(results.NotFound, match="unknown sweep 'nope'"):
        store.record_run("nope", a_run("r1"))
    with pytest.raises(results.StoreInputError, match="needs its file_hash"):
        store.record_pretrained("noise", {"cache_key": "k"})
    with pytest.raises(results.NotFound, match="unknown trial 'nope'"):
        store.set_trial_rpu_config("nope", RPU_A)
    with pytest.raises(results.StoreInputError, match="rpu config is not JSON"):
        store.set_trial_rpu_config("analog_tl-tn1-lr0.01", {"x": float("inf")})
    found = store.provenance("noise")
    assert found["runs"] == [] and found["pretrained"] == [] and found["rpu_configs"] == []
    with pytest.raises(results.NotFound):
        store.provenance("nope")


def test_provenance_is_readable_from_a_read_only_store(filled_store, store_url):
    filled_store.record_run("noise", a_run("r1"))
    with results.open_store(store_url, read_only=True) as reader:
        assert [r["run_id"] for r in reader.provenance("noise")["runs"]] == ["r1"]


def _with_many_points(store: results.Store) -> list[tuple[str, str]]:
    """Seven seeds at each of ten transfer noises of one analog mode, one trial each, all run with RPU_A (hex point
    keys, as a sweep's); returns (key, label) of each, in the order recorded."""
    points = []
    for noise in range(0, 100, 10):
        for seed in range(7):
            key = f"{noise:02d}{seed:02d}" + "ab" * 6
            label = f"analog_tl/2-class/transfer_noise={noise}/seed{seed}"
            axes = {"transfer_noise": float(noise), "sp_skew": 0.0, "sp_variability": 0.0, "pulse_noise": 0.0}
            store.record_point(
                "noise", key, mode="analog_tl", task="2-class", classes=["beaver", "otter"], seed=seed,
                axes={**axes, "dtod": 0.0}, label=label, algorithm="c-ttv2",
            )  # fmt: skip
            store.record_trial(f"{key}-lr0", "noise", key, lr=0.05, status="completed")
            store.set_trial_rpu_config(f"{key}-lr0", RPU_A)
            points.append((key, label))
    return points


def _provenance_table(url: str, columns: int, *more: str) -> str:
    from click.testing import CliRunner

    from analog_sweep.cli import cli

    outcome = CliRunner().invoke(
        cli, ["results", "provenance", "noise", "--store", url, *more], env={"COLUMNS": str(columns)}
    )
    assert outcome.exit_code == 0, outcome.output
    return outcome.stdout


def _value_lines(lines: list[str], value_at: int, field: str) -> list[str]:
    """The lines of the value of the table's ``field`` row: its own, then those below it with nothing before the
    value column."""
    start = next(i for i, line in enumerate(lines) if f"  {field}  " in line[:value_at])
    found = [lines[start][value_at:]]
    for line in lines[start + 1 :]:
        if line[:value_at].strip():
            break
        found.append(line[value_at:])
    return found


@pytest.mark.parametrize("columns", [80, 120, 160])
def test_the_provenance_table_fits_the_terminal_and_names_points_by_label(filled_store, store_url, columns):
    command = ["analog-sweep", "run", "sweeps/paper_fig3_transfer_noise.yaml", "--storage-path", "/mnt/" + "d" * 90]
    filled_store.record_run("noise", a_run("r1", command=command))
    path = "/mnt/shared/sweeps/cache/pretrained/pretrain-" + "9e540985ae936667" * 6 + ".pt"
    filled_store.record_pretrained(
        "noise", {"cache_key": "k1", "file_hash": "f" * 64, "source_error": 3.7, "train_seconds": 21.0, "path": path}
    )
    points = _with_many_points(filled_store)
    table = _provenance_table(store_url, columns)
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= columns, max(lines, key=len)
    value_at = lines[0].index("value")
    # A number sits at the head of the value column, however long the longest value.
    [error] = [line for line in lines if " source_error " in line]
    assert error.index("3.7") == value_at and error.endswith("3.7")
    # A long value wraps under its column and reads back whole (a word longer than the column is cut in pieces).
    pieces = _value_lines(lines, value_at, "command")
    assert len(pieces) > 1 and "".join(pieces).replace(" ", "") == "".join(command)
    # The rpu config's points by label, seeds together, the first few: no point key in the table.
    shown = " ".join(_value_lines(lines, value_at, "points")).replace("/ ", "/")  # a label broken after a "/"
    assert shown.startswith(
        "70 points: analog_tl/2-class/transfer_noise=0/seed0-6, analog_tl/2-class/transfer_noise=10"
    )
    most_lines = 4 if columns >= 120 else 10  # an 80-column terminal leaves the value column 26 characters
    assert shown.endswith("more (--full lists them)") and len(_value_lines(lines, value_at, "points")) <= most_lines
    assert not any(key in table for key, _ in points)

    full = _provenance_table(store_url, columns, "--full").splitlines()
    assert max(len(line) for line in full) <= columns
    listed = " ".join(_value_lines(full, full[0].index("value"), "points")).replace("/ ", "/")
    assert listed.endswith("analog_tl/2-class/transfer_noise=90/seed0-6") and "more" not in listed


def test_csv_and_json_keep_every_point_by_key_and_label(filled_store, store_url):
    points = _with_many_points(filled_store)
    keys = [key for key, _ in points]
    labels = {key: label for key, label in points}
    group = filled_store.provenance("noise")["rpu_configs"][0]
    assert group["point_keys"] == sorted(keys) and group["point_labels"] == [labels[k] for k in group["point_keys"]]
    csv_text = _provenance_table(store_url, 120, "--format", "csv")
    [keys_row] = [line for line in csv_text.splitlines() if ",points," in line]
    [labels_row] = [line for line in csv_text.splitlines() if ",point_labels," in line]
    assert keys_row.split(",points,")[1].strip('"').split(",") == group["point_keys"]
    assert labels_row.split(",point_labels,")[1].split("; ") == group["point_labels"]
