"""Everything that acts on the simulator: schedules, heuristics, the oracle and PPO.

``load_policy(spec, env)`` is the one entry point (DESIGN.md, "Contracts"); ``run_episodes`` and
``episode_kpis`` compute the episode KPIs every report uses.

The names below are imported lazily (PEP 562) so that the scheduler-side modules
(``agents.runtime``, ``agents.recommend``, ``agents.ses_events``) load with numpy and onnxruntime
alone: importing them must not pull in gymnasium, torch or stable-baselines3.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "BASELINES": "agents.registry",
    "load_policy": "agents.registry",
    "KPI_NAMES": "agents.kpis",
    "episode_kpis": "agents.kpis",
    "run_episodes": "agents.kpis",
    "Policy": "agents.policy",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
