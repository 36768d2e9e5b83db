"""Per-episode parameters: fixed scenarios, the randomized training family, held-out profiles.

Everything a scenario leaves to chance is drawn here, at reset, from the env's ``np_random``, into
:class:`EpisodeParams` arrays (one row per env), so the dynamics never branch on the scenario kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.scenario import PROVIDERS, TIERS, Scenario

P, K = len(PROVIDERS), len(TIERS)

# Training support of Randomized-v0 (DESIGN.md: speeds 2-6 weeks, demand 1e4-1e6/day).
TRAIN_WARMUP_DAYS = (14.0, 42.0)
TRAIN_LIST_QUALITY = (0.5, 1.0)
TRAIN_DEMAND = (1e4, 1e6)
TRAIN_MIX_CONCENTRATION = 20.0
TRAIN_MAX_MICROSOFT_SHARE = 0.4

HELDOUT_PROFILES: dict[str, dict[str, Any]] = {
    # Each lies outside the training support in at least one dimension, so training never samples it.
    "b2b-microsoft": {"provider_share": (0.15, 0.60, 0.05, 0.05, 0.15), "demand": 50_000.0},
    "poor-list": {"list_quality": 0.3, "demand": 100_000.0},
    "slow-providers": {"warmup_days": (49.0,) * P, "demand": 200_000.0},
    "big-sender": {"demand": 3_000_000.0, "horizon": 60},
}
"""Held-out generalization profiles for Randomized-v0 (``gymnasium.make(..., profile=NAME)``)."""


@dataclass
class EpisodeParams:
    """The numbers that may differ between episodes, one row per env."""

    demand: np.ndarray  # [n, P] int64, fresh emails per day per provider
    tier_share: np.ndarray  # [n, K] audience composition
    trust_rate: np.ndarray  # [n, P] per-day trust growth rate at full activity
    initial_trust: np.ndarray  # [n, P]

    @staticmethod
    def empty(n: int) -> EpisodeParams:
        return EpisodeParams(
            demand=np.zeros((n, P), np.int64),
            tier_share=np.zeros((n, K)),
            trust_rate=np.zeros((n, P)),
            initial_trust=np.zeros((n, P)),
        )


def trust_rate(scenario: Scenario, warmup_days: np.ndarray) -> np.ndarray:
    """Growth rate that takes trust from cold to high in ``warmup_days`` at full activity."""
    gap = np.log((1.0 - scenario.cold_trust) / (1.0 - scenario.high_trust))
    return gap / np.asarray(warmup_days, dtype=np.float64)


def _profile_scenario(scenario: Scenario) -> Scenario:
    if scenario.profile is None:
        return scenario
    return scenario.replace(profile=None, randomize=False, **HELDOUT_PROFILES[scenario.profile])


def draw_episode_params(scenario: Scenario, rng: np.random.Generator, out: EpisodeParams, mask: np.ndarray) -> None:
    """Fill the rows of ``out`` selected by ``mask`` with a fresh episode's parameters."""
    idx = np.flatnonzero(mask)
    m = idx.size
    if m == 0:
        return
    fixed = _profile_scenario(scenario)
    if fixed.randomize:
        warmup_days = rng.uniform(*TRAIN_WARMUP_DAYS, size=(m, P))
        quality = rng.uniform(*TRAIN_LIST_QUALITY, size=m)
        demand = np.exp(rng.uniform(np.log(TRAIN_DEMAND[0]), np.log(TRAIN_DEMAND[1]), size=m))
        mix = _draw_mix(fixed, rng, m)
        tier = np.stack([np.asarray(fixed.tier_share(q)) for q in quality])
    else:
        warmup_days = np.broadcast_to(np.asarray(fixed.warmup_days), (m, P))
        demand = np.full(m, fixed.demand)
        mix = np.broadcast_to(np.asarray(fixed.provider_share), (m, P))
        tier = np.broadcast_to(np.asarray(fixed.tier_share()), (m, K))
    lo, hi = fixed.initial_trust
    out.initial_trust[idx] = rng.uniform(lo, hi, size=(m, P)) if hi > lo else lo
    out.demand[idx] = np.rint(demand[:, None] * mix).astype(np.int64)
    out.tier_share[idx] = tier
    out.trust_rate[idx] = trust_rate(fixed, warmup_days)


def _draw_mix(scenario: Scenario, rng: np.random.Generator, m: int) -> np.ndarray:
    """Provider mixes around the default, rejecting the held-out Microsoft-heavy region."""
    alpha = TRAIN_MIX_CONCENTRATION * np.asarray(scenario.provider_share) + 1e-3
    mix = rng.dirichlet(alpha, size=m)
    bad = mix[:, 1] > TRAIN_MAX_MICROSOFT_SHARE
    while bad.any():
        mix[bad] = rng.dirichlet(alpha, size=int(bad.sum()))
        bad = mix[:, 1] > TRAIN_MAX_MICROSOFT_SHARE
    return mix


def resolved_scenario(scenario: Scenario) -> Scenario:
    """The scenario whose scalar fields govern an episode (a held-out profile's, if one is set)."""
    return _profile_scenario(scenario)
