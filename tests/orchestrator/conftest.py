"""One local Ray instance for the orchestrator tests (starting Ray costs seconds; the tests share it)."""

from __future__ import annotations

import pytest
import ray

# The quickstart at nano size, on the 16x16 input and the constant rate the fault and timing tests were tuned on (an
# analog epoch long enough for a signal or a kill to land inside it).
NANO_SWEEP = [
    "data.image_size=16",
    "model.overrides.window_size=4",
    "lr_schedule=constant",
    "data.train_limit=16",
    "data.test_limit=16",
    "data.source_limit=100",
    "model.overrides.depths=[1,1]",
    "model.overrides.embed_dim=12",
    "pretrain.epochs=2",
    "epochs=2",
    "seeds=[0]",
]


@pytest.fixture(scope="session")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield
    ray.shutdown()
