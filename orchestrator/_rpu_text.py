"""How a trial's rpu config travels in its report: as JSON text, not a mapping.

Ray Tune keeps every number of a trial's results in its experiment state (last, min, max and running means, per
trial, rewritten each time the experiment checkpoints); a text is kept as it is. As a mapping, the config's few
hundred numbers would add about 100 kB a trial to that state (``bench/driver_scale.py`` measures its size).
"""

from __future__ import annotations

import json
from typing import Any


def rpu_config_text(rpu_config: dict[str, Any] | None) -> str | None:
    """An rpu config (``workers.trial_rpu_config_json``) as the text a report carries; None stays None."""
    return None if rpu_config is None else json.dumps(rpu_config, sort_keys=True)


def rpu_config_from_report(value: Any) -> dict[str, Any] | None:
    """The rpu config a report carried: JSON text (or a mapping, which is taken as it is)."""
    return json.loads(value) if isinstance(value, str) else value
