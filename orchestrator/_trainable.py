"""The function Ray Tune runs for each trial: a thin wrapper that hands the worker its config and relays reports.

Each trial checkpoints into its own folder under the sweep's storage path (``trials/<trial id>``), named by the
trial id the searcher gives it, so a retry after a lost worker, or the same trial handed out again after a driver
crash, continues from the last finished epoch. A file lock on that folder keeps two processes from ever training the
same trial at once.

A trial that cannot succeed however often it is retried ends at once, without an exception through Ray Tune (whose
``max_failures`` would retry it): bad data or config (``DataError``, ``ConfigError``, ``ModelError``) reports
``ended_as: failed`` with the reason, diverged training (``TrainingDiverged``) reports ``ended_as: diverged``.
A cause that lasts for the rest of the run (a full disk: ``_environmental.LASTING``) ends the trial the same way,
``ended_as: failed`` with the error, since a retry would only fail again; its traceback goes to the worker's log
(``log``: the file, where Ray keeps the worker's stderr), and the driver stops the sweep so that ``resume`` reruns
the trial once space is freed. Anything else (a lost worker, memory) raises, and is retried up to the sweep's
``max_retries``.

The first report of each run of a trial (and the report of a trial that ends without a result) carries
``rpu_config``: the resolved aihwkit rpu config the trial's tiles are built with (``workers._rpu_json``; None for
digital trials) as JSON text (``_rpu_text``: what Ray Tune keeps of a trial's results), which the store recorder
keeps with the trial, and ``node_environment``: the Ray node the trial runs on and the versions of the packages that
decide its numbers there (``_node_versions``, as JSON text), which the recorder keeps with the trial too.
"""

from __future__ import annotations

import fcntl
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import torch
from ray import tune

from analog_sweep.orchestrator._environmental import exception_cause, is_lasting
from analog_sweep.orchestrator._node_versions import environment_text, node_environment
from analog_sweep.orchestrator._rpu_text import rpu_config_text
from analog_sweep.orchestrator._search import ENDED_AS
from analog_sweep.workers import (
    ConfigError,
    DataError,
    EpochReport,
    ModelError,
    TrainingDiverged,
    TrialConfig,
    run_trial,
    trial_rpu_config_json,
)

# Errors a retry would only repeat: the trial fails at once, with its reason.
DETERMINISTIC_ERRORS = (DataError, ConfigError, ModelError)


def fine_tune(config: dict[str, Any]) -> None:
    """Run one trial from the searcher's suggestion and report every epoch to Ray Tune."""
    threads = max(1, int(config["threads"]))
    torch.set_num_threads(threads)
    trial = TrialConfig.from_dict(config["trial"])
    folder = Path(config["trials_dir"]) / config["trial_id"]
    folder.mkdir(parents=True, exist_ok=True)
    device = "cuda" if config["gpu"] > 0 and torch.cuda.is_available() else "cpu"
    about = {
        "trial_id": config["trial_id"],
        "rpu_config": None,
        "node_environment": environment_text(node_environment()),
    }
    first = [True]

    def report_epoch(report: EpochReport) -> None:
        extra = about if first[0] else {"trial_id": config["trial_id"]}
        first[0] = False
        tune.report({**report.to_dict(), **extra})

    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            about["rpu_config"] = rpu_config_text(trial_rpu_config_json(trial))
            run_trial(
                trial,
                cache_dir=config["cache_dir"],
                checkpoint_dir=folder,
                device=device,
                on_epoch=report_epoch,
            )
        except TrainingDiverged as exc:
            tune.report({ENDED_AS: "diverged", "error": _one_line(exc), **about})
        except DETERMINISTIC_ERRORS as exc:
            tune.report({ENDED_AS: "failed", "error": f"{type(exc).__name__}: {_one_line(exc)}", **about})
        except Exception as exc:
            if not is_lasting(exception_cause(exc)):
                raise
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
            error = f"{type(exc).__name__}: {_one_line(exc)}"
            tune.report({ENDED_AS: "failed", "error": error, "log": _stderr_file(), **about})


def _stderr_file() -> str | None:
    """The file this worker's stderr goes to (Ray's worker log), or None if it is not a file."""
    try:
        target = os.readlink("/proc/self/fd/2")
    except OSError:
        return None
    return target if target.startswith("/") and os.path.isfile(target) else None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500] or type(exc).__name__
