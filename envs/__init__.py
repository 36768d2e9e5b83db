"""ipwarmup's simulator. ``import envs`` registers the ``ipwarmup/*-v1`` Gymnasium ids.

Asking for an old version (``-v0``) gets Gymnasium's "deprecated, use -v1" error: results under one id stay
comparable, so the id changes with the dynamics.
"""

from __future__ import annotations

import gymnasium

from core.actions import action_to_share, share_to_action
from core.features import LAYOUT
from core.providers import PROVIDERS, TIERS
from envs.profiles import HELDOUT_PROFILES
from envs.scenario import SCENARIOS, Scenario, ScenarioError, get_scenario
from envs.warmup_env import WarmupEnv, WarmupVectorEnv

ENV_IDS: tuple[str, ...] = tuple(f"ipwarmup/{name}" for name in SCENARIOS)

for _name in SCENARIOS:
    if f"ipwarmup/{_name}" not in gymnasium.registry:
        gymnasium.register(
            id=f"ipwarmup/{_name}",
            entry_point="envs.warmup_env:WarmupEnv",
            vector_entry_point="envs.warmup_env:WarmupVectorEnv",
            kwargs={"scenario": _name},
        )

__all__ = [
    "ENV_IDS",
    "HELDOUT_PROFILES",
    "LAYOUT",
    "PROVIDERS",
    "SCENARIOS",
    "TIERS",
    "Scenario",
    "ScenarioError",
    "WarmupEnv",
    "WarmupVectorEnv",
    "action_to_share",
    "get_scenario",
    "share_to_action",
]
