"""The randomized training family's support and the held-out profiles that lie outside it, in one place.

Plain data (no scenario import), so ``envs.scenario`` can validate a ``profile=`` name and
``envs.families`` can draw episodes without importing each other in a circle.
"""

from __future__ import annotations

from typing import Any

from core.providers import PROVIDERS

TRAIN_WARMUP_DAYS = (14.0, 42.0)
"""Provider speeds drawn per episode: 2 to 6 weeks (DESIGN.md; SES, 1.1)."""
TRAIN_COLD_CAPACITY = (50.0, 10_000.0)
"""Cold acceptance per provider, emails/day, drawn log-uniformly over the published day-1 range (9.1)."""
TRAIN_LIST_QUALITY = (0.4, 1.0)
"""List quality drawn uniformly: from poor (35% of the list in the oldest, unengaged tier) to excellent (5%)."""
TRAIN_DEMAND = (1e3, 1e7)
"""Fresh emails/day, drawn log-uniformly: a small sender to one past a warm IP's capacity (issue 13 widened
DESIGN.md's 10^4-10^6)."""
TRAIN_MIX_CONCENTRATION = 20.0
"""Dirichlet concentration of provider mixes around their centre. ASSUMPTION."""
TRAIN_B2B_EPISODES = 0.25
"""Share of training episodes whose audience is a business one, mixes drawn around :data:`TRAIN_B2B_MIX`.
ASSUMPTION."""
TRAIN_B2B_MIX = (0.25, 0.40, 0.05, 0.05, 0.25)
"""Centre of business audiences: Microsoft-heavy (Microsoft 365), Google Workspace second (it shares Gmail's MX,
3.1), corporate gateways in 'other'. ASSUMPTION."""
TRAIN_MAX_MICROSOFT_SHARE = 0.5
"""Mixes with more Microsoft than this are rejected in training: the b2b-microsoft profile (0.6) is held out."""

HELDOUT_PROFILES: dict[str, dict[str, Any]] = {
    # Each lies outside the training support in at least one dimension, so training never samples it.
    "b2b-microsoft": {"provider_share": (0.15, 0.60, 0.05, 0.05, 0.15), "demand": 50_000.0},
    "poor-list": {"list_quality": 0.2, "demand": 100_000.0},
    "slow-providers": {"warmup_days": (49.0,) * len(PROVIDERS), "demand": 200_000.0},
    "big-sender": {"demand": 20_000_000.0},
}
"""Held-out generalization profiles for Randomized (``gymnasium.make(..., profile=NAME)``). A profile fixes the
list, demand and provider fields it names; it never names the horizon, so an explicit ``horizon=`` holds."""
