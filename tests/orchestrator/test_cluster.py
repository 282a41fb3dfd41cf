"""A local Ray instance the sweep starts for itself opens without Ray's token-authentication notice; the notice is
dropped there only, and nothing else Ray logs is."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from analog_sweep.orchestrator._cluster import LOCAL_TOKEN_NOTICE, TOKEN_LOGGER, without_local_token_notice

REPO = Path(__file__).resolve().parents[2]


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_only_the_local_token_notice_is_dropped_and_only_inside_the_block():
    logger = logging.getLogger(TOKEN_LOGGER)
    kept = _Kept()
    logger.addHandler(kept)
    notice = f"{LOCAL_TOKEN_NOTICE} Set RAY_AUTH_MODE=disabled to opt out."
    other = "Token authentication is enabled but no authentication token was found"
    try:
        with without_local_token_notice():
            logger.warning(notice)
            logger.warning(other)
        logger.warning(notice)
    finally:
        logger.removeHandler(kept)
    assert kept.messages == [other, notice]
    assert logger.filters == []


def test_a_local_session_starts_ray_with_token_authentication_and_says_nothing_of_it(tmp_path):
    """A real local instance (``ray_session`` without an address), in its own process: Ray turns token
    authentication on (the case in which it logs the notice), and nothing about it reaches stderr or stdout."""
    script = (
        "import os, ray\n"
        "from analog_sweep.orchestrator import ray_session\n"
        "with ray_session(None):\n"
        "    print('cpus', ray.cluster_resources().get('CPU'), 'auth', os.environ.get('RAY_AUTH_MODE'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "auth token" in done.stdout, done.stdout  # Ray turned token authentication on for its new instance
    assert "Token authentication" not in done.stdout + done.stderr, done.stderr
