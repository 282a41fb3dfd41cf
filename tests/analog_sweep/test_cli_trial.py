"""``analog-sweep trial``: per-epoch output, and bad input as one line with exit code 2."""

import json

import pytest
from click.testing import CliRunner

from analog_sweep.cli import cli

NANO = ["--model-set", "depths=[1,1]", "--model-set", "embed_dim=12", "--train-limit", "24", "--test-limit", "24"]


def test_trial_prints_one_json_object_per_epoch(tmp_path):
    result = CliRunner().invoke(
        cli, ["trial", "--mode", "digital_scratch", "--epochs", "2", "--json", "--cache-dir", str(tmp_path), *NANO]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(r["mode"] == "digital_scratch" and 0 <= r["test_error"] <= 100 for r in rows)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--classes", "5,bogus"], "bogus"),
        (["--classes", "1,5"], "1"),
        (["--algo-set", "in_chop_prob"], "KEY=VALUE"),
        (["--algo-set", "chop=0.2"], "algorithm.settings"),
        # Checked as a spec's algorithm section is: the same ranges and types, one line.
        (["--algo-set", "fast_lr=abc"], "algorithm.settings.fast_lr: must be a number"),
        (["--algo-set", "fast_lr=-1"], "algorithm.settings.fast_lr: must be a positive number"),
        (["--algo-set", "units_in_mbatch=2"], "algorithm.settings.units_in_mbatch: must be true or false"),
        (["--algo-set", "fast_lr=["], "--algo-set fast_lr"),
        (["--model-set", "embed_dim=010"], "--model-set embed_dim"),  # YAML 1.1 reads 8, YAML 1.2 reads 10
        (["--algo-set", "auto_scale=on"], "--algo-set auto_scale"),
        (["--mapping-set", "weight_scaling_omega=5"], "algorithm.mapping.weight_scaling_omega: must be at most 2"),
        (["--mapping-set", "out_scaling_columnwise=true"], "needs learn_out_scaling: true"),
        (["--mapping-set", "omega=0.5"], "algorithm.mapping.omega: unknown field"),
        (["--model-set", "num_heads=[2]"], "model"),
        (["--lr", "-1"], "--lr"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["trial", "--mode", "digital_scratch", "--cache-dir", str(tmp_path), *NANO, *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.output
    assert message in lines[-1]
    assert len([line for line in lines if line.startswith("Error")]) == 1
