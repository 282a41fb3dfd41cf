"""Diverged training is not a result.

A learning rate far too large drives the training loss up by orders of magnitude and then to NaN while the test
error still reads 50 % (one class everywhere): on the nano model, 100 takes the loss from 42 in the first epoch to
NaN in the second on digits 5 vs 8, and from 19 to 1e8 (finite, the growth rule of ``workers._divergence``) on the
quickstart's 5 vs 7; 20 explodes finitely, 7 then 7.7e5. Such a trial ends as ``diverged``: its diverged epoch is
neither checkpointed nor reported, it is never chosen as a point's best, every results command shows it as such,
and every JSON line the product prints is valid JSON (no bare ``NaN``).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from analog_sweep.cli import cli
from analog_sweep.workers import DataConfig, ModelConfig, TrialCheckpoint, TrialConfig, run_trial

from .conftest import NANO, QUICKSTART, assert_one_line_error, set_args, snapshot

NANO_MODEL = ["--model-set", "depths=[1,1]", "--model-set", "embed_dim=12", "--train-limit", "16", "--test-limit", "16"]
HUGE_LR = 100.0
EXPLODING_LR = 20.0  # finite all the way to 1.5e20 in epoch 5, NaN only in epoch 6


def strict_json(line: str) -> dict:
    """Parse one line as JSON proper: ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON."""

    def refuse(token: str):
        raise AssertionError(f"not JSON: bare {token} in {line}")

    return json.loads(line, parse_constant=refuse)


def test_a_diverged_trial_stops_with_one_line_and_prints_only_valid_json(tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "trial",
            "--mode",
            "digital_scratch",
            "--lr",
            str(HUGE_LR),
            "--epochs",
            "3",
            "--json",
            "--cache-dir",
            str(tmp_path),
            *NANO_MODEL,
        ],
    )
    rows = [strict_json(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 1, result.output
    assert_one_line_error(result.stderr, "training diverged at epoch 2", "lr=100", "nan")
    assert [row["epoch"] for row in rows] == [1]  # the diverged epoch is not reported as a result


def test_a_trial_whose_loss_explodes_finitely_stops_with_the_rule_that_fired(tmp_path):
    args = ["trial", "--mode", "digital_scratch", "--lr", str(EXPLODING_LR), "--epochs", "5", "--json"]
    result = CliRunner().invoke(cli, [*args, "--cache-dir", str(tmp_path), *NANO_MODEL])
    rows = [strict_json(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 1, result.output
    line = assert_one_line_error(result.stderr, "training diverged at epoch 2 (lr=20): the training loss grew to 7.7")
    assert f"x its lowest {rows[0]['train_loss']:.3g} at epoch 1 (growth rule: over 1000x the lowest" in line
    assert [row["epoch"] for row in rows] == [1]


def test_run_trial_raises_before_the_diverged_epoch_is_checkpointed(tmp_path):
    from analog_sweep.workers import TrainingDiverged

    config = TrialConfig(
        mode="digital_scratch",
        data=DataConfig(classes=("5", "8"), train_limit=16, test_limit=16),
        model=ModelConfig(overrides=(("depths", (1, 1)), ("embed_dim", 12))),
        lr=HUGE_LR,
        epochs=3,
        seed=0,
    )
    seen = []
    with pytest.raises(TrainingDiverged, match="epoch 2"):
        run_trial(config, cache_dir=tmp_path, checkpoint_dir=tmp_path / "ckpt", on_epoch=seen.append)
    assert [r.epoch for r in seen] == [1]
    assert [r.epoch for r in TrialCheckpoint(tmp_path / "ckpt", config.checkpoint_key()).reports()] == [1]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_diverged_trial_is_stored_as_diverged_never_chosen_and_shown_everywhere(tmp_path, ray_cluster):
    url = f"sqlite:///{tmp_path}/results.db"
    # Three epochs: the quickstart's 16 training images (digits 5 and 7, its validation split held out first)
    # diverge at lr 100 in epoch 2 (the loss grows from 19 to 1e8), after a first epoch that reports a result.
    overrides = [*NANO, "epochs=3", "modes=[digital_scratch]", "axes=null", f"lr_search.values=[0.01,{HUGE_LR:g}]"]
    run = CliRunner().invoke(
        cli, ["run", QUICKSTART, *set_args(overrides), "--store", url, "--storage-path", str(tmp_path / "storage")]
    )
    assert run.exit_code == 0, (run.output, run.exception)  # a diverged trial is a finding, not a failure
    assert "1 of 2 trials diverged (lr 100; not chosen as best)" in run.stderr
    # Its good first epoch never stays the "best so far" of the progress line once it has diverged.
    last_progress = [line for line in run.stderr.splitlines() if "best so far" in line][-1]
    assert "lr=100" not in last_progress and "lr=0.01" in last_progress, last_progress

    state = snapshot(url)
    by_lr = {trial_id.rsplit("-lr", 1)[1]: status for trial_id, (status, _) in state["trials"].items()}
    assert sorted(by_lr.values()) == ["completed", "diverged"]
    ((point_status, chosen),) = state["points"].values()
    assert point_status == "done" and state["trials"][chosen][0] == "completed"

    def results(*args: str) -> list[dict]:
        out = CliRunner().invoke(cli, ["results", *args, "quickstart", "--store", url, "--format", "json"])
        assert out.exit_code == 0, out.output
        return [strict_json(line) for line in out.stdout.splitlines()]

    trials = {row["lr"]: row for row in results("trials")}
    assert trials[HUGE_LR]["status"] == "diverged" and not trials[HUGE_LR]["chosen"]
    assert "training diverged at epoch 2" in trials[HUGE_LR]["error"]
    assert trials[0.01]["chosen"]
    assert [row["lr"] for row in results("best")] == [0.01]
    assert {row["lr"] for row in results("curves")} == {0.01}
    sweeps = CliRunner().invoke(cli, ["results", "sweeps", "--store", url, "--format", "json"])
    assert strict_json(sweeps.stdout.splitlines()[0])["trials_diverged"] == 1
    status = CliRunner().invoke(cli, ["status", "quickstart", "--store", url, "--format", "json"])
    assert status.exit_code == 0 and [strict_json(line)["lr"] for line in status.stdout.splitlines()] == [0.01]

    # A point whose every trial diverged has no number: the sweep says so and exits 1 (it exited 0 with a row of -).
    alone = [
        *NANO,
        "name=all-diverged",
        "epochs=3",
        "modes=[digital_scratch]",
        "axes=null",
        f"lr_search.values=[{HUGE_LR:g}]",
    ]
    run = CliRunner().invoke(
        cli, ["run", QUICKSTART, *set_args(alone), "--store", url, "--storage-path", str(tmp_path / "storage")]
    )
    assert run.exit_code == 1, (run.output, run.exception)
    assert "1 of 1 points have no result (every trial failed or diverged)" in run.stderr, run.stderr
    assert "best so far -" in [line for line in run.stderr.splitlines() if "best so far" in line][-1]
