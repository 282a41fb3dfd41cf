"""Readable point labels (resolve_point, resolve_replicates), one row order, and an unvaried axis refused."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from analog_sweep import results
from analog_sweep.cli import cli

REST = {"sp_skew": 0.0, "sp_variability": 0.0, "pulse_noise": 0.0, "dtod": 0.0}


def _point(key, mode, noise, seed, task="beaver-otter", label=None):
    return {"point_key": key, "mode": mode, "task": task, "seed": seed, "transfer_noise": noise, **REST, "label": label}


# Keys that sort in a different order than the points do (z before a, "10" before "2").
POINTS = [
    _point("aaaa000000000001", "analog_tl", 10.0, 0, label="analog_tl/beaver-otter/transfer_noise=10/seed0"),
    _point("bbbb000000000002", "analog_tl", 10.0, 1, label="analog_tl/beaver-otter/transfer_noise=10/seed1"),
    _point("cccc000000000003", "analog_tl", 2.0, 0, label="analog_tl/beaver-otter/transfer_noise=2/seed0"),
    _point("dddd000000000004", "analog_tl", 0.0, 0, label="analog_tl/beaver-otter/base/seed0"),
    _point("0000000000000005", "digital_tl", 0.0, 0, label="digital_tl/beaver-otter/base/seed0"),
    _point("eeee000000000006", "analog_tl", 0.0, 0, task="apple-man", label="analog_tl/apple-man/base/seed0"),
]


@pytest.mark.parametrize(
    ("label", "key"),
    [
        ("cccc000000000003", "cccc000000000003"),
        ("analog_tl/beaver-otter/transfer_noise=10/seed1", "bbbb000000000002"),  # the progress line's label
        ("transfer_noise=2", "cccc000000000003"),
        ("transfer_noise=10,seed=1", "bbbb000000000002"),
        ("TRANSFER_NOISE=1e1, seed1", "bbbb000000000002"),
        ("mode=digital_tl", "0000000000000005"),
        ("mode=analog_tl,task=apple-man", "eeee000000000006"),
        ("analog_tl/beaver-otter/base", "dddd000000000004"),
        ("key=dddd", "dddd000000000004"),
    ],
)
def test_resolve_point_by_key_label_or_terms(label, key):
    assert results.resolve_point(POINTS, label) == key


@pytest.mark.parametrize(
    ("label", "message"),
    [
        (
            "transfer_noise=10",
            "'transfer_noise=10' matches 2 points: analog_tl/beaver-otter/transfer_noise=10/seed0, "
            "analog_tl/beaver-otter/transfer_noise=10/seed1; add mode=, algorithm=, task=, seed=",
        ),
        ("transfer_noise=7", "no point matches 'transfer_noise=7'; points: analog_tl/apple-man/base/seed0, "),
        (
            "tn=10",
            "unknown field 'tn' in point label 'tn=10': use mode, algorithm, task, seed, key or an axis "
            "(transfer_noise",
        ),
        ("transfer_noise=ten", "transfer_noise='ten' in point label 'transfer_noise=ten': not a number"),
        (" ", "empty point label"),
    ],
)
def test_resolve_point_refuses_in_one_line_listing_candidates(label, message):
    with pytest.raises(results.StoreInputError) as raised:
        results.resolve_point(POINTS, label)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_resolve_replicates_gives_the_seeds_of_one_device_point():
    assert results.resolve_replicates(POINTS, "transfer_noise=10") == ["aaaa000000000001", "bbbb000000000002"]
    with pytest.raises(results.StoreInputError, match="'mode=analog_tl' matches 4 device points: .*add mode="):
        results.resolve_replicates(POINTS, "mode=analog_tl")


def test_points_sort_by_mode_task_and_axis_value_not_by_key():
    ordered = [p["label"] for p in sorted(POINTS, key=results.point_sort_key)]
    assert ordered == [
        "analog_tl/apple-man/base/seed0",
        "analog_tl/beaver-otter/base/seed0",
        "analog_tl/beaver-otter/transfer_noise=2/seed0",
        "analog_tl/beaver-otter/transfer_noise=10/seed0",
        "analog_tl/beaver-otter/transfer_noise=10/seed1",
        "digital_tl/beaver-otter/base/seed0",
    ]


@pytest.fixture
def labelled_url(store, store_url):
    store.record_sweep("s", {}, "h")
    for point in POINTS:
        axes = {a: point[a] for a in results.AXES}
        store.record_point(
            "s",
            point["point_key"],
            mode=point["mode"],
            task=point["task"],
            classes=["a", "b"],
            seed=point["seed"],
            axes=axes,
            label=point["label"],
        )
        trial_id = f"{point['point_key']}-t"
        store.record_trial(trial_id, "s", point["point_key"], lr=0.05, status="running")
        store.record_epoch(
            trial_id, 1, train_loss=1.0, test_error=point["transfer_noise"] + 5, test_accuracy=0, seconds=1
        )
        store.record_trial(trial_id, "s", point["point_key"], lr=0.05, status="completed")
        store.choose_best("s", point["point_key"])
    return store_url


def _cli(url, *args):
    outcome = CliRunner().invoke(cli, ["results", *args, "--store", url])
    return outcome.exit_code, outcome.stdout, outcome.stderr


def test_every_results_table_lists_points_in_one_order(labelled_url, store):
    expected = [p["point_key"] for p in sorted(POINTS, key=results.point_sort_key)]
    assert [r["point_key"] for r in store.best_points("s")] == expected
    assert [r["point_key"] for r in store.list_points("s")] == expected
    assert [r["point_key"] for r in store.list_trials("s")] == expected
    assert [r["point_key"] for r in store.epoch_curves("s")] == expected
    code, out, _ = _cli(labelled_url, "best", "s", "--format", "json")
    assert code == 0 and [json.loads(line)["label"] for line in out.splitlines()] == [
        p["label"] for p in sorted(POINTS, key=results.point_sort_key)
    ]


def test_cli_point_options_take_labels(labelled_url):
    code, out, err = _cli(labelled_url, "trials", "s", "--point", "transfer_noise=10", "--format", "json")
    assert code == 0, err
    assert [json.loads(line)["label"] for line in out.splitlines()] == [
        "analog_tl/beaver-otter/transfer_noise=10/seed0",
        "analog_tl/beaver-otter/transfer_noise=10/seed1",
    ]
    assert err.count("has the lowest final test error") == 2  # one reason per seed
    code, out, err = _cli(labelled_url, "curves", "s", "--point", "mode=digital_tl", "--format", "json")
    assert code == 0 and [json.loads(line)["point_key"] for line in out.splitlines()] == ["0000000000000005"]
    code, out, err = _cli(labelled_url, "curves", "s", "--point", "mode=analog_tl")
    assert code == 2 and err.startswith("Error: 'mode=analog_tl' matches 4 device points") and err.count("\n") == 1


def test_an_axis_the_sweep_did_not_vary_is_refused_in_one_line(labelled_url, store, tmp_path):
    with pytest.raises(results.StoreInputError, match="sweep 's' did not vary dtod: it varied transfer_noise"):
        store.axis_curve("s", "dtod")
    code, _, err = _cli(labelled_url, "best", "s", "--axis", "sp_skew", "--plot", str(tmp_path / "x.png"))
    assert code == 2 and err.count("\n") == 1 and "did not vary sp_skew" in err
    assert not (tmp_path / "x.png").exists()
