"""Run a small real sweep on a local 2-CPU Ray instance and print its efficiency: how busy the trial slots were.

The sweep (``bench/efficiency_sweep.yaml`` by default: 2 analog c-TTv2 points x 4 TPE trials, 4 epochs of 96 images
each, 1 CPU per trial, so 2 trials at a time) runs in this process through the real ``orchestrator.run_sweep``, with
a fresh SQLite store and storage folder in a temporary directory (the pretrained model is not cached from before).

Definitions (all times are wall-clock seconds on this machine):

- *trial compute time*: for each trial, Ray Tune's ``time_total_s`` of its last report, i.e. the sum over its
  reports of the time spent inside the trial function between being asked for the next result and handing it over.
  For the trial function (``orchestrator._trainable.fine_tune`` -> ``workers._trial.run_trial``) that is loading the
  data, loading the pretrained model, building and converting the model, every epoch (training + test evaluation) and
  every per-epoch checkpoint. It excludes actor start-up/reset and any time the trial sits blocked in ``tune.report``
  waiting for the driver (Ray's function API reports synchronously). It is measured by Ray inside the worker, so it
  needs no change to the trial code. This is the quantity the efficiency uses.
  For reference the bench also prints the stricter *epoch time*: the sum of the per-epoch ``seconds`` the worker
  writes to the store (training + test evaluation only; no model build, no checkpoints), and the difference between
  the two (model build in the first report, checkpoint writes in every report).
- *fine-tuning wall time*: from the moment the driver announces the fine-tuning phase (its "sweep NAME: N points, ..."
  line, printed just before the Ray Tune ``Tuner`` is built) to ``run_sweep`` returning. Ray start-up
  (``ray.init`` here) and the pretraining stage (from the driver's "pretraining: ..." line to the fine-tuning line)
  are timed separately and also printed.
- *parallel slots*: trials that fit at once, total CPUs // CPUs per trial (2 here).
- *sweep efficiency* = sum of trial compute time / (fine-tuning wall time x slots); target >= 0.9.
  Also printed: the same with the epoch time only, and with the whole run (Ray start-up + pretraining + fine-tuning)
  as the wall time.

Where the lost slot-seconds (wall x slots - compute) go is worked out from the reports' arrival times at the driver:
each report's interval inside the trial is [arrival - time_this_iter_s, arrival]; each trial runs on one slot, and the
slot's time is split into: before its first trial computes (Tuner set-up, actor start), between two trials (trial end
-> next trial computing: actor reset/reuse, searcher, scheduling), inside a trial but between two reports (the trial
blocked waiting for the driver to process a report: store writes, pruning), and after its last trial (slot idle while
the other slot finishes, then Tuner tear-down). The arrival times come from a subclass of the driver's own progress
callback (bench-only instrumentation; it records times and otherwise behaves as the driver's ``ProgressLine``).

    .venv/bin/python bench/sweep_efficiency.py [--spec bench/efficiency_sweep.yaml] [--set epochs=3 ...] [--keep]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ray

import analog_sweep.orchestrator._driver as driver
from analog_sweep.orchestrator import run_sweep
from analog_sweep.orchestrator._progress import ProgressLine
from analog_sweep.results import open_store
from analog_sweep.sweeps import estimate_cost, expand, load_spec

HERE = Path(__file__).resolve().parent

# Filled by the instrumented callback: ("start"|"result"|"complete", ray trial id, time.time(), details).
EVENTS: list[tuple[str, str, float, dict[str, Any]]] = []
# Filled by the echo hook: (time.time(), line).
ECHOES: list[tuple[float, str]] = []


class TimedProgress(ProgressLine):
    """The driver's progress line, plus the arrival time of every trial start, report and end (bench only)."""

    def setup(self, **info: Any) -> None:  # Ray Tune calls it once the experiment is set up, before any trial
        EVENTS.append(("setup", "", time.time(), {}))

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        EVENTS.append(("start", trial.trial_id, time.time(), {"trial_id": trial.config.get("trial_id")}))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        keep = ("epoch", "seconds", "time_this_iter_s", "time_total_s", "training_iteration", "pid", "trial_id")
        EVENTS.append(("result", trial.trial_id, time.time(), {k: result.get(k) for k in keep}))
        super().on_trial_result(iteration, trials, trial, result, **info)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        EVENTS.append(("complete", trial.trial_id, time.time(), {}))
        super().on_trial_complete(iteration, trials, trial, **info)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        EVENTS.append(("complete", trial.trial_id, time.time(), {"error": True}))


def echo(line: str) -> None:
    ECHOES.append((time.time(), line))
    print(f"  | {line}", flush=True)


def first_echo(prefix: str, after: float = 0.0) -> float | None:
    return next((t for t, line in ECHOES if line.startswith(prefix) and t >= after), None)


def trial_timeline(events: list, phase_start: float) -> list[dict[str, Any]]:
    """One row per Ray trial: its reports (deduplicated by iteration), compute intervals and times."""
    trials: dict[str, dict[str, Any]] = {}
    for kind, ray_id, at, details in events:
        if kind == "setup":
            continue
        row = trials.setdefault(ray_id, {"ray_id": ray_id, "reports": {}, "start": None, "end": None, "error": False})
        if kind == "start":
            row["start"] = at
            row["trial_id"] = details.get("trial_id")
        elif kind == "result":
            iteration = details.get("training_iteration")
            if (
                iteration is not None
                and iteration not in row["reports"]
                and details.get("time_this_iter_s") is not None
            ):
                row["reports"][iteration] = {**details, "arrived": at}
            row.setdefault("trial_id", details.get("trial_id"))
        else:
            row["end"] = at
            row["error"] = bool(details.get("error"))
    rows = []
    for row in trials.values():
        reports = [row["reports"][i] for i in sorted(row["reports"])]
        if not reports:
            continue
        intervals = [(r["arrived"] - r["time_this_iter_s"], r["arrived"]) for r in reports]
        compute = float(reports[-1]["time_total_s"])
        rows.append(
            {
                **row,
                "reports": reports,
                "pid": reports[0]["pid"],
                "compute_start": intervals[0][0],
                "compute_end": intervals[-1][1],
                "compute": compute,
                "epoch_seconds": sum(float(r["seconds"] or 0.0) for r in reports),
                "first_extra": float(reports[0]["time_this_iter_s"]) - float(reports[0]["seconds"] or 0.0),
                "later_extra": sum(float(r["time_this_iter_s"]) - float(r["seconds"] or 0.0) for r in reports[1:]),
                "blocked": (intervals[-1][1] - intervals[0][0]) - compute,
            }
        )
    rows.sort(key=lambda r: r["compute_start"])
    return rows


def assign_slots(rows: list[dict[str, Any]], slots: int) -> list[list[dict[str, Any]]]:
    """Put each trial on a slot: the one whose previous trial ended last before this one started computing."""
    lanes: list[list[dict[str, Any]]] = [[] for _ in range(slots)]
    for row in rows:
        free = [lane for lane in lanes if not lane or lane[-1]["compute_end"] <= row["compute_start"] + 0.5]
        lane = (
            max(free, key=lambda lane: lane[-1]["compute_end"] if lane else -1.0)
            if free
            else min(lanes, key=lambda lane: lane[-1]["compute_end"])
        )
        lane.append(row)
    return lanes


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    parser.add_argument("--spec", default=str(HERE / "efficiency_sweep.yaml"), help="sweep spec (default: %(default)s)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a spec field, as the CLI's --set (repeatable)",
    )
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray instance (default: 2)")
    parser.add_argument("--target", type=float, default=0.9, help="efficiency target (default: 0.9)")
    parser.add_argument("--workdir", help="folder for the store and storage (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args()

    spec = load_spec(args.spec, overrides=args.overrides)
    points = expand(spec)
    cost = estimate_cost(spec, points)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="sweep-efficiency-"))
    workdir.mkdir(parents=True, exist_ok=True)
    store = open_store(f"sqlite:///{workdir / 'results.sqlite'}")
    storage = workdir / "storage"
    print(
        f"sweep {spec.name}: {len(points)} points x {spec.lr_search.trials_per_point} trials "
        f"({spec.lr_search.method}, pruner {spec.lr_search.pruner}), {spec.epochs} epochs, "
        f"{spec.resources.cpu:g} CPU per trial; cost model: {cost.trial_epochs} trial-epochs, "
        f"~{cost.trial_seconds:.0f} s of trials; workdir {workdir}",
        flush=True,
    )

    driver.ProgressLine = TimedProgress  # bench-only: records arrival times (see the module docstring)
    t_begin = time.time()
    ray.init(
        address="local", num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING"
    )
    t_ray = time.time()
    try:
        outcome = run_sweep(spec, store, storage_root=storage, echo=echo)
    finally:
        t_end = time.time()
        ray.shutdown()
    print(f"  | {outcome.message}", flush=True)
    if outcome.status != "finished":
        print(f"sweep did not finish ({outcome.status}); efficiency not computed", file=sys.stderr)
        return 1

    slots = int(args.num_cpus // spec.resources.cpu) if spec.resources.cpu > 0 else args.num_cpus
    t_pre = first_echo("pretraining:", t_ray) or t_ray
    t_fine = first_echo(f"sweep {spec.name}:", t_ray)
    assert t_fine is not None, "the driver's fine-tuning line was not seen"
    ray_start = t_ray - t_begin
    before_pretrain = t_pre - t_ray  # store rows, resources check
    pretrain = t_fine - t_pre
    wall = t_end - t_fine
    total = t_end - t_begin

    rows = trial_timeline(EVENTS, t_fine)
    store_trials = {t["trial_id"]: t for t in store.list_trials(spec.name)}
    compute = sum(r["compute"] for r in rows)
    epochs_only = sum(r["epoch_seconds"] for r in rows)
    lanes = assign_slots(rows, slots)

    print()
    print("per trial (times in s; start = when it began computing, from the start of the fine-tuning phase):")
    print(
        f"  {'trial':<24} {'lr':>8} {'status':>9} {'slot':>4} {'pid':>7} {'start':>7} {'compute':>8} "
        f"{'epochs':>7} {'build+1st ckpt':>14} {'ckpts':>6} {'blocked':>7} {'driver span':>11}"
    )
    slot_of = {id(r): i for i, lane in enumerate(lanes) for r in lane}
    for r in rows:
        st = store_trials.get(r["trial_id"], {})
        span = (r["end"] - r["start"]) if r["start"] and r["end"] else float("nan")
        print(
            f"  {r['trial_id']:<24} {st.get('lr', float('nan')):8.4f} {st.get('status', '?'):>9} {slot_of[id(r)]:>4} "
            f"{r['pid']:>7} {r['compute_start'] - t_fine:7.1f} {r['compute']:8.1f} {r['epoch_seconds']:7.1f} "
            f"{r['first_extra']:14.2f} {r['later_extra']:6.2f} {r['blocked']:7.2f} {span:11.1f}"
        )
    print("  (epochs: sum of per-epoch seconds in the store; build+1st ckpt: first report's time minus its epoch time;")
    print("   ckpts: the same for the later reports; blocked: time inside the trial's span not counted as compute;")
    print("   driver span: the driver's trial start -> trial end callbacks)")

    lead = sum((lane[0]["compute_start"] - t_fine) for lane in lanes if lane)
    t_setup = next((at for kind, _, at, _ in EVENTS if kind == "setup"), t_fine)
    firsts = [lane[0] for lane in lanes if lane]
    lead_parts = ", ".join(
        f"slot {i}: Tuner set-up {t_setup - t_fine:.1f} + actor start {(r['start'] or t_setup) - t_setup:.1f} "
        f"+ first call {r['compute_start'] - (r['start'] or t_setup):.1f}"
        for i, r in enumerate(firsts)
    )
    between = sum(b["compute_start"] - a["compute_end"] for lane in lanes for a, b in zip(lane, lane[1:]))
    blocked = sum(r["blocked"] for r in rows)
    tail = sum(t_end - lane[-1]["compute_end"] for lane in lanes if lane)
    idle_lanes = sum(1 for lane in lanes if not lane) * wall
    lost = wall * slots - compute
    gaps = [b["compute_start"] - a["compute_end"] for lane in lanes for a, b in zip(lane, lane[1:])]
    last_ends = sorted(lane[-1]["compute_end"] for lane in lanes if lane)
    imbalance = (last_ends[-1] - last_ends[0]) if len(last_ends) > 1 else 0.0
    tune_teardown = t_end - last_ends[-1] if last_ends else 0.0
    pids = sorted({r["pid"] for r in rows})

    eff = compute / (wall * slots)
    eff_epochs = epochs_only / (wall * slots)
    eff_total = compute / (total * slots)

    print()
    print("=" * 100)
    print(
        f"SWEEP EFFICIENCY SUMMARY  ({spec.name}: {len(rows)} trials, {slots} slots of {spec.resources.cpu:g} CPU, "
        f"Ray with {args.num_cpus} CPUs, {spec.epochs} epochs per trial)"
    )
    print("-" * 100)
    print(f"Ray start-up (ray.init)                           {ray_start:8.1f} s")
    print(f"driver set-up before pretraining (store, checks)  {before_pretrain:8.1f} s")
    print(f"pretraining stage (1 job on 1 slot, fresh cache)  {pretrain:8.1f} s")
    print(f"fine-tuning phase wall time                       {wall:8.1f} s")
    print(f"whole run (ray.init -> run_sweep returned)        {total:8.1f} s")
    print(
        f"trial compute time, sum of Ray time_total_s       {compute:8.1f} s   (per trial: mean "
        f"{statistics.mean(r['compute'] for r in rows):.1f}, min {min(r['compute'] for r in rows):.1f}, "
        f"max {max(r['compute'] for r in rows):.1f})"
    )
    print(f"  of which epochs (train + test, store seconds)   {epochs_only:8.1f} s")
    print(f"  of which model build + data load (1st report)   {sum(r['first_extra'] for r in rows):8.1f} s")
    print(f"  of which later checkpoint writes + reporting    {sum(r['later_extra'] for r in rows):8.1f} s")
    print("-" * 100)
    verdict = "MEETS" if eff >= args.target else "BELOW"
    print(
        f"sweep efficiency = compute / (fine-tuning wall x slots) = {compute:.1f} / ({wall:.1f} x {slots}) "
        f"= {eff:.3f}   [{verdict} target {args.target}]"
    )
    print(f"  with epoch time only as compute                        = {eff_epochs:.3f}")
    print(f"  with the whole run as wall (Ray start + pretraining)   = {eff_total:.3f}")
    print(f"  whole run, pretraining counted as compute              = {(compute + pretrain) / (total * slots):.3f}")
    print("-" * 100)
    print(
        f"slot-seconds lost (wall x slots - compute)         {lost:8.1f} s  ({lost / (wall * slots):.1%} of the phase)"
    )
    print(f"  phase start -> first trial computing (per slot)  {lead:8.1f} s  (Tuner set-up, actor start, searcher)")
    print(f"      {lead_parts}")
    print(
        f"  between trials on a slot ({len(gaps)} hand-overs)       {between:8.1f} s  "
        f"(per hand-over: {', '.join(f'{g:.1f}' for g in gaps) or '-'})"
    )
    print(f"  inside trials, blocked between reports           {blocked:8.1f} s  (waiting on the driver)")
    print(
        f"  after each slot's last trial                     {tail:8.1f} s  (last trials' end times differ by "
        f"{imbalance:.1f} s; last trial end -> return {tune_teardown:.1f} s)"
    )
    if idle_lanes:
        print(f"  slots that never ran a trial                     {idle_lanes:8.1f} s")
    unattributed = lost - lead - between - blocked - tail - idle_lanes
    print(f"  unattributed (rounding of arrival times)         {unattributed:8.1f} s")
    print(
        f"distinct worker processes: {len(pids)} for {len(rows)} trials "
        f"({'actors reused' if len(pids) <= slots else 'actors NOT reused'})"
    )
    print("=" * 100)

    store.close()
    if args.keep or args.workdir:
        print(f"kept: {workdir}")
    else:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
