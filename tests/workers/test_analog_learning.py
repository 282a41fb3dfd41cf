"""Does the analog simulation learn? The quickstart's trials with the shipped defaults, over seeds.

Every trial here is built from ``sweeps/quickstart.yaml`` exactly as the sweep builds it (``trial_config`` of its
base points), at each of its learning rates; per seed the rate with the lower final test error is kept (a sweep
chooses on validation, its seeds sharing one choice, so the sweep's numbers differ a little). This fails if the
tiles stop learning (the head never moves, the body is overwritten, or a model trained from scratch does no better
with learning tiles than with frozen ones), and it measures the paper's first two findings with Welch 95 %
intervals (``results._replicates.difference``).

aihwkit's tile noise cannot be seeded (its generators are seeded from the clock), so each number varies from run to
run even at a fixed seed; the margins below come from repeated measurements, written beside each assertion.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from concurrent.futures import ProcessPoolExecutor

import pytest

from analog_sweep.results import difference
from analog_sweep.sweeps import expand, load_spec, shipped_specs, trial_config
from analog_sweep.workers import TrialConfig

SEEDS = (0, 1, 2, 3)


def _frozen(config: TrialConfig) -> TrialConfig:
    return dataclasses.replace(config, algorithm=dataclasses.replace(config.algorithm, freeze_analog=True))


def _run(config: TrialConfig, cache_dir: str) -> dict:
    import torch

    from analog_sweep.workers import run_trial

    torch.set_num_threads(1)
    return run_trial(config, cache_dir=cache_dir).reports[-1].to_dict()


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Per (mode or "frozen", seed): the final epoch of the better of the quickstart's learning rates."""
    spec = load_spec(shipped_specs()["quickstart"], [f"seeds={list(SEEDS)}"])
    cache = str(tmp_path_factory.mktemp("cache"))
    base = {(p.mode, p.seed): p for p in expand(spec) if p.device.transfer_noise == 0}
    jobs = []
    for seed in SEEDS:
        for mode in ("analog_tl", "analog_scratch", "digital_tl"):
            jobs += [((mode, seed), trial_config(base[mode, seed], lr)) for lr in spec.lr_search.values]
        jobs += [
            (("frozen", seed), _frozen(trial_config(base["analog_scratch", seed], lr))) for lr in spec.lr_search.values
        ]
    _run(jobs[0][1], cache)  # pretrain once, before the workers start
    with ProcessPoolExecutor(2) as pool:
        finals = list(pool.map(_run, [config for _, config in jobs], [cache] * len(jobs)))
    chosen: dict[tuple[str, int], dict] = {}
    for (key, config), final in zip(jobs, finals):
        if key not in chosen or final["test_error"] < chosen[key]["test_error"]:
            chosen[key] = {**final, "lr": config.lr}
    for (what, seed), final in sorted(chosen.items()):  # shown with pytest -s: the numbers behind the margins
        print(
            f"{what:<15} seed {seed}  lr {final['lr']:<5g} test error {final['test_error']:5.1f} %  "
            f"head moved {final['head_moved']}  body moved {final['blocks_moved']}  body rel {final['blocks_rel']}"
        )
    return chosen


def errors(outcomes, what: str) -> list[float]:
    return [outcomes[what, seed]["test_error"] for seed in SEEDS]


@pytest.mark.slow
def test_the_analog_tiles_learn_and_keep_the_pretrained_weights(outcomes):
    tl = [outcomes["analog_tl", seed] for seed in SEEDS]
    # Measured with the shipped defaults (column-wise omega 0.6, auto_granularity 480, lr 0.1 or 0.4, 20 epochs,
    # cosine schedule; quickstart runs and this test): the chosen trials' heads moved 99-100 % of their weights and
    # the body's rel change was 0.51-0.58. 10 % and 0.75 leave room for that spread while still failing for Table
    # I's 10000 (head 0 %) or an unscaled mapping (rel 2.0-2.7; sweeps/README.md, "Weight mapping and time
    # constants").
    assert min(t["head_moved"] for t in tl) > 10.0, tl
    assert max(t["blocks_rel"] for t in tl) < 0.75, tl
    assert min(t["blocks_moved"] for t in tl) > 50.0, tl


@pytest.mark.slow
def test_trained_tiles_beat_frozen_tiles(outcomes, record_property):
    """The ablation, on analog training from scratch, where every weight has to be learned by the tiles: the same
    trials with every analog weight frozen at its random initialisation (digital biases and norms still train).

    Analog TL is not the test: there the frozen ablation keeps the converted body exactly and its digital norms learn
    a classifier through the frozen random head, which on this task does as well as learning tiles (README, "The
    quickstart")."""
    frozen = [outcomes["frozen", seed] for seed in SEEDS]
    assert all(f["head_moved"] == f["blocks_moved"] == 0.0 for f in frozen)
    gap = difference(errors(outcomes, "analog_scratch"), errors(outcomes, "frozen"))
    record_property("scratch_tiles_minus_frozen", str(gap))
    # Measured over 5 seeds and over this test's 4 (20 epochs, the better of the two rates per seed): frozen
    # 16-54 % (a random network; training loss 0.68-0.69), learning tiles 9-22 %; the closest seed won by 2.7
    # points. A negative mean gap and at most one seed in four lost: a simulation whose tiles do not learn (gap
    # about 0, half the seeds lost) fails one or the other.
    assert gap.difference < 0.0, gap
    losses = sum(t >= f for t, f in zip(errors(outcomes, "analog_scratch"), errors(outcomes, "frozen")))
    assert losses <= 1, (errors(outcomes, "analog_scratch"), errors(outcomes, "frozen"))


@pytest.mark.slow
def test_the_papers_first_findings_on_the_embedded_default(outcomes, record_property):
    """F1: analog TL beats analog training from scratch. F2: digital TL beats analog TL by a small margin (the
    paper: about 2 points). Both differences are reported with Welch 95 % intervals (``record_property``, and
    printed with ``pytest -s``). The quickstart's runs (sweeps/README.md, "The embedded miniature") put F1 near -11
    points with intervals excluding 0, F2 at 2-4 points, analog TL at 4-7 %, analog scratch at 14-22 % and digital TL
    at 2-4 %. Four seeds and the better rate per seed (not the validation choice) make the intervals here wider, so
    the directions are asserted, and the levels with room for one bad seed."""
    f1 = difference(errors(outcomes, "analog_tl"), errors(outcomes, "analog_scratch"))
    f2 = difference(errors(outcomes, "analog_tl"), errors(outcomes, "digital_tl"))
    record_property("F1_analog_tl_minus_analog_scratch", str(f1))
    record_property("F2_analog_tl_minus_digital_tl", str(f2))
    print(json.dumps({"F1": str(f1), "F2": str(f2)}))
    assert f1.difference < 0, f1  # analog TL has the lower mean error
    assert f2.difference > 0, f2  # digital TL has the lower mean error
    assert statistics.fmean(errors(outcomes, "digital_tl")) < 8.0
    assert statistics.fmean(errors(outcomes, "analog_tl")) < 12.0
