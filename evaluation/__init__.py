"""The benchmark behind ``evaluate.py``: specs, parallel rollouts, rliable statistics, plots and result folders.

Names are imported lazily so that worker processes, which only need the runner, skip rliable and matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Plan": "evaluation.cli", "execute": "evaluation.cli", "main": "evaluation.cli", "resolve": "evaluation.cli",
    "EpisodeResult": "evaluation.runner", "Trace": "evaluation.runner", "run": "evaluation.runner",
    "EnvSpec": "evaluation.specs", "EvaluationError": "evaluation.specs", "PolicySpec": "evaluation.specs",
    "parse_env_spec": "evaluation.specs", "parse_policy_specs": "evaluation.specs",
    "BENCHMARK_SEED_BASE": "evaluation.suite", "get_suite": "evaluation.suite",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'evaluation' has no attribute {name!r}")
