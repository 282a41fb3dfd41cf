"""``analog-sweep submit``, ``jobs`` and ``logs``: a sweep as a Ray Job on a remote cluster, then walk away.

A thin layer over ``orchestrator``'s job functions (Ray's Jobs SDK). Exit codes: 0 ok, 1 the jobs server could
not be reached or the job failed, 2 bad input (an invalid spec, an unknown job, a store URL with a password).
"""

from __future__ import annotations

import click

from analog_sweep.cli.output import (
    BadInput,
    SafePath,
    display_rows,
    emit_rows,
    one_line_errors,
    output_options,
    progress,
    store_option,
)
from analog_sweep.cli.run import STORAGE_ENV, profile_option
from analog_sweep.orchestrator import (
    JobInputError,
    JobsError,
    job_logs,
    list_sweep_jobs,
    submit_resume,
    submit_sweep,
    wait_for_start,
)
from analog_sweep.sweeps import SpecError

ADDRESS_ENV = "RAY_ADDRESS"  # what Ray's own `ray job` commands read
_job_errors = one_line_errors(SpecError, JobInputError, failure=(JobsError, OSError))


def _address_option(command: click.Command) -> click.Command:
    return click.option(
        "--address",
        envvar=ADDRESS_ENV,
        required=True,
        metavar="URL",
        help=f"The cluster's jobs server: its head's dashboard address, e.g. http://HEAD:8265 [env: {ADDRESS_ENV}].",
    )(command)


@click.command()
@click.argument("spec_file", type=SafePath(dir_okay=False), required=False)
@click.option(
    "--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a spec field, as for 'run' (repeatable)."
)
@profile_option
@click.option(
    "--resume",
    "resume_sweep",
    metavar="SWEEP",
    help="Instead of SPEC_FILE: continue this sweep on the cluster (its job was stopped, its cluster died).",
)
@_address_option
@click.option(
    "--storage-path",
    metavar="DIR",
    help=f"Absolute folder on the cluster's shared volume [default: the cluster's ${STORAGE_ENV}].",
)
@click.option("--cpu-fallback", is_flag=True, help="If the spec asks for GPUs and the cluster has none, use CPUs.")
@click.option(
    "--allow-mixed-versions",
    is_flag=True,
    help="Run on nodes whose package versions differ from the driver's (one warning each) instead of refusing.",
)
@store_option
@output_options
@_job_errors
def submit(
    spec_file: str | None,
    overrides: tuple[str, ...],
    profile: str | None,
    resume_sweep: str | None,
    address: str,
    storage_path: str | None,
    cpu_fallback: bool,
    allow_mixed_versions: bool,
    store_url: str | None,
    output_format: str,
) -> None:
    """Submit a sweep to a Ray cluster as a Ray Job, print its id, and return.

    The spec is validated here first (one-line errors, as for 'run'); the job carries this project's code and
    the spec, and runs 'analog-sweep run' on the cluster with the head's 'python'; 'submit' waits until that
    interpreter is found (a minute at most) and fails in one line if it lacks the project's dependencies. Without
    --store and --storage-path the job uses the cluster's $ANALOG_SWEEP_STORE and $ANALOG_SWEEP_STORAGE
    (docker/kuberay/ sets both). Follow it with
    'analog-sweep logs JOB'; a job stopped early is continued with 'analog-sweep submit --resume SWEEP'.

    \b
    Example:
        analog-sweep submit sweeps/quickstart.yaml --address http://HEAD:8265 --profile smoke
        analog-sweep submit --resume quickstart-smoke --address http://HEAD:8265
    """
    if (spec_file is None) == (resume_sweep is None):
        raise click.UsageError("give SPEC_FILE, or --resume SWEEP (not both)")
    if resume_sweep is not None:
        if overrides or profile or storage_path:
            raise BadInput(
                "--resume takes the sweep's spec and storage path from the store: no --set, --profile or --storage-path"
            )
        job = submit_resume(
            address,
            resume_sweep,
            store_url=store_url,
            cpu_fallback=cpu_fallback,
            allow_mixed_versions=allow_mixed_versions,
        )
    else:
        job = submit_sweep(
            address,
            spec_file,
            overrides=overrides,
            profile=profile,
            storage_path=storage_path,
            store_url=store_url,
            cpu_fallback=cpu_fallback,
            allow_mixed_versions=allow_mixed_versions,
        )
    # A job whose entrypoint cannot run on the head fails within seconds: say so here, in one line, not later.
    started = wait_for_start(address, job.job_id)
    where = (
        f"running with {started}"
        if started
        else "not started within a minute: Ray is still setting up its runtime environment"
    )
    progress(
        f"submitted {job.command} of sweep {job.sweep} to {address} ({where}); follow it with "
        f"'analog-sweep logs {job.job_id} --address {address}'"
    )
    emit_rows([{"job": job.job_id, "sweep": job.sweep, "command": job.command}], output_format)


@click.command()
@_address_option
@output_options
@_job_errors
def jobs(address: str, output_format: str) -> None:
    """List the sweep jobs on a Ray cluster, oldest first, with Ray's status (PENDING, RUNNING, SUCCEEDED,
    FAILED, STOPPED).

    \b
    Example:
        analog-sweep jobs --address http://HEAD:8265
    """
    rows = list_sweep_jobs(address)
    emit_rows(
        display_rows(rows), output_format, columns=("job", "sweep", "command", "status", "started", "ended", "message")
    )


@click.command()
@click.argument("job")
@_address_option
@click.option(
    "--follow/--no-follow",
    default=True,
    show_default=True,
    help="Follow the logs until the job ends, or print what there is now.",
)
@output_options
@_job_errors
def logs(job: str, address: str, follow: bool, output_format: str) -> int:
    """Print a sweep job's logs (following them until it ends), then its status; exit 1 if it did not succeed.

    \b
    Example:
        analog-sweep logs JOB_ID --address http://HEAD:8265
    """
    status = job_logs(address, job, lambda text: click.echo(text, nl=False), follow=follow)
    emit_rows([{"job": job, "status": status}], output_format)
    if status in ("FAILED", "STOPPED"):
        return 1
    return 0
