"""The package versions of each Ray node, checked against the driver's before a sweep schedules trials.

A trial runs on whichever node has room, with the packages installed there. A node with another aihwkit, torch,
torchvision, timm, numpy, Python or analog-sweep than the driver's trains differently and reports other numbers,
and nothing in those numbers says so. So before the first trial, the driver runs a tiny Ray task pinned to each live
node (``NodeAffinitySchedulingStrategy``, no CPU asked, so a busy or CPU-less node answers too) that reads the
versions there with ``importlib.metadata``, and refuses a cluster whose nodes differ from it, in one line naming the
node and the package, unless the sweep allows mixed versions (``--allow-mixed-versions``: one warning line per node
instead). Nodes that join later are checked through their trials: each trial's first report carries the environment
of its node (``node_environment``), the store keeps it with the trial, and a node that differs from the driver is
warned about once.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Mapping
from typing import Any

from analog_sweep.orchestrator._errors import ClusterError
from analog_sweep.orchestrator._provenance import package_versions
from analog_sweep.results import node_label, package_differences

# The distributions whose versions decide a trial's numbers on the node that runs it ("python" is added). Ray itself
# is left out: a node of another Ray version cannot join the cluster.
NODE_PACKAGES = ("analog-sweep", "torch", "torchvision", "aihwkit", "timm", "numpy")
# How long the check waits for every node to answer (a node starts a Python worker for it, seconds on a busy one).
CHECK_SECONDS = 120.0
ALLOW_OPTION = "--allow-mixed-versions"


def installed_versions() -> dict[str, str | None]:
    """``python`` and each of ``NODE_PACKAGES`` -> its version in this process (None: not installed)."""
    return package_versions(NODE_PACKAGES)


def node_environment() -> dict[str, Any]:
    """The node this process runs on: ``node_id`` and ``ip`` (Ray's, None outside a Ray session), ``host`` and
    ``packages`` (``installed_versions``)."""
    node_id = ip = None
    try:
        import ray

        if ray.is_initialized():
            node_id = ray.get_runtime_context().get_node_id()
            ip = ray.util.get_node_ip_address()
    except Exception:  # noqa: BLE001 - a node without a Ray context is still described by its packages
        pass
    return {"node_id": node_id, "host": socket.gethostname(), "ip": ip, "packages": installed_versions()}


def environment_text(environment: Mapping[str, Any]) -> str:
    """A node environment as the text a trial's report carries (Ray Tune keeps a text as it is, and every number of
    a mapping as a metric)."""
    return json.dumps(dict(environment), sort_keys=True)


def environment_from_report(value: Any) -> dict[str, Any] | None:
    """The node environment a report carried (JSON text, or a mapping taken as it is); None if it carried none."""
    if value is None:
        return None
    return json.loads(value) if isinstance(value, str) else dict(value)


def node_name(environment: Mapping[str, Any]) -> str:
    """``node 10.0.0.7 (1a2b3c4d)``: the node's IP (else its host name) and the start of its Ray node id
    (``results.node_label``; ``ray list nodes`` shows the whole id)."""
    return f"node {node_label(environment)}"


def _joined(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def difference_text(environment: Mapping[str, Any], driver: Mapping[str, str | None]) -> str | None:
    """``node 10.0.0.7 (1a2b3c4d) has timm 0.0.1, the driver 1.0.31``: the node and every package whose version
    differs from the driver's; None if none does."""
    differences = package_differences(environment.get("packages") or {}, driver)
    if not differences:
        return None
    there = [f"{name} {v['node']}" if v["node"] else f"no {name}" for name, v in differences.items()]
    here = [v["driver"] or "none" for v in differences.values()]
    return f"{node_name(environment)} has {_joined(there)}, the driver {_joined(here)}"


def _read_node() -> dict[str, Any]:
    """The task the check runs on each node."""
    return node_environment()


class NodeVersions:
    """The driver's package versions, and what it has said about each node's.

    Args:
        allow_mixed: Run on nodes whose versions differ from the driver's (one warning line each) instead of
            refusing the cluster.
        echo: Told each warning, one line at a time.
        driver: The driver's versions; None reads this process's (``installed_versions``).
    """

    def __init__(
        self,
        allow_mixed: bool,
        echo: Callable[[str], None],
        driver: Mapping[str, str | None] | None = None,
    ) -> None:
        self.allow_mixed = allow_mixed
        self.echo = echo
        self.driver = dict(driver) if driver is not None else installed_versions()
        self.known: dict[str, dict[str, str | None]] = {}  # node id -> the packages already checked or warned about

    def check_cluster(self, timeout: float = CHECK_SECONDS) -> list[dict[str, Any]]:
        """Read every live node's versions with a task pinned to it; refuse, or warn about, the nodes that differ.

        Returns:
            The environment of each node that answered (a node that died meanwhile is left out).

        Raises:
            ClusterError: Without ``allow_mixed``: if a node's versions differ from the driver's, or a node could
                not tell (it did not answer within ``timeout`` seconds, or the task failed there); one line naming
                the first such node and what differs.
        """
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = [node for node in ray.nodes() if node.get("Alive")]
        if not nodes:
            return []
        task = ray.remote(_read_node)
        refs = {
            node["NodeID"]: task.options(
                num_cpus=0,
                max_retries=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
            ).remote()
            for node in nodes
        }
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout)
        answered: list[dict[str, Any]] = []
        silent: list[str] = []
        for node in nodes:
            node_id, ref = node["NodeID"], refs[node["NodeID"]]
            name = node_name({"ip": node.get("NodeManagerAddress"), "node_id": node_id})
            if ref not in ready:
                ray.cancel(ref, force=True)
                silent.append(f"{name} did not answer within {timeout:g} s")
                continue
            try:
                answered.append(ray.get(ref))
            except ray.exceptions.RayError as exc:
                if _alive(node_id):
                    silent.append(f"{name} could not report them ({_one_line(exc)})")
        return self._judge(answered, silent)

    def _judge(self, answered: list[dict[str, Any]], silent: list[str]) -> list[dict[str, Any]]:
        """Refuse or warn about the nodes that differ (``answered``) or could not tell (``silent``, one reason
        each); remember every node, so a trial's report from it warns only about a change."""
        differing = [text for text in (difference_text(env, self.driver) for env in answered) if text]
        if not self.allow_mixed:
            more = len(differing) + len(silent) - 1
            also = f" (and {more} more node{'s' if more != 1 else ''})" if more else ""
            if differing:
                raise ClusterError(
                    f"{differing[0]}: trials there would differ{also}; install the same versions or pass {ALLOW_OPTION}"
                )
            if silent:
                raise ClusterError(
                    f"the package versions of {silent[0]}{also}: trials there might differ unseen; fix the node or "
                    f"pass {ALLOW_OPTION}"
                )
        for text in differing:
            self.echo(
                f"warning: {text}: its trials may differ ({ALLOW_OPTION}); each trial records its node's versions"
            )
        for reason in silent:
            self.echo(f"warning: the package versions of {reason} ({ALLOW_OPTION}); its trials record them")
        for env in answered:
            if env.get("node_id"):
                self.known[env["node_id"]] = dict(env.get("packages") or {})
        return answered

    def trial_environment(self, environment: Mapping[str, Any]) -> None:
        """A trial reported the environment of its node: warn, once per node, if it differs from the driver's and
        was not checked (or warned about) as it is now, e.g. a node that joined the cluster during the sweep."""
        node_id = environment.get("node_id")
        packages = dict(environment.get("packages") or {})
        if not node_id or self.known.get(node_id) == packages:
            return
        self.known[node_id] = packages
        text = difference_text(environment, self.driver)
        if text:
            self.echo(
                f"warning: {text} (it was not checked when the sweep started): its trials may differ; each trial "
                "records its node's versions (analog-sweep results provenance)"
            )


def _alive(node_id: str) -> bool:
    import ray

    return any(node.get("NodeID") == node_id and node.get("Alive") for node in ray.nodes())


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]
