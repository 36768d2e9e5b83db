"""Per-episode parameters: fixed scenarios, the randomized training family, held-out profiles.

Everything a scenario leaves to chance is drawn here, at reset, from the env's ``np_random``, into
:class:`EpisodeParams` arrays (one row per env), so the dynamics never branch on the scenario kind.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.providers import PROVIDERS, TIERS
from envs.profiles import (
    HELDOUT_PROFILES,
    TRAIN_DEMAND,
    TRAIN_LIST_QUALITY,
    TRAIN_MAX_MICROSOFT_SHARE,
    TRAIN_MIX_CONCENTRATION,
    TRAIN_WARMUP_DAYS,
)
from envs.scenario import Scenario

P, K = len(PROVIDERS), len(TIERS)
MICROSOFT = PROVIDERS.index("microsoft")


@dataclass
class EpisodeParams:
    """The numbers that may differ between episodes, one row per env."""

    demand: np.ndarray  # [n, P] int64, fresh emails per day per provider
    tier_share: np.ndarray  # [n, K] audience composition
    reputation_rate: np.ndarray  # [n, P] per-day reputation growth rate at full activity
    initial_reputation: np.ndarray  # [n, P]

    @staticmethod
    def empty(n: int) -> EpisodeParams:
        return EpisodeParams(
            demand=np.zeros((n, P), np.int64),
            tier_share=np.zeros((n, K)),
            reputation_rate=np.zeros((n, P)),
            initial_reputation=np.zeros((n, P)),
        )


def reputation_rate(scenario: Scenario, warmup_days: np.ndarray) -> np.ndarray:
    """Growth rate that takes reputation from cold to high in ``warmup_days`` at full activity."""
    gap = np.log((1.0 - scenario.cold_reputation) / (1.0 - scenario.high_reputation))
    return gap / np.asarray(warmup_days, dtype=np.float64)


def resolved_scenario(scenario: Scenario) -> Scenario:
    """The scenario whose scalar fields govern an episode (a held-out profile's, if one is set)."""
    if scenario.profile is None:
        return scenario
    return scenario.replace(profile=None, randomize=False, **HELDOUT_PROFILES[scenario.profile])


def draw_episode_params(scenario: Scenario, rng: np.random.Generator, out: EpisodeParams, mask: np.ndarray) -> None:
    """Fill the rows of ``out`` selected by ``mask`` with a fresh episode's parameters."""
    idx = np.flatnonzero(mask)
    m = idx.size
    if m == 0:
        return
    fixed = resolved_scenario(scenario)
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
    lo, hi = fixed.initial_reputation
    out.initial_reputation[idx] = rng.uniform(lo, hi, size=(m, P)) if hi > lo else lo
    out.demand[idx] = np.rint(demand[:, None] * mix).astype(np.int64)
    out.tier_share[idx] = tier
    out.reputation_rate[idx] = reputation_rate(fixed, warmup_days)


def _draw_mix(scenario: Scenario, rng: np.random.Generator, m: int) -> np.ndarray:
    """Provider mixes around the default, rejecting the held-out Microsoft-heavy region."""
    alpha = TRAIN_MIX_CONCENTRATION * np.asarray(scenario.provider_share) + 1e-3
    mix = rng.dirichlet(alpha, size=m)
    bad = mix[:, MICROSOFT] > TRAIN_MAX_MICROSOFT_SHARE
    while bad.any():
        mix[bad] = rng.dirichlet(alpha, size=int(bad.sum()))
        bad = mix[:, MICROSOFT] > TRAIN_MAX_MICROSOFT_SHARE
    return mix

