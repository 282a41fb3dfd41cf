"""Provenance in the store: how each run of a sweep was made, which pretrained models and rpu configs it used, and
on which Ray nodes, with which package versions, its trials ran.

The sweep driver gathers the environment (``orchestrator``: packages, project commit, host, command line, each node's
package versions) and hands it here as plain data; this module validates it, keeps secrets out of it, writes it, and
reads it back as one dict (``Store.provenance``) for ``analog-sweep results provenance`` and the report.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shlex
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from analog_sweep.results import _labels
from analog_sweep.results._errors import StoreInputError
from analog_sweep.results._schema import (
    RUN_KINDS,
    node_environments,
    points,
    pretrained_models,
    rpu_configs,
    sweep_runs,
    trials,
    utc_row,
)

# scheme://user:PASSWORD@host (greedy to the last @, so a password holding a raw @ is hidden whole) and
# ?password=... / &sslpassword=... (libpq's query parameters). In free text a password ends at white space; in one
# value (an argument of a command line, an option) it may hold any character.
_SCHEME_USER = r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*:)"
_URL_PASSWORD = {
    False: re.compile(_SCHEME_USER + r"[^\s]*(?P<at>@)"),
    True: re.compile(_SCHEME_USER + r".*(?P<at>@)", re.DOTALL),
}
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:password|sslpassword)=)[^&\s]*", re.IGNORECASE)

# The run fields a caller gives ``record_run`` (``run_id`` and ``kind`` required), and what each is.
RUN_FIELDS = (
    "run_id",
    "kind",
    "started_at",
    "command",
    "options",
    "packages",
    "aihwkit_cuda",
    "project",
    "host",
    "platform",
    "cpu",
    "gpus",
    "cluster",
)


def redact(text: str, *, one_value: bool = False) -> str:
    """``text`` with every URL password (``scheme://user:SECRET@host``, ``?password=SECRET``) replaced by ``***``.

    Over-hides rather than under-hides: everything from the user's colon to the last ``@`` of the word goes (of the
    whole text with ``one_value``, for one argument or option value, where a password may hold spaces).
    """
    text = _URL_PASSWORD[one_value].sub(lambda m: f"{m['head']}***{m['at']}", text)
    return _QUERY_PASSWORD.sub(lambda m: f"{m['head']}***", text)


def _redact_all(value: Any) -> Any:
    """Every string inside ``value`` (dicts, lists) redacted, each as one value."""
    if isinstance(value, str):
        return redact(value, one_value=True)
    if isinstance(value, Mapping):
        return {str(k): _redact_all(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_all(v) for v in value]
    return value


def _json_ready(value: Any, what: str) -> Any:
    """``value`` if it is strict JSON (no NaN or infinity, only JSON types), else ``StoreInputError``."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreInputError(f"{what} is not JSON: {exc}") from None
    return value


def command_text(command: str | Sequence[str] | None) -> str | None:
    """A command line as one shell-quoted string, passwords hidden (a list is redacted argument by argument, then
    joined the way a shell would read it back)."""
    if command is None:
        return None
    if isinstance(command, str):
        return redact(command)
    return shlex.join(redact(str(part), one_value=True) for part in command)


def _upsert(connection: sa.Connection, table: sa.Table, values: dict[str, Any], update: Sequence[str]) -> None:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values)
    keys = [c.name for c in table.primary_key.columns]
    if update:
        statement = statement.on_conflict_do_update(
            index_elements=keys, set_={name: statement.excluded[name] for name in update}
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    connection.execute(statement)


def record_run(connection: sa.Connection, sweep: str, run: Mapping[str, Any]) -> None:
    """Write one run record (see ``Store.record_run``); the same ``run_id`` again overwrites it."""
    unknown = sorted(set(run) - set(RUN_FIELDS))
    if unknown:
        raise StoreInputError(f"unknown run field(s) {', '.join(unknown)}: expected {', '.join(RUN_FIELDS)}")
    if not run.get("run_id"):
        raise StoreInputError("a run record needs a run_id")
    if run.get("kind") not in RUN_KINDS:
        raise StoreInputError(f"unknown run kind {run.get('kind')!r}: expected one of {', '.join(RUN_KINDS)}")
    packages = run.get("packages") or {}
    if not isinstance(packages, Mapping) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in packages.items()
    ):
        raise StoreInputError("packages must map package names to version strings")
    project = run.get("project") or {}
    if not isinstance(project, Mapping):
        raise StoreInputError("project must be a mapping of version, commit and dirty")
    started = run.get("started_at") or datetime.now(UTC)
    values = dict(
        run_id=str(run["run_id"]),
        sweep=sweep,
        kind=run["kind"],
        started_at=started,
        command=command_text(run.get("command")),
        options=_json_ready(_redact_all(dict(run.get("options") or {})), "options"),
        packages=dict(packages),
        aihwkit_cuda=run.get("aihwkit_cuda"),
        project_version=project.get("version"),
        project_commit=project.get("commit"),
        project_dirty=project.get("dirty"),
        host=run.get("host"),
        platform=run.get("platform"),
        cpu=_json_ready(run.get("cpu"), "cpu"),
        gpus=_json_ready(run.get("gpus"), "gpus"),
        cluster=_json_ready(_redact_all(run.get("cluster")), "cluster"),
    )
    _upsert(connection, sweep_runs, values, [k for k in values if k != "run_id"])


def record_pretrained(connection: sa.Connection, sweep: str, model: Mapping[str, Any]) -> None:
    """Write one pretrained model a sweep used (see ``Store.record_pretrained``); a known one is left as it is."""
    for name in ("cache_key", "file_hash"):
        if not model.get(name):
            raise StoreInputError(f"a pretrained model record needs its {name}")
    numbers = {}
    for name in ("source_error", "source_train_error", "train_seconds"):
        value = model.get(name)
        numbers[name] = None if value is None else float(value)
        if numbers[name] is not None and not math.isfinite(numbers[name]):
            raise StoreInputError(f"pretrained model {model['cache_key']}: {name} must be finite, got {value!r}")
    values = dict(
        sweep=sweep,
        cache_key=str(model["cache_key"]),
        file_hash=str(model["file_hash"]),
        run_id=model.get("run_id"),
        trained_now=model.get("trained_now"),
        path=model.get("path"),
        recorded_at=datetime.now(UTC),
        **numbers,
    )
    _upsert(connection, pretrained_models, values, [])


def set_trial_rpu_config(connection: sa.Connection, trial_id: str, rpu_config: Mapping[str, Any] | None) -> int:
    """Write a trial's rpu config (once per distinct config in ``rpu_configs``, the trial pointing at it by
    ``config_hash``); return how many trial rows changed (0: no such trial)."""
    digest = None
    if rpu_config is not None:
        value = _json_ready(dict(rpu_config), f"trial {trial_id}'s rpu config")
        digest = config_hash(value)
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        connection.execute(
            dialect.insert(rpu_configs).values(config_hash=digest, rpu_config=value).on_conflict_do_nothing()
        )
    done = connection.execute(sa.update(trials).where(trials.c.trial_id == trial_id).values(rpu_config_hash=digest))
    return done.rowcount


# The fields of a node environment (``Store.set_trial_node_environment``): all but ``packages`` may be None.
NODE_FIELDS = ("node_id", "host", "ip", "packages")


def _node_environment(environment: Mapping[str, Any], what: str) -> dict[str, Any]:
    """A node environment checked and in canonical form, or ``StoreInputError``."""
    if not isinstance(environment, Mapping):
        raise StoreInputError(f"{what} must be a mapping of {', '.join(NODE_FIELDS)}")
    unknown = sorted(set(environment) - set(NODE_FIELDS))
    if unknown:
        raise StoreInputError(f"unknown node field(s) {', '.join(unknown)}: expected {', '.join(NODE_FIELDS)}")
    packages = environment.get("packages")
    if not isinstance(packages, Mapping) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in packages.items()
    ):
        raise StoreInputError(f"{what}: packages must map package names to version strings (or None)")
    values = {name: environment.get(name) for name in NODE_FIELDS[:-1]}
    if not all(v is None or isinstance(v, str) for v in values.values()):
        raise StoreInputError(f"{what}: node_id, host and ip must be text")
    return {**values, "packages": dict(packages)}


def record_node_environment(connection: sa.Connection, environment: Mapping[str, Any]) -> str:
    """Write a node environment once (``node_environments``, by its hash) and return its ``environment_hash``."""
    value = _node_environment(environment, "a node environment")
    digest = config_hash(value)
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(
        dialect.insert(node_environments).values(environment_hash=digest, **value).on_conflict_do_nothing()
    )
    return digest


def set_trial_node_environment(connection: sa.Connection, trial_id: str, environment: Mapping[str, Any] | None) -> int:
    """Point a trial at the node it ran on (written once per distinct node environment); return how many trial
    rows changed (0: no such trial)."""
    digest = None if environment is None else record_node_environment(connection, environment)
    done = connection.execute(
        sa.update(trials).where(trials.c.trial_id == trial_id).values(node_environment_hash=digest)
    )
    return done.rowcount


def package_differences(
    node: Mapping[str, str | None], driver: Mapping[str, str | None]
) -> dict[str, dict[str, str | None]]:
    """The packages whose versions differ between a node and the driver, as ``{name: {"node": v, "driver": v}}`` (None:
    not installed); a package only one side recorded is no difference (an older record has fewer)."""
    return {
        name: {"node": node[name], "driver": driver[name]}
        for name in node
        if name in driver and node[name] != driver[name]
    }


def node_label(environment: Mapping[str, Any]) -> str:
    """``10.0.0.7 (1a2b3c4d)``: a node's IP (else its host name) and the first 8 hex digits of its Ray node id."""
    where = environment.get("ip") or environment.get("host") or "?"
    node_id = environment.get("node_id")
    return f"{where} ({node_id[:8]})" if node_id else str(where)


def differences_text(differences: Mapping[str, Mapping[str, str | None]]) -> str:
    """``timm 0.0.1 (the driver 1.0.31), aihwkit none (the driver 1.1.0)``, or ``none`` when the versions agree."""
    if not differences:
        return "none"
    return ", ".join(
        f"{name} {v.get('node') or 'none'} (the driver {v.get('driver') or 'none'})" for name, v in differences.items()
    )


def nodes_summary(nodes: Sequence[Mapping[str, Any]]) -> str:
    """``3 nodes, 2 package sets; 1 node differs from the driver (12 trials)``: what a sweep's nodes had."""
    sets = {json.dumps(dict(node.get("packages") or {}), sort_keys=True) for node in nodes}
    differ = [node for node in nodes if node.get("differences")]
    text = f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}, {len(sets)} package set{'s' if len(sets) != 1 else ''}"
    if not differ:
        return f"{text}; every node has the driver's versions"
    trials = sum(int(node.get("trials") or 0) for node in differ)
    return (
        f"{text}; {len(differ)} node{'s' if len(differ) != 1 else ''} differ{'s' if len(differ) == 1 else ''} from "
        f"the driver ({trials} trial{'s' if trials != 1 else ''})"
    )


def config_hash(rpu_config: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of an rpu config, first 16 hex digits: the same config, the same hash."""
    text = json.dumps(rpu_config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _point_labels(connection: sa.Connection, sweep: str) -> dict[str, str]:
    """Every point's readable label by its key (``_labels.point_label``: the stored one, or one made for a point
    recorded before labels were)."""
    rows = [dict(row) for row in connection.execute(sa.select(points).where(points.c.sweep == sweep)).mappings()]
    varied = _labels.varied_axes(rows)
    return {row["point_key"]: _labels.point_label(row, varied) for row in rows}


def read_provenance(connection: sa.Connection, sweep: str) -> dict[str, Any]:
    """The provenance of one sweep as plain data (see ``Store.provenance``); each rpu config lists the trials that
    ran with it (``trial_ids``) and their points, by key (``point_keys``) and label (``point_labels``, the same
    order)."""
    rows = connection.execute(
        sa.select(sweep_runs).where(sweep_runs.c.sweep == sweep).order_by(sweep_runs.c.started_at, sweep_runs.c.run_id)
    ).mappings()
    runs = []
    for number, row in enumerate(rows, start=1):
        row = utc_row(row)
        runs.append(
            {
                "run": number,
                "run_id": row["run_id"],
                "kind": row["kind"],
                "started_at": row["started_at"],
                "command": row["command"],
                "options": row["options"] or {},
                "packages": row["packages"] or {},
                "aihwkit_cuda": row["aihwkit_cuda"],
                "project": {
                    "version": row["project_version"],
                    "commit": row["project_commit"],
                    "dirty": row["project_dirty"],
                },
                "host": row["host"],
                "platform": row["platform"],
                "cpu": row["cpu"],
                "gpus": row["gpus"],
                "cluster": row["cluster"],
            }
        )
    run_numbers = {run["run_id"]: run["run"] for run in runs}
    models = connection.execute(
        sa.select(pretrained_models)
        .where(pretrained_models.c.sweep == sweep)
        .order_by(pretrained_models.c.recorded_at, pretrained_models.c.cache_key, pretrained_models.c.file_hash)
    ).mappings()
    pretrained = [
        {
            "cache_key": m["cache_key"],
            "file_hash": m["file_hash"],
            "source_error": m["source_error"],
            "source_train_error": m["source_train_error"],
            "train_seconds": m["train_seconds"],
            "trained_now": m["trained_now"],
            "path": m["path"],
            "run": run_numbers.get(m["run_id"]),
            "recorded_at": utc_row(m)["recorded_at"],
        }
        for m in models
    ]
    groups: dict[str, dict[str, Any]] = {}
    without = 0
    for trial in connection.execute(
        sa.select(trials.c.trial_id, trials.c.point_key, trials.c.rpu_config_hash)
        .where(trials.c.sweep == sweep)
        .order_by(trials.c.point_key, trials.c.trial_id)
    ):
        digest = trial.rpu_config_hash
        if digest is None:
            without += 1
            continue
        group = groups.setdefault(
            digest, {"config_hash": digest, "rpu_config": None, "trial_ids": [], "point_keys": []}
        )
        group["trial_ids"].append(trial.trial_id)
        if trial.point_key not in group["point_keys"]:
            group["point_keys"].append(trial.point_key)
    if groups:
        stored = connection.execute(
            sa.select(rpu_configs.c.config_hash, rpu_configs.c.rpu_config).where(
                rpu_configs.c.config_hash.in_(list(groups))
            )
        )
        for digest, config in stored:
            groups[digest]["rpu_config"] = config
        labels = _point_labels(connection, sweep)
        for group in groups.values():
            group["point_labels"] = [labels.get(key, key) for key in group["point_keys"]]
    nodes, without_node = _read_nodes(connection, sweep, runs)
    return {
        "sweep": sweep,
        "runs": runs,
        "pretrained": pretrained,
        "rpu_configs": list(groups.values()),
        "trials_without_rpu_config": without,
        "nodes": nodes,
        "trials_without_node": without_node,
    }


def driver_packages(run: Mapping[str, Any]) -> dict[str, str | None]:
    """The driver's package versions of a run record, with the project's version as ``analog-sweep`` (as a node
    environment names it)."""
    packages = dict(run.get("packages") or {})
    version = (run.get("project") or {}).get("version")
    if version is not None:
        packages["analog-sweep"] = version
    return packages


def _read_nodes(connection: sa.Connection, sweep: str, runs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The Ray nodes of a sweep (those its trials ran on, and those its runs checked before they started), each with
    its package versions, how many trials ran on it, and which packages differ from the driver of the last run; and
    how many trials have no node recorded."""
    counts: dict[str, int] = {}
    without = 0
    for digest, count in connection.execute(
        sa.select(trials.c.node_environment_hash, sa.func.count())
        .where(trials.c.sweep == sweep)
        .group_by(trials.c.node_environment_hash)
    ):
        if digest is None:
            without += count
        else:
            counts[digest] = count
    checked = [
        digest
        for run in runs
        for digest in ((run.get("cluster") or {}).get("node_environments") or [])
        if isinstance(digest, str)
    ]
    wanted = list(dict.fromkeys([*checked, *counts]))
    if not wanted:
        return [], without
    rows = {
        row["environment_hash"]: dict(row)
        for row in connection.execute(
            sa.select(node_environments).where(node_environments.c.environment_hash.in_(wanted))
        ).mappings()
    }
    driver = driver_packages(runs[-1]) if runs else {}
    nodes = []
    for digest in wanted:
        row = rows.get(digest)
        if row is None:
            continue
        packages = row["packages"] or {}
        nodes.append(
            {
                "environment_hash": digest,
                "node_id": row["node_id"],
                "host": row["host"],
                "ip": row["ip"],
                "packages": packages,
                "trials": counts.get(digest, 0),
                "differences": package_differences(packages, driver),
            }
        )
    nodes.sort(key=lambda node: (-node["trials"], node["ip"] or "", node["node_id"] or ""))
    return nodes, without
