"""Cost estimate and dry-run report: sizes, the time model against measured step times, and warnings that never fail."""

from __future__ import annotations

import pytest

from analog_sweep.sweeps import (
    Environment,
    detect_environment,
    dry_run_report,
    estimate_cost,
    expand,
    load_spec,
    shipped_specs,
    work_units,
)
from analog_sweep.sweeps._cost import (
    ANALOG_TRAIN_SECONDS,
    DIGITAL_STEP_SECONDS,
    DIGITAL_TRAIN_SECONDS,
)

LAPTOP = Environment(cpus=2, gpus=0, aihwkit_cuda=False)


def load(name, *overrides):
    return load_spec(shipped_specs()[name], overrides=overrides)


def test_quickstart_cost_is_small():
    spec = load("quickstart")
    cost = estimate_cost(spec, expand(spec))
    assert (cost.points, cost.trials, cost.trial_epochs, cost.pretrain_jobs) == (42, 84, 1680, 1)
    assert 0 < cost.wall_seconds(2) < 15 * 60  # measured 12 min on 2 cores (README); the model errs high


@pytest.mark.parametrize(
    ("overrides", "measured_step"),  # measured seconds per analog step of batch 8 on 2 CPU cores
    [
        (("model.preset=swin_micro", "data.image_size=16"), 0.523),
        (("model.preset=swin_tiny_cpu", "data.image_size=16"), 2.456),
        (("model.preset=swin_tiny_cpu", "data.image_size=32"), 8.5),
        (
            (
                "model.preset=swin_paper",
                "model.overrides.depths=[2, 2, 6]",
                "model.overrides.num_heads=[3, 6, 12]",
                "data.image_size=32",
            ),
            84.7,
        ),
    ],
)
def test_the_analog_time_model_matches_the_measurements(overrides, measured_step):
    spec = load("quickstart", *overrides)
    assert ANALOG_TRAIN_SECONDS * work_units(spec) * 8 == pytest.approx(measured_step, rel=0.2)


@pytest.mark.parametrize(("image_size", "embed", "measured_step"), [(32, 48, 0.052), (32, 96, 0.225)])
def test_the_digital_time_model_matches_the_measurements(image_size, embed, measured_step):
    depths, heads = ("[2, 2]", "[2, 4]") if embed == 48 else ("[2, 2, 6]", "[3, 6, 12]")  # a model that builds
    spec = load("quickstart", f"data.image_size={image_size}", f"model.overrides.embed_dim={embed}",
                f"model.overrides.depths={depths}", f"model.overrides.num_heads={heads}")  # fmt: skip
    assert DIGITAL_STEP_SECONDS + DIGITAL_TRAIN_SECONDS * work_units(spec) * 8 == pytest.approx(measured_step, rel=0.2)


def test_report_lists_points_trials_and_cost():
    spec = load("quickstart", "epochs=1", "seeds=[0]")
    report = dry_run_report(spec, expand(spec), environment=LAPTOP)
    assert "analog_tl/5-7/transfer_noise=10/seed0" in report
    assert "Trials: 12 (6 points x 2)" in report and "12 trial-epochs" in report
    assert "Overrides: --set epochs=1" in report
    assert "Warnings" not in report


def test_report_warns_about_missing_data_and_gpus_without_failing():
    spec = load("paper_fig3_transfer_noise")
    report = dry_run_report(spec, expand(spec), environment=LAPTOP)
    assert "$ANALOG_SWEEP_DATA is unset" in report
    assert "no GPU is visible" in report
    assert "built without CUDA" in report
    assert "cannot run" in report


def test_report_checks_the_cifar_files(tmp_path):
    spec = load("paper_fig2_modes", f"data.data_root={tmp_path}")
    gpu_box = Environment(cpus=16, gpus=1, aihwkit_cuda=True)
    assert "10 of 10 files missing" in dry_run_report(spec, expand(spec), environment=gpu_box)
    for folder, names in {
        "cifar-10-batches-py": [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"],
        "cifar-100-python": ["train", "test", "meta"],
    }.items():
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / name).write_bytes(b"")
    report = dry_run_report(spec, expand(spec), environment=gpu_box)
    assert "Warnings" not in report
    assert "with 4 trial(s) at a time" in report


def test_report_notes_what_could_not_be_detected():
    spec = load("quickstart")
    odd = Environment(cpus=1, gpus=0, aihwkit_cuda=None, notes=("torch could not be checked (ImportError: x)",))
    report = dry_run_report(spec, expand(spec), environment=odd)
    assert "torch could not be checked" in report
    assert "aihwkit cannot be imported" in report


def test_detect_environment_describes_this_machine():
    environment = detect_environment()
    assert environment.cpus >= 1 and environment.gpus >= 0


# --- the range with and without pruning, GPU-hours, N GPUs, --cpu-fallback ----------------------------------------


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        # 4 rates x 8 epochs, worked by hand from each pruner's rule (pruned_trial_epochs' docstring).
        (["lr_search.pruner=none"], 32),
        # median, 1 start-up trial, warm-up 2 epochs: 1 x 8 + 3 x 2.
        (["lr_search.pruner=median", "lr_search.pruner_options={n_startup_trials: 1, n_warmup_steps: 2}"], 14),
        # median defaults (5 start-up trials > 4 rates): nothing can be pruned.
        (["lr_search.pruner=median"], 32),
        # successive halving r=1: the first trial runs 8, the others, each worse than it on arrival, stop at rung 1
        # (Optuna compares with the trials that reached the rung so far): 8 + 3 x 1.
        (
            ["lr_search.pruner=successive_halving", "lr_search.pruner_options={min_resource: 1, reduction_factor: 2}"],
            11,
        ),
        (["lr_search.pruner=hyperband"], 11),
        (["lr_search.pruner=hyperband", "lr_search.pruner_options={min_resource: 2, reduction_factor: 2}"], 14),
    ],
)
def test_the_pruned_lower_bound_follows_each_pruners_schedule(search, expected):
    from analog_sweep.sweeps._cost import pruned_trial_epochs

    spec = load("quickstart", "epochs=8", "lr_search.values=[0.01, 0.02, 0.05, 0.1]", *search)
    assert pruned_trial_epochs(spec) == expected
    cost = estimate_cost(spec, expand(spec))
    assert cost.pruned_trial_epochs == expected * cost.points <= cost.trial_epochs
    assert cost.pruned_trial_seconds <= cost.trial_seconds


MEDIAN_1_2 = ["lr_search.pruner=median", "lr_search.pruner_options={n_startup_trials: 1, n_warmup_steps: 2}"]


@pytest.mark.parametrize(
    ("search", "base", "warm", "pruner_only", "patience_shortens"),
    [
        # TPE, 4 trials x 8 epochs (2 start-up trials). Median, 1 start-up trial, warm-up 2: Optuna's median pruner
        # alone gives 1 x 8 + 3 x 2 a point. Patience 1: a base point runs its 2 spread start-up trials and 1 sampler
        # trial, 1 x 8 + 2 x 2; a warm-started point its warm-start trial (8) + 1 sampler trial stopped at epoch 2.
        (MEDIAN_1_2, 12, 10, 14, True),
        ([*MEDIAN_1_2, "lr_search.patience=2"], 14, 12, 14, True),
        # No pruner: 3 trials at a base point, the warm-start trial and 1 sampler trial elsewhere, all to the end.
        (["lr_search.pruner=none"], 24, 16, 32, True),
        # Patience 3 with 4 trials: the whole budget (1 + 3 and 2 + 3 trials are more than 4).
        ([*MEDIAN_1_2, "lr_search.patience=3"], 14, 14, 14, False),
        # With warm starts each point has its own median pruner, which compares a trial with its point's running
        # trials too (and a warm-started point's with its neighbours' completed ones): with trials side by side every
        # trial but one may stop at epoch 1 even with 5 start-up trials, where Optuna's runs 5 (here all 4) to the
        # end.
        (["lr_search.pruner=median", "lr_search.patience=none"], 11, 11, 32, False),
        # 2 start-up trials, patience 1: the base point's 3 trials, the warm-started point's 2, one to the end each.
        (
            ["lr_search.pruner=median", "lr_search.pruner_options={n_startup_trials: 2, n_warmup_steps: 0}"],
            10,
            9,
            18,
            True,
        ),
        # Without patience or without warm starts: every point at the pruner's bound.
        (["lr_search.pruner=none", "lr_search.patience=none"], 32, 32, 32, False),
        (["lr_search.pruner=none", "lr_search.warm_start=none", "lr_search.patience=none"], 32, 32, 32, False),
        ([*MEDIAN_1_2, "lr_search.warm_start=none", "lr_search.patience=none"], 14, 14, 14, False),
    ],
)
def test_the_lower_bound_lets_points_stop_after_their_start_up_and_patience_sampler_trials(
    search, base, warm, pruner_only, patience_shortens
):
    from analog_sweep.sweeps._cost import fewest_trial_epochs, pruned_trial_epochs

    tpe = [
        "lr_search.method=tpe",
        "lr_search.values=null",
        "lr_search.trials_per_point=4",
        "epochs=8",
        "modes=[analog_tl]",
    ]
    spec = load("quickstart", *tpe, *search)
    assert pruned_trial_epochs(spec) == pruner_only
    points = expand(spec)
    on_base = [p for p in points if all(v == getattr(spec.device, a) for a, v in p.axes)]
    assert on_base and len(on_base) < len(points)
    for point in points:
        assert fewest_trial_epochs(spec, point)[1] == (base if point in on_base else warm), point.label
    cost = estimate_cost(spec, points)
    assert cost.pruned_trial_epochs == base * len(on_base) + warm * (len(points) - len(on_base))
    per_seed = load("quickstart", *tpe, *search, "selection.per_seed=true")  # a later seed starts from earlier ones
    assert [fewest_trial_epochs(per_seed, p)[1] for p in expand(per_seed)] == [
        base if p in on_base and p.seed == per_seed.seeds[0] else warm for p in points
    ]
    report = dry_run_report(spec, points, environment=LAPTOP)
    if cost.pruned_trial_epochs < cost.trial_epochs:
        assert f"{cost.pruned_trial_epochs} to {cost.trial_epochs} trial-epochs" in report
        assert "a trial that fails ends sooner still" in report
        assert ("sampler trial(s) (lr_search.patience)" in report) == patience_shortens
    else:
        assert f", {cost.trial_epochs} trial-epochs" in report


@pytest.mark.parametrize(("patience", "per_point"), [("1", 8), ("none", 8 + 3)])
def test_the_refinement_lower_bound_lets_a_bracketed_point_run_one_trial(patience, per_point):
    """Under patience a refinement point bracketed by finished neighbours that agree runs its warm-start rate alone
    (one trial to the end: 8 epochs), which no grid point ever does; without patience it is priced as a grid point
    (4 trials, all but the warm-start one stopped at epoch 1 by its median pruner), not S + P trials a point."""
    from analog_sweep.sweeps import refinement_cost
    from analog_sweep.sweeps._cost import fewest_trials

    spec = load(
        "quickstart",
        "lr_search.method=tpe",
        "lr_search.values=null",
        "lr_search.trials_per_point=4",
        "epochs=8",
        "modes=[analog_tl]",
        "lr_search.pruner=median",
        f"lr_search.patience={patience}",
        "axes.refine={transfer_noise: {points: 2, rounds: 3}}",
    )
    cost = refinement_cost(spec)
    assert cost.points == 2 * 3 * len(spec.seeds)
    assert cost.pruned_trial_epochs == per_point * cost.points
    assert cost.trial_epochs == 4 * 8 * cost.points
    grid_point = next(p for p in expand(spec) if p.axes_dict.get("transfer_noise") == 10)
    assert fewest_trials(spec, grid_point) == (2 if patience == "1" else 4)
    assert fewest_trials(spec, grid_point, refinement=True) == (1 if patience == "1" else 4)
    # Rounds run one after another. With a slot for every trial, a round under patience is one chain per value (its
    # seeds beside it): 4 trials end to end at the most, its one warm-start trial at the fewest; without patience all
    # 4 trials side by side. One trial's seconds: overhead + 8 epochs.
    trial = cost.rounds[0][0][0].seconds[0]
    assert len(cost.rounds) == 3 and all(len(upper) == 2 * len(spec.seeds) for upper, _ in cost.rounds)
    assert cost.wall_seconds(100) == pytest.approx(3 * (4 if patience == "1" else 1) * trial)
    if patience == "1":
        assert cost.wall_seconds(100, pruned=True) == pytest.approx(3 * trial)


def test_a_pruned_sweep_is_priced_as_a_range_and_a_gpu_sweep_in_gpu_hours_and_on_n_gpus():
    spec = load("paper_fig3_transfer_noise")
    cost = estimate_cost(spec, expand(spec))
    report = dry_run_report(spec, expand(spec), environment=LAPTOP, gpus=8)
    assert f"{cost.pruned_trial_epochs} to {cost.trial_epochs} trial-epochs" in report
    assert "GPU-hours:" in report and "assumed, not measured" in report
    # 8 GPUs at 0.25 GPU a trial: 32 trials at a time.
    assert "on 8 GPU(s)" in report and "with 32 trial(s) at a time" in report
    assert cost.gpu_hours() == pytest.approx((cost.trial_seconds + cost.pretrain_seconds) * 0.25 / 3600)
    # But under lr_search.patience each point runs its sampler trials one after another, and a point waits for its
    # inward neighbours to finish while others have work: 32 slots are far from always busy, and a slot for every
    # trial still leaves the wall time at about 5 of the longest (5-class) trials, not the compute divided by 128.
    # (tests/orchestrator/test_schedule_replay.py checks the replay against the real searcher.)
    trials_only = [cost.wall_seconds(n) - cost.pretrain_seconds for n in (32, 128)]  # one pretraining job
    assert trials_only[0] > 1.8 * cost.trial_seconds / 32
    assert trials_only[1] > 4.5 * max(search.seconds[0] for search in cost.searches)
    assert trials_only[1] > 5 * cost.trial_seconds / 128
    # The report says when more GPUs cannot help: 32 GPUs give 128 slots, more than the 80 trials ever run at once.
    assert "would not shorten" not in report
    assert "more GPUs would not shorten it (it never runs more than 80 trial(s) at once" in dry_run_report(
        spec, expand(spec), environment=LAPTOP, gpus=32
    )
    # Without patience every trial of a point may run at once: much closer to the compute divided by the slots.
    free = load("paper_fig3_transfer_noise", "lr_search.patience=none")
    free_cost = estimate_cost(free, expand(free))
    assert free_cost.wall_seconds(32) < 0.7 * cost.wall_seconds(32)


def test_cpu_fallback_prices_a_gpu_spec_on_this_machines_cpus_instead_of_cannot_run():
    spec = load("paper_fig3_transfer_noise")
    assert "cannot run" in dry_run_report(spec, expand(spec), environment=LAPTOP)
    report = dry_run_report(spec, expand(spec), environment=LAPTOP, cpu_fallback=True)
    assert "cannot run" not in report and "with 1 trial(s) at a time" in report  # 2 CPUs a trial on 2 cores
    assert "priced on CPUs" in report and "GPU-hours" not in report
    on_cpu, on_gpu = (estimate_cost(spec, expand(spec), on_gpu=flag) for flag in (False, True))
    assert on_cpu.trial_seconds > on_gpu.trial_seconds * 9  # the assumed GPU speed-ups are x10 and x20


def test_measured_epoch_times_from_the_store_replace_the_model_for_trials_doing_the_same_work(tmp_path):
    from analog_sweep.results import AXES, open_store
    from analog_sweep.sweeps import spec_hash
    from analog_sweep.sweeps._measured import measured_epochs

    earlier = load("quickstart", "name=earlier", "modes=[digital_tl, analog_tl]", "axes=null", "seeds=[0]")
    with open_store(f"sqlite:///{tmp_path / 'results.db'}") as store:
        store.record_sweep(earlier.name, earlier.raw, spec_hash(earlier), "finished")
        for point in expand(earlier):
            store.record_point(
                earlier.name,
                point.key,
                mode=point.mode,
                task=point.task,
                classes=list(point.classes),
                seed=point.seed,
                axes={axis: getattr(point.device, axis) for axis in AXES},
            )
            seconds = 2.0 if point.mode == "digital_tl" else 40.0
            trial = f"t-{point.key}"
            store.record_trial(trial, earlier.name, point.key, lr=0.1, status="completed")
            for epoch in (1, 2, 3):
                store.record_epoch(
                    trial, epoch, train_loss=1.0, test_error=10.0, test_accuracy=90.0, seconds=seconds + epoch
                )  # median: seconds + 2
        measured = measured_epochs(store.epoch_seconds())

    # Same model, data and batch: every quickstart trial does the work of one of the two (transfer learning and
    # training from scratch cost the same per epoch: the whole model trains either way).
    spec = load("quickstart")
    cost = estimate_cost(spec, expand(spec), measured=measured)
    assert cost.measured_trials == cost.trials and cost.measured_sweeps == ("earlier",)
    assert cost.measured_epochs == 6  # 3 epochs each of the digital and the analog trial
    expected = sum(
        spec.lr_search.trials_per_point * (3.0 + spec.epochs * (4.0 if p.mode.startswith("digital") else 42.0))
        for p in expand(spec))  # fmt: skip
    assert cost.trial_seconds == pytest.approx(expected)
    report = dry_run_report(spec, expand(spec), environment=LAPTOP, measured=measured)
    assert f"measured for {cost.trials} of {cost.trials} trials (median of 6 epochs" in report

    # Only the digital trials of a smaller test set: the analog ones of the same sweep stay modelled.
    partly = load("quickstart", "modes=[digital_tl, analog_scratch]", "seeds=[0]")
    partly_cost = estimate_cost(partly, expand(partly), measured={
        key: value for key, value in measured.items() if "digital" in key})  # fmt: skip
    assert 0 < partly_cost.measured_trials < partly_cost.trials
    assert "the rest modelled" in dry_run_report(partly, expand(partly), environment=LAPTOP, measured={
        key: value for key, value in measured.items() if "digital" in key})  # fmt: skip

    # Another model does other work: nothing measured applies.
    other = load("quickstart", "model.overrides.embed_dim=48")
    assert estimate_cost(other, expand(other), measured=measured).measured_trials == 0


def test_the_dry_run_command_reads_the_store_without_creating_or_changing_it(tmp_path):
    from click.testing import CliRunner

    from analog_sweep.cli import cli

    absent = tmp_path / "absent.db"
    result = CliRunner().invoke(
        cli, ["run", str(shipped_specs()["quickstart"]), "--dry-run", "--store", f"sqlite:///{absent}"]
    )
    assert result.exit_code == 0, result.output
    assert "modelled for every trial" in result.stdout and not absent.exists()
    refused = CliRunner().invoke(cli, ["run", str(shipped_specs()["quickstart"]), "--gpus", "4"])
    assert refused.exit_code == 2 and "--gpus N goes with --dry-run" in refused.stderr


def test_the_refinement_budget_is_priced_as_the_grid_is_and_given_a_wall_time_on_n_gpus():
    """Under --cpu-fallback a GPU spec's refinement is priced at CPU speed, and --gpus N gives it a wall time.
    Rounds run one after another, each point's trials under patience end to end."""
    from analog_sweep.sweeps import refinement_cost
    from analog_sweep.sweeps._dry_run import _duration

    spec = load("paper_fig3_transfer_noise", "axes.refine={transfer_noise: {points: 3, rounds: 2}}")
    on_cpu, on_gpu = refinement_cost(spec, on_gpu=False), refinement_cost(spec)
    assert on_cpu.trial_seconds > 10 * on_gpu.trial_seconds  # the assumed GPU speed-up
    fallback = dry_run_report(spec, expand(spec), environment=LAPTOP, cpu_fallback=True)
    assert f"{_duration(on_cpu.trial_seconds)} of compute, {_duration(on_cpu.wall_seconds(1))} here" in fallback
    on_8 = dry_run_report(spec, expand(spec), environment=LAPTOP, gpus=8)
    longest = max(search.seconds[0] for upper, _ in on_gpu.rounds for search in upper)
    assert on_gpu.wall_seconds(32) == pytest.approx(2 * 8 * longest)  # 2 rounds x 8 trials of the 5-class task
    assert f"{_duration(on_gpu.wall_seconds(32))} on 8 GPU(s)" in on_8


def test_refinement_rounds_hold_only_the_axes_with_rounds_left():
    """With one axis refined in 4 rounds of 1 value and another in 1 round of 4, each round holds only the points
    of the axes with rounds left, so on one slot the wall time is not above the compute."""
    from analog_sweep.sweeps import refinement_cost

    spec = load(
        "paper_fig5_pulse_noise_dtod", "axes.refine={pulse_noise: {points: 4, rounds: 1}, dtod: {points: 1, rounds: 4}}"
    )
    cost = refinement_cost(spec, on_gpu=False)
    sizes = [len(upper) for upper, _ in cost.rounds]  # round 1: 4 pulse-noise values and 1 DtoD value; then 1
    assert len(sizes) == 4 and sizes[1:] == [sizes[1]] * 3 and sizes[0] == 5 * sizes[1]
    assert sum(len(upper) for upper, _ in cost.rounds) == cost.points
    assert cost.wall_seconds(1) == pytest.approx(cost.trial_seconds)  # one slot: every trial one after another
