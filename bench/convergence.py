"""Has every mode stopped learning by the last epoch? Per point of a sweep (transfer-noise points included; the
symmetry-point axes at 0), the chosen trials' mean test error and training loss per epoch (seeds averaged), and the
change of the mean test error over the last third of the epochs against the seeds' standard deviation at the last
epoch. The reported error is the chosen epoch's, which may come before the last.

    .venv/bin/python bench/convergence.py quickstart [--store sqlite:///sweep-store/results.db]

A mode counts as settled when |change| <= sd: whatever it still gains is within what seeds already disagree on.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analog_sweep.results import open_store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep")
    parser.add_argument("--store", default="sqlite:///sweep-store/results.db")
    options = parser.parse_args()
    store = open_store(options.store, read_only=True)
    sweep = options.sweep.replace("'", "''")
    rows = store.run_readonly_query(
        "SELECT p.mode, p.transfer_noise, p.seed, e.epoch, e.test_error, e.train_loss FROM points p "
        f"JOIN epochs e ON e.trial_id = p.chosen_trial_id WHERE p.sweep = '{sweep}' AND p.sp_skew = 0 "
        "AND p.sp_variability = 0 ORDER BY p.mode, p.transfer_noise, p.seed, e.epoch"
    ).as_dicts()
    if not rows:
        sys.exit(f"no chosen trials of sweep {options.sweep!r} in {options.store}")
    curves: dict[tuple[str, float], dict[int, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        curves[row["mode"], row["transfer_noise"]][row["epoch"]].append((row["test_error"], row["train_loss"]))
    print(
        f"{'mode':<16} {'noise':>5} {'epochs':>6} {'error at 2/3':>12} {'error last':>10} {'change':>7} "
        f"{'seed sd':>7} {'settled':>7} {'loss last':>9}"
    )
    for (mode, noise), by_epoch in sorted(curves.items()):
        last = max(by_epoch)
        if last < 2:
            print(f"{mode:<16} {noise:>5g} {last:>6}  (one epoch: nothing to compare)")
            continue
        third = last - max(1, last // 3)
        mean = {e: statistics.fmean(v[0] for v in values) for e, values in by_epoch.items()}
        sd = statistics.stdev(v[0] for v in by_epoch[last]) if len(by_epoch[last]) > 1 else float("nan")
        change = mean[last] - mean[third]
        loss = statistics.fmean(v[1] for v in by_epoch[last])
        print(
            f"{mode:<16} {noise:>5g} {last:>6} {mean[third]:>12.1f} {mean[last]:>10.1f} {change:>+7.1f} "
            f"{sd:>7.1f} {'yes' if abs(change) <= sd else 'no':>7} {loss:>9.3f}"
        )


if __name__ == "__main__":
    main()
