"""A sweep that asks for critical points with fewer than 3 seeds is warned about before it runs, in the dry run and
at the start of the run; one with enough seeds, or without critical points, is not."""

from __future__ import annotations

from click.testing import CliRunner

from analog_sweep.cli import cli
from analog_sweep.results import design_warnings
from analog_sweep.results._elbows import MIN_AXIS_VALUES
from analog_sweep.results._replicates import MIN_REPLICATES
from analog_sweep.sweeps import shipped_specs

FIVE = [0.0, 10.0, 20.0, 30.0, 40.0]


def test_critical_points_with_fewer_than_three_seeds_are_warned_about():
    assert MIN_AXIS_VALUES == len(FIVE) and MIN_REPLICATES == 3
    (warning,) = design_warnings(2, {"sp_skew": FIVE, "dtod": [0.1, 0.3]})
    assert "critical points are asked for (sp_skew) with 2 seed(s)" in warning
    assert warning.endswith("give seeds at least 3 values") and "\n" not in warning
    assert design_warnings(3, {"sp_skew": FIVE}) == []
    # four values are not tested for a critical point, unless the axis is refined around one
    assert design_warnings(1, {"sp_skew": FIVE[:4]}) == []
    assert design_warnings(1, {"sp_skew": FIVE[:4]}, refined=["sp_skew"]) != []
    # repeated values count once, as the elbow fit counts them
    assert design_warnings(1, {"sp_skew": [0, 0, 10, 20, 30]}) == []


def test_the_dry_run_lists_the_warning_with_the_machines():
    runner = CliRunner()
    spec = str(shipped_specs()["embedded_fig3_transfer_noise"])
    few = runner.invoke(cli, ["run", spec, "--dry-run", "--set", "seeds=[0,1]"])
    assert few.exit_code == 0, few.output
    warnings = few.output.split("Warnings:\n", 1)[1]
    assert "  - critical points are asked for (transfer_noise) with 2 seed(s)" in warnings
    enough = runner.invoke(cli, ["run", spec, "--dry-run"])
    assert enough.exit_code == 0 and "critical points are asked for" not in enough.output


def test_a_smoke_run_is_not_warned_about_the_seeds_its_profile_chose():
    outcome = CliRunner().invoke(
        cli, ["run", str(shipped_specs()["embedded_fig3_transfer_noise"]), "--dry-run", "--profile", "smoke"]
    )
    assert outcome.exit_code == 0, outcome.output
    assert "critical points are asked for" not in outcome.output
